"""The realtime server's pure parts: frames, bindings, filters, presence, wal2json rows, fault state."""

from __future__ import annotations

import argparse
import json
import struct

import pytest

from liveparams_stack.commands import add_stack_commands
from liveparams_stack.faults import FaultError, Faults
from liveparams_stack.realtime.bindings import Binding, BindingError, binding_id
from liveparams_stack.realtime.cdc import PollCadence, parse_wal2json
from liveparams_stack.realtime.filters import Condition, Filter, FilterError, parse_filter
from liveparams_stack.realtime.presence import TopicPresence
from liveparams_stack.realtime.serializers import FrameError, Message, V1Serializer, V2Serializer, serializer_for

JOB = "3163e14e-b3cc-47b2-9bd3-3c3fb09f37d8"


def test_binding_ids_are_stable_positive_and_below_2_27():
    entry = {"event": "UPDATE", "schema": "public", "table": "t", "filter": f"id=eq.{JOB}"}
    same = dict(reversed(list(entry.items())))
    assert binding_id(entry) == binding_id(same)
    assert 1 <= binding_id(entry) < 2**27
    assert binding_id(entry) != binding_id({**entry, "event": "*"})


def test_binding_reply_echoes_every_key_as_received():
    entry = {"event": "*", "schema": "public", "table": "t", "select": ["id"]}
    binding = Binding.from_entry(entry)
    assert binding.reply_entry() == {**entry, "id": binding.id}
    assert binding.covers("public", "t") and not binding.covers("public", "u")
    assert binding.wants("DELETE")
    with pytest.raises(BindingError):
        Binding.from_entry({"event": "update", "schema": "public", "table": "t"})


def test_parse_filter():
    assert parse_filter(" ") is None
    assert parse_filter("status=eq.running") == Filter((Condition("status", "eq", "running"),))
    assert parse_filter('id=in.(1,"2")') == Filter((Condition("id", "in", '{1,"2"}'),))
    assert parse_filter('a=not.like."x,y",b=gte.2') == Filter(
        (Condition("a", "like", "x,y", negate=True), Condition("b", "gte", "2"))
    )
    for bad, message in (
        ("status", '["status"]'),
        ("status=like", '["like"]'),
        ("status=foo.x", '["foo", "x"]'),
        ("id=in.1,2", "`in` filter value must be wrapped by parentheses"),
        ("a=eq.1,", "filter must not contain empty segments"),
    ):
        with pytest.raises(FilterError, match=r"^Error parsing `filter` params: ") as refused:
            parse_filter(bad)
        assert message in str(refused.value)


def test_binding_with_a_bad_filter_or_select_joins_and_reports_the_problem():
    bad = Binding.from_entry({"event": "*", "schema": "public", "table": "t", "filter": "x=foo.1"})
    assert bad.problem == 'Error parsing `filter` params: ["foo", "1"]'
    wildcard = Binding.from_entry({"event": "*", "schema": "public", "table": "*", "select": ["a"]})
    assert wildcard.problem is not None and wildcard.problem.startswith("Column selection is not supported")
    ok = Binding.from_entry({"event": "*", "schema": "public", "table": "t", "filter": "a=eq.1", "select": ["b"]})
    assert ok.problem is None and ok.select == ("b",)
    assert ok.describe() == '[event: *, schema: public, table: t, filters: [{"a", "eq", "1", false}], select: ["b"]]'


def test_v1_frames_are_objects_without_join_ref():
    v1 = V1Serializer()
    message = v1.decode_text('{"topic":"phoenix","event":"heartbeat","payload":{},"ref":null}')
    assert message == Message("phoenix", "heartbeat", {}, None, None)
    encoded = json.loads(v1.encode(Message("realtime:a", "phx_reply", {"status": "ok"}, ref="1", join_ref="1")))
    assert encoded == {"topic": "realtime:a", "event": "phx_reply", "payload": {"status": "ok"}, "ref": "1"}
    with pytest.raises(FrameError):
        v1.decode_text("[1, 2]")


def test_v2_arrays_and_binary_broadcasts():
    v2 = V2Serializer()
    assert v2.decode_text('["1", 2, "realtime:a", "phx_join", {}]') == Message("realtime:a", "phx_join", {}, "2", "1")
    assert json.loads(v2.encode(Message("phoenix", "phx_reply", {}, ref="3"))) == [
        None,
        "3",
        "phoenix",
        "phx_reply",
        {},
    ]
    # Kind 3 as realtime-js builds it: sizes, encoding 1 (JSON), then the fields and the payload.
    fields = [b"6", b"7", b"realtime:room", b"cursor", b""]
    frame = struct.pack("7B", 3, *map(len, fields), 1) + b"".join(fields) + b'{"x":1}'
    pushed = v2.decode_binary(frame)
    assert pushed == Message(
        "realtime:room", "broadcast", {"type": "broadcast", "event": "cursor", "payload": {"x": 1}}, "7", "6"
    )
    out = v2.encode(Message("realtime:room", "broadcast", pushed.payload))
    assert isinstance(out, bytes) and out[0] == 4
    topic_len, event_len, meta_len, encoding = struct.unpack_from("4B", out, 1)
    assert out[5 : 5 + topic_len] == b"realtime:room" and (meta_len, encoding) == (0, 1)
    assert json.loads(out[5 + topic_len + event_len :]) == {"x": 1}


def test_serializer_for_vsn():
    assert isinstance(serializer_for(None), V1Serializer)
    assert isinstance(serializer_for("2.0.0"), V2Serializer)
    assert serializer_for("3.0.0") is None


def test_presence_track_update_untrack():
    presence: TopicPresence[str] = TopicPresence()
    joined = presence.track("ch1", "alice", {"name": "Alice"})
    [meta] = joined["joins"]["alice"]["metas"]
    assert meta["name"] == "Alice" and meta["phx_ref"] and joined["leaves"] == {}
    updated = presence.track("ch1", "alice", {"name": "Alice", "typing": True})
    assert updated["leaves"]["alice"]["metas"] == [meta]
    assert updated["joins"]["alice"]["metas"][0]["phx_ref_prev"] == meta["phx_ref"]
    assert list(presence.state()) == ["alice"]
    assert presence.untrack("ch1") is not None and presence.state() == {}
    assert presence.untrack("ch1") is None


def test_parse_wal2json_v2_row():
    row = {
        "action": "U",
        "timestamp": "2026-11-24 05:00:28.986909+00",
        "schema": "public",
        "table": "t",
        "columns": [
            {"name": "id", "type": "uuid", "typeoid": 2950, "value": JOB},
            {"name": "lr", "type": "numeric", "typeoid": 1700, "value": "NUMERIC"},
            {"name": "on", "type": "boolean", "typeoid": 16, "value": True},
        ],
        "identity": [{"name": "id", "type": "uuid", "typeoid": 2950, "value": JOB}],
        "pk": [{"name": "id", "type": "uuid", "typeoid": 2950}],
    }
    text = json.dumps(row).replace('"NUMERIC"', "0.10000000000000000001")  # wal2json prints numerics bare
    change = parse_wal2json(text)
    assert change is not None
    assert (change.type, change.commit_timestamp, change.pk) == ("UPDATE", "2026-11-24T05:00:28.986Z", ("id",))
    assert [c.value for c in change.columns] == [JOB, "0.10000000000000000001", "true"]  # exact text, cast in SQL
    assert parse_wal2json('{"action":"M","prefix":"x","content":""}') is None


def test_rest_failures_and_refused_fault_requests():
    faults = Faults()
    assert faults.apply("rest_errors", {"count": 2, "status": 500}) == 2
    assert [faults.take_rest_failure() for _ in range(3)] == [500, 500, None]
    with pytest.raises(FaultError) as no_realtime:
        faults.apply("phx_error", {})
    assert no_realtime.value.status == 409
    with pytest.raises(FaultError):
        faults.apply("rest_errors", {"count": "two"})


def test_poll_cadence_fast_by_default_and_like_the_real_poller_when_set():
    fast = PollCadence()
    assert (fast.wait_s(wal_moved=False, listened=True), fast.wait_s(wal_moved=False, listened=False)) == (0.01, 0.25)
    real = PollCadence(poll_interval_ms=100)
    assert real.wait_s(wal_moved=False, listened=True) == 0.5  # idle: back off to 5 × poll_interval_ms
    assert all(0.15 <= real.wait_s(wal_moved=True, listened=True) <= 0.2 for _ in range(50))  # + 50–100 ms jitter


def test_stack_up_takes_the_realtime_poll_interval():
    parser = argparse.ArgumentParser()
    add_stack_commands(parser.add_subparsers(dest="command"))
    assert parser.parse_args(["stack", "up", "--realtime-poll-ms", "100"]).realtime_poll_ms == 100
    assert parser.parse_args(["stack", "up"]).realtime_poll_ms is None
