"""The Realtime callback and REST re-reads feeding the request queue (payload dicts, no socket)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from realtime_payloads import postgres_change

from liveparams.agent._intake import Intake
from liveparams.contract import OutcomeStatus, UpdateOutcome


def entry(request_id: str, **params: object) -> dict[str, object]:
    return {**params, "id": request_id, "requested_at": "2026-11-24T04:55:39.748Z", "requested_by": "u1"}


class Sinks:
    def __init__(self) -> None:
        self.rejected: list[UpdateOutcome] = []
        self.resyncs = 0

    def intake(self, queue_size: int = 16) -> Intake:
        return Intake(
            updates_column="parameter_updates",
            outcomes_column="parameter_update_outcomes",
            queue_size=queue_size,
            max_request_bytes=4096,
            reject=self.rejected.append,
            resync=self.resync,
        )

    def resync(self) -> None:
        self.resyncs += 1


def queued(intake: Intake) -> list[str]:
    out = []
    while not intake.queue.empty():
        out.append(intake.queue.get_nowait().id)
    return out


def test_new_requests_are_queued_in_order_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    sinks = Sinks()
    intake = sinks.intake()
    with caplog.at_level(logging.INFO):
        intake.on_change(postgres_change([entry("a", learning_rate=5e-5), entry("b", weight_decay=0.1)]))
    assert queued(intake) == ["a", "b"]
    assert "New parameter update found: {'learning_rate': 5e-05" in caplog.text


def test_events_that_add_nothing_queue_nothing() -> None:
    sinks = Sinks()
    intake = sinks.intake()
    updates = [entry("a", learning_rate=5e-5)]
    intake.on_change(postgres_change(updates))
    queued(intake)
    intake.on_change(postgres_change(updates, {"a": {"status": "applied"}}))  # the agent's own outcome write
    intake.on_change(postgres_change(updates, current_step=120))  # progress
    intake.ingest_row({"parameter_updates": updates, "parameter_update_outcomes": {}})  # a REST re-read
    assert queued(intake) == [] and sinks.rejected == []


def test_rejections_go_to_the_row_not_the_queue(caplog: pytest.LogCaptureFixture) -> None:
    sinks = Sinks()
    intake = sinks.intake()
    with caplog.at_level(logging.WARNING):
        intake.on_change(postgres_change([entry("bad", learning_rate=-1.0), entry("ok", learning_rate=1e-4)]))
    assert queued(intake) == ["ok"]
    assert [(o.request_id, o.status) for o in sinks.rejected] == [("bad", OutcomeStatus.REJECTED)]
    assert "Rejected parameter update bad" in caplog.text


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"data": None},
        {"data": {"record": None}},
        {"data": {"record": {"parameter_updates": "not a list"}}},
        {"data": {"record": {"parameter_updates": [entry("a", learning_rate=1e-4)], "parameter_update_outcomes": 7}}},
    ],
)
def test_the_callback_never_raises(payload: dict[str, Any]) -> None:
    Sinks().intake().on_change(payload)


def test_a_record_without_the_requests_asks_for_a_re_read() -> None:
    """The server cuts records over 1 MiB down to their small fields (errors: Payload Too Large)."""
    sinks = Sinks()
    intake = sinks.intake()
    intake.on_change(postgres_change(None))
    assert sinks.resyncs == 1 and queued(intake) == []


def test_a_full_queue_keeps_the_rest_waiting_in_order() -> None:
    sinks = Sinks()
    intake = sinks.intake(queue_size=2)
    updates = [entry(str(i), max_steps=10 + i) for i in range(5)]
    intake.on_change(postgres_change(updates))
    assert intake.backlogged
    assert queued(intake) == ["0", "1"]
    intake.retry_backlog()
    assert queued(intake) == ["2", "3"]
    intake.retry_backlog()
    assert queued(intake) == ["4"] and not intake.backlogged
