"""The metrics publisher: what the training thread queues, how it is batched, and what a failing send costs.

``broadcast`` and ``record`` are the publisher's seams (in production ``RestClient.broadcast`` and
``RestClient.record_metrics``); here they are in-memory sinks that fail on demand. The stack and the
official clients are exercised in tests/trainer_hooks/test_metrics_stack.py.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest

from liveparams.agent import RestError
from liveparams.agent._metrics import MAX_POINTS_PER_SEND, MAX_QUEUED, MetricsPublisher


class Sink:
    def __init__(self) -> None:
        self.sent: list[list[dict[str, Any]]] = []
        self.failing = False

    async def __call__(self, points: list[dict[str, Any]]) -> None:
        if self.failing:
            raise RestError("recording metrics: 503 unavailable", transient=True)
        self.sent.append(points)


def publisher(live: Sink, history: Sink) -> MetricsPublisher:
    return MetricsPublisher(live, history, live_interval=0.01, history_interval=0.05)


def test_only_finite_numbers_are_kept_and_a_steps_logs_are_merged() -> None:
    live, history = Sink(), Sink()
    metrics = publisher(live, history)
    metrics.publish(4, {"loss": 2.5, "learning_rate": 1e-3, "epoch": 0.5, "nan": float("nan"), "flag": True})
    metrics.publish(4, {"eval_loss": 2.7, "name": "text", "liveparams/learning_rate": 2e-3})
    metrics.publish(5, {"loss": float("inf")})
    asyncio.run(metrics.flush(1.0))
    expected = [{"step": 4, "metrics": {"loss": 2.5, "learning_rate": 1e-3, "epoch": 0.5, "eval_loss": 2.7}}]
    assert live.sent == history.sent == [expected]


def test_points_are_batched_live_every_interval_and_stored_less_often() -> None:
    live, history = Sink(), Sink()
    metrics = publisher(live, history)

    async def scenario() -> None:
        task = asyncio.create_task(metrics.run())
        for step in range(1, 41):
            metrics.publish(step, {"loss": 1.0 / step})
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.1)
        task.cancel()

    asyncio.run(scenario())
    live_steps = [p["step"] for batch in live.sent for p in batch]
    stored_steps = [p["step"] for batch in history.sent for p in batch]
    assert live_steps == stored_steps == list(range(1, 41))  # every point, once each way, in order
    assert len(history.sent) < len(live.sent)


def test_a_failing_send_drops_its_points_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    live, history = Sink(), Sink()
    live.failing = history.failing = True
    metrics = publisher(live, history)

    async def scenario() -> None:
        task = asyncio.create_task(metrics.run())
        for step in range(1, 31):
            metrics.publish(step, {"loss": 1.0})
            await asyncio.sleep(0.005)
        while metrics._queue or metrics._unstored:  # every failed point was taken and its send failed
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # the send that took the last ones has failed too
        live.failing = history.failing = False
        metrics.publish(100, {"loss": 0.5})
        await asyncio.sleep(0.1)
        task.cancel()

    with caplog.at_level(logging.INFO, logger="liveparams.agent._metrics"):
        asyncio.run(scenario())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2  # one for live, one for history, however many sends failed
    assert all("dropped" in w and "training goes on" in w for w in warnings)
    # Nothing failed was retried: after recovery only the new point travels.
    assert [p["step"] for batch in live.sent for p in batch] == [100]
    assert [p["step"] for batch in history.sent for p in batch] == [100]
    assert any("again" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)


def test_memory_stays_bounded_when_nothing_is_sent() -> None:
    metrics = publisher(Sink(), Sink())
    for step in range(MAX_QUEUED * 3):  # the agent thread never ran: everything waits in the queue
        metrics.publish(step, {"loss": 1.0})
    assert len(metrics._queue) == MAX_QUEUED
    history = Sink()
    metrics = publisher(Sink(), history)
    for step in range(MAX_POINTS_PER_SEND * 5):  # stored less often than taken: the unstored points are thinned
        metrics.publish(step, {"loss": 1.0})
        if step % 100 == 0:
            metrics._take()
    metrics._take()
    assert len(metrics._unstored) <= MAX_POINTS_PER_SEND
    assert max(metrics._unstored) == MAX_POINTS_PER_SEND * 5 - 1  # the newest point is kept


def test_a_point_logged_after_an_idle_spell_is_sent_and_stored() -> None:
    """Idle, the publisher sleeps without a timer; a log from the training thread must wake it."""
    live, history = Sink(), Sink()
    metrics = publisher(live, history)

    async def scenario() -> None:
        task = asyncio.create_task(metrics.run())
        await asyncio.sleep(0.2)  # idle: many live and history intervals pass with nothing logged
        training = threading.Thread(target=metrics.publish, args=(7, {"loss": 0.25}))
        training.start()
        training.join()
        for _ in range(200):  # no further log: the point must still go out both ways
            if live.sent and history.sent:
                break
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(scenario())
    assert live.sent == history.sent == [[{"step": 7, "metrics": {"loss": 0.25}}]]
