"""Live metrics: what the trainer logged, sent to the job's owner live (Broadcast) and as bounded history.

The training thread only calls :meth:`MetricsPublisher.publish`, which filters a handful of
numbers and appends them to a bounded deque: it never waits, never touches the network, and
never holds more than ``MAX_QUEUED`` points (past it the oldest go). The agent thread, in
:meth:`MetricsPublisher.run`:

- ``metrics_live_interval`` (1 s) after the first point queued since the last send, takes what
  was queued and broadcasts it on the job's
  private topic ``job-metrics:<job id>`` (event ``metrics``), authorized by RLS on
  ``realtime.messages`` (docs/contracts.md);
- every ``metrics_history_interval`` (10 s) stores what it took since the last write through
  ``record_training_metrics``, which keeps a job's history bounded;
- with nothing logged, it sleeps (no timer), so an idle agent does not wake for metrics.

A send that fails is not retried: its points are dropped, with one warning per outage (the next
success says so at info level), so a dead network costs neither memory nor a growing backlog.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from liveparams.agent._waiting import wait_for_event
from liveparams.contract import TRACKER_PREFIX

__all__ = ["MAX_QUEUED", "METRICS_EVENT", "MetricsPublisher", "metrics_topic"]

logger = logging.getLogger(__name__)

METRICS_EVENT = "metrics"
MAX_QUEUED = 4096  # points held between two live sends; a trainer logging faster loses the oldest
MAX_POINTS_PER_SEND = 1000  # the RPC's liveparams_max_metric_points(); more are thinned evenly
MAX_NAMES = 64  # metrics per point (the RPC's limit); names past it are left out

Point = dict[str, Any]  # {"step": int, "metrics": {name: float}}


def metrics_topic(job_id: str) -> str:
    """The private Broadcast topic a job's live metrics go to (docs/contracts.md)."""
    return f"job-metrics:{job_id}"


def _numbers(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The finite numbers of one ``on_log`` dict (JSON has no NaN or infinity, and a bool is no metric)."""
    kept: dict[str, float] = {}
    for name, value in metrics.items():
        if len(kept) >= MAX_NAMES:
            break
        if isinstance(value, bool) or not isinstance(value, int | float) or str(name).startswith(TRACKER_PREFIX):
            continue
        if math.isfinite(value):
            kept[str(name)[:128]] = float(value)
    return kept


def _thin(points: dict[int, dict[str, float]], limit: int) -> dict[int, dict[str, float]]:
    """At most ``limit`` points spread evenly over ``points`` (in step order), always with the newest."""
    if len(points) <= limit:
        return points
    steps = sorted(points)
    stride = math.ceil(len(steps) / limit)
    kept = steps[len(steps) - 1 :: -stride][:limit]
    return {step: points[step] for step in sorted(kept)}


def _as_points(points: dict[int, dict[str, float]]) -> list[Point]:
    return [{"step": step, "metrics": metrics} for step, metrics in sorted(points.items())]


class _Sender:
    """One kind of send (live or history): drops on failure, warns once per outage."""

    def __init__(self, what: str, send: Callable[[list[Point]], Awaitable[None]]) -> None:
        self._what = what
        self._send = send
        self._failing = False

    async def __call__(self, points: dict[int, dict[str, float]], timeout: float) -> None:
        if not points:
            return
        try:
            await asyncio.wait_for(self._send(_as_points(_thin(points, MAX_POINTS_PER_SEND))), max(timeout, 0.01))
        except Exception as exc:  # the network, a refusal, a timeout: the points are dropped, never retried
            if not self._failing:
                logger.warning(
                    "Could not send %s (%s); dropped %d points, and will drop what fails to send until it works "
                    "again (training goes on)",
                    self._what,
                    exc or type(exc).__name__,
                    len(points),
                )
            else:
                logger.debug("Could not send %s: dropped %d points: %s", self._what, len(points), exc)
            self._failing = True
            return
        if self._failing:
            logger.info("Sending %s again", self._what)
        self._failing = False


class MetricsPublisher:
    """Queues points from the training thread; batches and sends them on the agent thread.

    Args:
        broadcast (`Callable`): sends ``{"points": [...]}`` on the job's private topic.
        record (`Callable`): stores points through ``record_training_metrics``.
        live_interval (`float`): seconds between two broadcasts (at most one message per interval).
        history_interval (`float`): seconds between two history writes.
    """

    def __init__(
        self,
        broadcast: Callable[[list[Point]], Awaitable[None]],
        record: Callable[[list[Point]], Awaitable[None]],
        live_interval: float,
        history_interval: float,
    ) -> None:
        self._queue: collections.deque[tuple[int, dict[str, float]]] = collections.deque(maxlen=MAX_QUEUED)
        self._unstored: dict[int, dict[str, float]] = {}
        self._live = _Sender("live metrics", broadcast)
        self._history = _Sender("metrics history", record)
        self.live_interval = live_interval
        self.history_interval = history_interval
        self._loop: asyncio.AbstractEventLoop | None = None  # the agent thread's, once run() started
        self._logged = asyncio.Event()  # set when the queue gets its first point

    def publish(self, step: int, metrics: Mapping[str, Any]) -> None:
        """Queue what the trainer logged at ``step``; called on the training thread, returns at once.

        The first point after the queue was emptied wakes the agent thread (one ``call_soon_threadsafe``,
        a few microseconds, at most about once per ``live_interval``); an agent with nothing logged sleeps.
        """
        numbers = _numbers(metrics)
        if not numbers:
            return
        was_empty = not self._queue
        self._queue.append((int(step), numbers))  # deque.append is atomic; maxlen drops the oldest
        if was_empty and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the agent's loop has closed
                self._loop.call_soon_threadsafe(self._logged.set)

    def _take(self) -> dict[int, dict[str, float]]:
        """What was queued since the last take, merged per step (a step's training and eval logs come apart)."""
        taken: dict[int, dict[str, float]] = {}
        while True:
            try:
                step, numbers = self._queue.popleft()
            except IndexError:
                break
            taken.setdefault(step, {}).update(numbers)
        for step, numbers in taken.items():
            self._unstored.setdefault(step, {}).update(numbers)
        self._unstored = _thin(self._unstored, MAX_POINTS_PER_SEND)  # bounded whatever the history writes do
        return taken

    async def run(self) -> None:
        """Send live at most every ``live_interval`` and store every ``history_interval``, until cancelled.

        Between logs it sleeps until the trainer logs again or unstored points are due: an idle
        agent must not wake every second for nothing (issue 23: at most 0.1 ms of CPU a second).
        """
        self._loop = asyncio.get_running_loop()
        next_store = time.monotonic() + self.history_interval
        while True:
            if not self._queue:
                await wait_for_event(self._logged, next_store - time.monotonic() if self._unstored else None)
            self._logged.clear()
            if self._queue:
                await asyncio.sleep(self.live_interval)  # what is logged meanwhile goes in the same message
                await self._live(self._take(), self.live_interval * 5)
            if time.monotonic() >= next_store:
                await self._store(self.history_interval)
                next_store = time.monotonic() + self.history_interval

    async def flush(self, budget: float) -> None:
        """At close: send and store what is left, within ``budget`` seconds; what does not fit is dropped."""
        deadline = time.monotonic() + budget
        await self._live(self._take(), (deadline - time.monotonic()) / 2)
        await self._store(deadline - time.monotonic())

    async def _store(self, timeout: float) -> None:
        unstored, self._unstored = self._unstored, {}
        await self._history(unstored, timeout)
