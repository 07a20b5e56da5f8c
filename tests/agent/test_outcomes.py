"""The outcome writer: batching, first-wins, retries, refusals and the close() deadline.

``write`` is the writer's seam (in production ``RestClient.record_outcomes``); here it is a
small in-memory table that fails on demand. Supabase itself is exercised in test_agent_stack.py.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from liveparams.agent import RestError
from liveparams.agent._outcomes import FLUSH_BATCH_BYTES, OutcomeWriter, json_safe
from liveparams.contract import Change, OutcomeStatus, UpdateOutcome


class Table:
    def __init__(self, failures: list[Exception] | None = None) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.calls: list[list[str]] = []
        self.failures: list[Exception] = list(failures or [])
        self.refused: set[str] = set()

    async def write(self, outcomes: dict[str, dict[str, Any]]) -> None:
        self.calls.append(list(outcomes))
        if self.failures:
            raise self.failures.pop(0)
        if self.refused & set(outcomes):
            raise RestError("no request with that id", transient=False)
        for key, row in outcomes.items():
            self.rows.setdefault(key, row)


def writer(table: Table, batch_size: int = 50) -> OutcomeWriter:
    return OutcomeWriter(
        table.write, batch_size=batch_size, writes_per_second=100, backoff_initial=0.01, backoff_max=0.02
    )


def applied(request_id: str, step: int = 1) -> UpdateOutcome:
    return UpdateOutcome(request_id, OutcomeStatus.APPLIED, step=step)


async def run_until_written(w: OutcomeWriter) -> None:
    task = asyncio.create_task(w.run())
    for _ in range(500):
        await asyncio.sleep(0.01)
        if w.pending == 0:
            break
    task.cancel()


def test_outcomes_are_batched_and_the_first_per_request_wins() -> None:
    table = Table()
    w = writer(table, batch_size=2)
    w.submit([applied("a", 1), applied("b"), applied("a", 99), applied("c")])
    asyncio.run(run_until_written(w))
    assert table.calls == [["a", "b"], ["c"]]
    assert table.rows["a"]["step"] == 1


def test_transient_failures_are_retried_until_stored() -> None:
    table = Table([RestError("503", transient=True), RestError("ConnectError", transient=True)])
    w = writer(table)
    w.submit([applied("a")])
    asyncio.run(run_until_written(w))
    assert list(table.rows) == ["a"] and len(table.calls) == 3


def test_a_refused_outcome_does_not_keep_the_others_off_the_row() -> None:
    table = Table()
    table.refused = {"ghost"}
    w = writer(table)
    w.submit([applied("a"), applied("ghost"), applied("b")])
    asyncio.run(run_until_written(w))
    assert sorted(table.rows) == ["a", "b"] and w.pending == 0


def test_legacy_requests_are_recorded_under_their_content_key() -> None:
    table = Table()
    w = writer(table)
    w.submit([applied("legacy-0123456789abcdef"), applied("a")])
    asyncio.run(run_until_written(w))
    assert table.calls == [["legacy-0123456789abcdef", "a"]]


def test_flush_gives_up_at_the_deadline_and_reports_what_it_dropped() -> None:
    table = Table([RestError("503", transient=True)] * 1000)
    w = writer(table)
    w.submit([applied("a"), applied("b")])
    assert asyncio.run(w.flush(0.1)) == 2
    assert w.pending == 0


def test_flush_writes_what_is_pending() -> None:
    table = Table([RestError("503", transient=True)])
    w = writer(table)
    w.submit([applied("a")])
    assert asyncio.run(w.flush(2.0)) == 0
    assert list(table.rows) == ["a"]


def test_flush_is_not_held_to_the_rate_limit() -> None:
    """A burst decided just before close(): 800 outcomes with the production throttle (50 per call,
    5 calls/s, 500 in close()'s 2 s) are all written, in two calls."""
    table = Table()
    w = OutcomeWriter(table.write, batch_size=50, writes_per_second=5, backoff_initial=0.5, backoff_max=30)
    w.submit(applied(f"r{i}", step=i) for i in range(800))
    assert asyncio.run(w.flush(1.85)) == 0
    assert len(table.rows) == 800 and len(table.calls) == 2


def test_a_flush_call_carries_no_more_than_one_body_may() -> None:
    table = Table()
    bodies: list[int] = []

    async def write(outcomes: dict[str, dict[str, Any]]) -> None:
        bodies.append(len(json.dumps(outcomes)))
        await table.write(outcomes)

    w = OutcomeWriter(write, batch_size=50, writes_per_second=5, backoff_initial=0.5, backoff_max=30)
    long_reason = "x" * 3000  # a rejection quoting what it refused
    w.submit(UpdateOutcome(f"r{i}", OutcomeStatus.REJECTED, step=i, reason=long_reason) for i in range(400))
    assert asyncio.run(w.flush(5.0)) == 0
    assert len(table.rows) == 400 and len(bodies) > 1 and max(bodies) <= FLUSH_BATCH_BYTES


def test_one_refused_outcome_in_a_large_flush_costs_a_few_calls() -> None:
    table = Table()
    table.refused = {"r137"}
    w = writer(table)
    w.submit(applied(f"r{i}") for i in range(500))
    assert asyncio.run(w.flush(5.0)) == 0
    assert len(table.rows) == 499 and "r137" not in table.rows
    assert len(table.calls) <= 20  # halving: about 2·log2(500), not one call per outcome


class Scalar:
    """What a torch or numpy scalar looks like to the writer."""

    def __init__(self, value: float) -> None:
        self.value = value

    def item(self) -> float:
        return self.value


def test_values_become_plain_json() -> None:
    row = UpdateOutcome("a", OutcomeStatus.APPLIED, changes={"lr": Change(Scalar(1e-4), float("nan"))}).to_row()
    assert json_safe(row)["changes"] == {"lr": {"old": 1e-4, "new": "nan"}}
    assert json_safe({"x": (1, object)})["x"][0] == 1


def test_an_unexpected_error_drops_only_that_batch() -> None:
    table = Table()
    table.failures = [TypeError("a bug")]
    w = writer(table, batch_size=1)
    w.submit([applied("a"), applied("b")])
    asyncio.run(run_until_written(w))
    assert list(table.rows) == ["b"] and w.pending == 0
