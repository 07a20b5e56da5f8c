"""The Realtime callback and REST re-reads feeding the request queue (payload dicts, no socket)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from realtime_payloads import postgres_change, request_row

from liveparams.agent._intake import Intake
from liveparams.contract import OutcomeStatus, UpdateOutcome


class Sinks:
    def __init__(self) -> None:
        self.rejected: list[UpdateOutcome] = []
        self.resyncs = 0

    def intake(self, queue_size: int = 16) -> Intake:
        return Intake(queue_size=queue_size, max_request_bytes=4096, reject=self.rejected.append, resync=self.resync)

    def resync(self) -> None:
        self.resyncs += 1


def queued(intake: Intake) -> list[str]:
    out = []
    while not intake.queue.empty():
        out.append(intake.queue.get_nowait().id)
    return out


def read(*rows: dict[str, Any], latest: int | None = None) -> dict[str, Any]:
    return {
        "latest_seq": latest if latest is not None else max((r["seq"] for r in rows), default=0),
        "requests": list(rows),
    }


def started(sinks: Sinks, queue_size: int = 16) -> Intake:
    """An intake that has done its first (empty) read: the next request is seq 1."""
    intake = sinks.intake(queue_size)
    intake.ingest_read(read(), limit=500)
    return intake


def test_new_requests_are_queued_in_order_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    sinks = Sinks()
    intake = started(sinks)
    with caplog.at_level(logging.INFO):
        intake.on_change(postgres_change(request_row("a", 1, {"learning_rate": 5e-5})))
        intake.on_change(postgres_change(request_row("b", 2, {"weight_decay": 0.1})))
    assert queued(intake) == ["a", "b"]
    assert "New parameter update found: {'learning_rate': 5e-05}" in caplog.text


def test_duplicates_queue_nothing() -> None:
    """A held event released late, the same row re-read, an event after the re-read that took it."""
    sinks = Sinks()
    intake = started(sinks)
    change = postgres_change(request_row("a", 1, {"learning_rate": 5e-5}))
    intake.on_change(change)
    assert queued(intake) == ["a"]
    intake.on_change(change)
    intake.ingest_read(read(request_row("a", 1, {"learning_rate": 5e-5})), limit=500)
    assert queued(intake) == [] and sinks.rejected == [] and sinks.resyncs == 0


def test_a_gap_asks_for_a_re_read_and_keeps_the_order() -> None:
    sinks = Sinks()
    intake = started(sinks)
    intake.on_change(postgres_change(request_row("c", 3, {"max_steps": 3})))  # 1 and 2 were missed
    assert queued(intake) == [] and sinks.resyncs == 1
    assert intake.after_seq == 0
    rows = [request_row(name, i + 1, {"max_steps": i + 1}) for i, name in enumerate("abc")]
    intake.ingest_read(read(*rows), limit=500)
    assert queued(intake) == ["a", "b", "c"]


def test_before_the_first_read_pushed_rows_wait_for_it() -> None:
    sinks = Sinks()
    intake = sinks.intake()
    intake.on_change(postgres_change(request_row("a", 7, {"max_steps": 3})))
    assert queued(intake) == [] and sinks.resyncs == 1


def test_rejections_go_to_the_database_not_the_queue(caplog: pytest.LogCaptureFixture) -> None:
    sinks = Sinks()
    intake = started(sinks)
    with caplog.at_level(logging.WARNING):
        intake.ingest_read(
            read(request_row("bad", 1, {"learning_rate": -1.0}), request_row("ok", 2, {"learning_rate": 1e-4})),
            limit=500,
        )
    assert queued(intake) == ["ok"]
    assert [(o.request_id, o.status) for o in sinks.rejected] == [("bad", OutcomeStatus.REJECTED)]
    assert "Rejected parameter update bad" in caplog.text


@pytest.mark.parametrize(
    "payload",
    [{}, {"data": None}, {"data": {"record": None}}, {"data": {"record": {"seq": "7"}}}, postgres_change(None)],
)
def test_the_callback_never_raises(payload: dict[str, Any]) -> None:
    Sinks().intake().on_change(payload)


def test_a_record_without_seq_asks_for_a_re_read() -> None:
    """The server cuts records over 1 MiB down to their small fields (errors: Payload Too Large)."""
    sinks = Sinks()
    intake = started(sinks)
    intake.on_change(postgres_change(None, message="Payload Too Large"))
    assert sinks.resyncs == 1 and queued(intake) == []


def test_a_full_queue_keeps_the_rest_waiting_in_order() -> None:
    sinks = Sinks()
    intake = started(sinks, queue_size=2)
    rows = [request_row(str(i), i + 1, {"max_steps": 10 + i}) for i in range(5)]
    intake.ingest_read(read(*rows), limit=500)
    assert intake.backlogged
    assert queued(intake) == ["0", "1"]
    intake.on_change(postgres_change(request_row("5", 6, {"max_steps": 20})))  # set aside behind the backlog
    intake.retry_backlog()
    assert queued(intake) == ["2", "3"] and sinks.resyncs == 0
    intake.retry_backlog()
    assert queued(intake) == ["4"] and not intake.backlogged
    assert sinks.resyncs == 1  # what was set aside is read from the mark
    intake.ingest_read(read(request_row("5", 6, {"max_steps": 20})), limit=500)
    assert queued(intake) == ["5"]


def test_a_full_page_asks_for_the_next_one() -> None:
    sinks = Sinks()
    intake = started(sinks)
    intake.ingest_read(read(request_row("a", 1, {"max_steps": 1}), latest=40), limit=1)
    assert queued(intake) == ["a"] and sinks.resyncs == 1 and intake.after_seq == 1


def test_a_row_python_cannot_read_is_rejected_and_the_next_ones_still_arrive() -> None:
    """Rows appended through the seed's array are stored unvalidated: ``1e400`` reads back from
    PostgreSQL as a 401-digit integer, and JSON text may nest deeper than Python parses. Each is
    rejected with a reason, and the request after them is delivered (the mark moves past them)."""
    sinks = Sinks()
    intake = sinks.intake()
    too_deep = "[" * 3000 + "]" * 3000
    intake.ingest_read(
        read(
            request_row("huge", 1, {"max_steps": 10**400}),
            request_row("deep", 2, too_deep),
            request_row("fine", 3, {"learning_rate": 1e-4}),
        ),
        limit=500,
    )
    assert queued(intake) == ["fine"] and intake.after_seq == 3
    reasons = {o.request_id: o.reason or "" for o in sinks.rejected}
    assert reasons["huge"].startswith("'max_steps' = ") and "is out of range" in reasons["huge"]
    assert len(reasons["huge"]) < 200  # the number is abbreviated, not written out
    assert reasons["deep"].startswith("malformed request: expected a JSON object")


def test_a_row_that_breaks_the_parser_is_rejected_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a row does to the parser, delivery of the rows after it goes on."""
    from liveparams.agent import _requests

    real = _requests.parse_request

    def parse(row: dict[str, Any], max_bytes: int) -> Any:
        if row["id"] == "odd":
            raise OverflowError("int too large to convert to float")
        return real(row, max_bytes)

    monkeypatch.setattr(_requests, "parse_request", parse)
    sinks = Sinks()
    intake = sinks.intake()
    intake.ingest_read(read(request_row("odd", 1, {"x": 1}), request_row("fine", 2, {"learning_rate": 1e-4})), 500)
    assert queued(intake) == ["fine"]
    assert [(o.request_id, o.reason) for o in sinks.rejected] == [
        ("odd", "could not be read: OverflowError: int too large to convert to float")
    ]
