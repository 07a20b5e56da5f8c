"""The routing index finds every channel a change may concern, and only a job's own among many (issue 23).

Pure: channels and decoded changes built in code, no server. Whether a candidate really matches
is PostgreSQL's decision (tests/stack/test_realtime_filters.py); the index must never leave out
a channel that matches, and must not hand a job's change to every job's channel.
"""

from __future__ import annotations

import uuid
from typing import Any

from liveparams_stack.realtime.auth import Identity
from liveparams_stack.realtime.bindings import Binding
from liveparams_stack.realtime.cdc import WalChange, WalColumn
from liveparams_stack.realtime.channel import Channel
from liveparams_stack.realtime.routing import RoutingIndex

TABLE = "parameter_update_requests"


class _Outbox:
    def send(self, message: Any) -> None:
        pass


def channel(*entries: dict[str, Any]) -> Channel:
    identity = Identity({"role": "authenticated"})
    return Channel("realtime:t", "1", _Outbox(), identity, tuple(Binding.from_entry(e) for e in entries))


def on_job(job: str, table: str = TABLE, event: str = "INSERT") -> dict[str, Any]:
    return {"event": event, "schema": "public", "table": table, "filter": f"job_id=eq.{job}"}


def change(columns: dict[str, tuple[str, str | None]], table: str = TABLE, kind: str = "INSERT") -> WalChange:
    cols = tuple(WalColumn(name, type_, value) for name, (type_, value) in columns.items())
    return WalChange(kind, "public", table, "2026-12-06T00:00:00.000Z", cols if kind != "DELETE" else (), cols, ("id",))


def job_change(job: str, kind: str = "INSERT") -> WalChange:
    return change({"id": ("text", "r1"), "job_id": ("uuid", job)}, kind=kind)


def test_a_change_for_one_job_finds_only_that_jobs_channel_among_a_thousand():
    index = RoutingIndex()
    jobs = [str(uuid.uuid4()) for _ in range(1000)]
    channels = {job: channel(on_job(job)) for job in jobs}
    for c in channels.values():
        index.add(c)
    assert index.candidates(job_change(jobs[500])) == [channels[jobs[500]]]
    assert index.candidates(job_change(str(uuid.uuid4()))) == []


def test_a_uuid_filter_in_upper_case_braces_or_without_hyphens_is_found_as_postgresql_compares_it():
    job = str(uuid.uuid4())
    spellings = [job.upper(), "{" + job + "}", job.replace("-", "")]
    index = RoutingIndex()
    written = [channel(on_job(s)) for s in spellings]
    for c in written:
        index.add(c)
    assert sorted(map(id, index.candidates(job_change(job)))) == sorted(map(id, written))


def test_integers_compare_as_numbers_and_text_exactly():
    index = RoutingIndex()
    by_number = channel({"event": "*", "schema": "public", "table": "t", "filter": "n=eq.007"})
    by_text = channel({"event": "*", "schema": "public", "table": "t", "filter": "name=eq.Ada"})
    for c in (by_number, by_text):
        index.add(c)
    assert index.candidates(change({"id": ("bigint", "1"), "n": ("integer", "7")}, table="t")) == [by_number]
    assert index.candidates(change({"id": ("bigint", "1"), "name": ("text", "Ada")}, table="t")) == [by_text]
    assert index.candidates(change({"id": ("bigint", "1"), "name": ("text", "ada")}, table="t")) == []
    assert index.candidates(change({"id": ("bigint", "1"), "n": ("integer", None)}, table="t")) == []


def test_a_value_or_type_the_index_cannot_key_is_always_a_candidate():
    index = RoutingIndex()
    unreadable = channel({"event": "*", "schema": "public", "table": "t", "filter": "n=eq.0x1F"})
    numeric = channel({"event": "*", "schema": "public", "table": "t", "filter": "price=eq.1.50"})
    for c in (unreadable, numeric):
        index.add(c)
    assert index.candidates(change({"id": ("bigint", "1"), "n": ("integer", "31")}, table="t")) == [unreadable]
    assert index.candidates(change({"id": ("bigint", "1"), "price": ("numeric", "1.5")}, table="t")) == [numeric]


def test_unfiltered_wildcard_and_other_operators_see_every_change_of_their_table():
    job = str(uuid.uuid4())
    index = RoutingIndex()
    unfiltered = channel({"event": "*", "schema": "public", "table": TABLE})
    wildcard = channel({"event": "*", "schema": "*", "table": "*"})
    negated = channel({"event": "*", "schema": "public", "table": TABLE, "filter": f"job_id=neq.{job}"})
    elsewhere = channel({"event": "*", "schema": "public", "table": "other"})
    for c in (unfiltered, wildcard, negated, elsewhere):
        index.add(c)
    assert sorted(map(id, index.candidates(job_change(job)))) == sorted(map(id, [unfiltered, wildcard, negated]))


def test_a_delete_is_routed_by_its_old_identity_and_a_removed_channel_is_gone():
    job = str(uuid.uuid4())
    index = RoutingIndex()
    mine = channel(on_job(job, event="DELETE"))
    index.add(mine)
    assert index.candidates(job_change(job, kind="DELETE")) == [mine]
    index.discard(mine)
    assert index.candidates(job_change(job, kind="DELETE")) == []
