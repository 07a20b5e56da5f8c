"""Writes outcomes back onto the requests' rows: batched, rate-limited, retried, flushed on close.

The RPC keeps the first outcome per request id, so a retry after an ambiguous
failure (the call reached the database but the reply was lost) is harmless.

The rate limit protects the database from a flood while training runs. close() has
seconds, not minutes: its flush writes what is left unthrottled, in as few calls as
one request body may carry (``FLUSH_BATCH_SIZE``, ``FLUSH_BATCH_BYTES``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import math
import queue
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from asyncio_throttle import Throttler

from liveparams.agent._exceptions import RestError
from liveparams.contract import UpdateOutcome

__all__ = ["OutcomeWriter", "backoff_delay", "json_safe"]

logger = logging.getLogger(__name__)

Write = Callable[[dict[str, dict[str, Any]]], Awaitable[None]]
FLUSH_BACKOFF = (0.05, 0.5)  # retry delays while close() flushes: its whole budget is a few seconds
# Outcomes per call while close() flushes: the 1000 requests a job may hold undecided
# (liveparams_max_pending_requests()) go in two calls. The RPC sets no bound of its own.
FLUSH_BATCH_SIZE = 500
# JSON per flush call, at most: half the 1 MiB body a proxy commonly accepts (nginx's default).
# A body a proxy still refuses (413) is halved like any refused batch.
FLUSH_BATCH_BYTES = 512 * 1024


def backoff_delay(failures: int, initial: float, maximum: float) -> float:
    """Exponential backoff with full jitter: uniform in [d/2, d], d = initial·2^(failures-1) capped at maximum."""
    delay = min(initial * 2 ** max(failures - 1, 0), maximum)
    return random.uniform(delay / 2, delay)


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON: tensors and numpy scalars become numbers, NaN/inf and unknown objects text.

    Appliers report old/new values as they find them on the trainer; one value the RPC cannot
    store must not keep the others off the row.
    """
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    item = getattr(value, "item", None)  # numpy and torch scalars
    if callable(item):
        with contextlib.suppress(Exception):
            return json_safe(item())
    return str(value)


class OutcomeWriter:
    """Collects outcomes from any thread and writes them with ``write`` on the agent's loop.

    Args:
        write (`Write`): stores ``{request id: outcome row}`` or raises :class:`RestError`.
        batch_size (`int`): outcomes per call.
        writes_per_second (`int`): rate limit of calls (``asyncio-throttle``).
        backoff_initial (`float`), backoff_max (`float`): retry delays after transient failures.
    """

    def __init__(
        self, write: Write, *, batch_size: int, writes_per_second: int, backoff_initial: float, backoff_max: float
    ) -> None:
        self._write = write
        self._batch_size = batch_size
        self._throttler = Throttler(rate_limit=writes_per_second, period=1.0)
        self._backoff = (backoff_initial, backoff_max)
        self._inbox: queue.SimpleQueue[UpdateOutcome] = queue.SimpleQueue()
        self._pending: dict[str, dict[str, Any]] = {}  # insertion order = report order
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    @property
    def pending(self) -> int:
        """Outcomes not yet stored."""
        return len(self._pending) + self._inbox.qsize()

    def submit(self, outcomes: Iterable[UpdateOutcome]) -> None:
        """Hand over outcomes from any thread; never blocks."""
        for outcome in outcomes:
            self._inbox.put(outcome)
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: close() reported what was left
                loop.call_soon_threadsafe(wake.set)

    def _take_inbox(self) -> None:
        while True:
            try:
                outcome = self._inbox.get_nowait()
            except queue.Empty:
                return
            self._pending.setdefault(outcome.request_id, json_safe(outcome.to_row()))

    async def run(self) -> None:
        """Write until cancelled."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        await self._write_until(deadline=None)

    async def flush(self, timeout: float) -> int:
        """Write what is pending for at most ``timeout`` seconds (``run`` must be stopped), unthrottled.

        Returns how many outcomes could not be written in time; they are dropped.
        """
        await self._write_until(deadline=time.monotonic() + timeout)
        self._take_inbox()
        dropped = len(self._pending)
        self._pending.clear()
        return dropped

    async def _write_until(self, deadline: float | None) -> None:
        """The one write-and-retry loop: forever (``deadline`` None, waiting for outcomes when there are
        none), or until nothing is pending or the deadline passes (a flush, with short retry delays).
        """
        flushing = deadline is not None
        backoff = FLUSH_BACKOFF if flushing else self._backoff
        failures = 0
        while True:
            self._take_inbox()
            if not self._pending:
                if deadline is not None or self._wake is None:
                    return
                self._wake.clear()
                self._take_inbox()  # a submit() between the two calls has set the event again
                if not self._pending:
                    await self._wake.wait()
                continue
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            try:
                attempt = self._attempt(self._next_batch(flushing), throttled=not flushing)
                # Not wait_for without a deadline: before 3.12 it can swallow run()'s cancellation.
                await (attempt if left is None else asyncio.wait_for(attempt, left))
                failures = 0
            except (RestError, asyncio.TimeoutError) as exc:
                failures += 1
                delay = backoff_delay(failures, *backoff)
                log = logger.warning if failures == 1 and deadline is None else logger.debug
                log("Recording %d outcomes failed (%s); retrying in %.1fs", len(self._pending), exc, delay)
                if deadline is not None:
                    delay = min(delay, max(deadline - time.monotonic(), 0.0))
                await asyncio.sleep(delay)

    def _next_batch(self, flushing: bool) -> dict[str, dict[str, Any]]:
        """The oldest pending outcomes: ``batch_size``, or while flushing as many as one call may carry."""
        if not flushing:
            return dict(itertools.islice(self._pending.items(), self._batch_size))
        batch: dict[str, dict[str, Any]] = {}
        size = 0
        for request_id, row in self._pending.items():
            size += len(json.dumps(row)) + len(request_id) + 4  # the row, its quoted key, ": " and ", "
            if batch and (len(batch) >= FLUSH_BATCH_SIZE or size > FLUSH_BATCH_BYTES):
                break
            batch[request_id] = row
        return batch

    async def _attempt(self, batch: dict[str, dict[str, Any]], *, throttled: bool) -> None:
        """Store ``batch``, through the rate limit when ``throttled``; raise :class:`RestError` if that may work later.

        A refusal (4xx) of a batch is retried in halves, so one bad outcome cannot keep
        the others off the row and costs a few calls, however large the batch (a flush's
        may hold hundreds); a refused single outcome is dropped.
        """
        try:
            if throttled:
                async with self._throttler:
                    await self._write(batch)
            else:
                await self._write(batch)
        except RestError as exc:
            if exc.transient:
                raise
            if len(batch) > 1:
                items = list(batch.items())
                half = len(items) // 2
                for part in (items[:half], items[half:]):
                    await self._attempt(dict(part), throttled=throttled)
                return
            logger.warning("Outcome of request %s was refused and is dropped: %s", next(iter(batch)), exc)
        except Exception:  # a bug, not the network: retrying would spin, so drop this batch and go on
            logger.exception("Recording outcomes of %s failed unexpectedly; dropped", ", ".join(batch))
        for request_id in batch:
            self._pending.pop(request_id, None)
