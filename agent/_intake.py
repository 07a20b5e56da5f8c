"""Where request rows, pushed or re-read, become queued requests and recorded rejections.

Both paths (a Realtime callback, of either transport, and REST re-reads) end in :meth:`Intake.ingest`,
so there is one place that decides what is new. A pushed row is taken on its own
only when it is the very next ``seq``; a duplicate is dropped and a gap asks for a
re-read from the last ``seq`` handled, so delivery stays gap-free and exactly-once
whatever the socket did. It runs on the agent's event loop only; the training
thread only reads :attr:`Intake.queue`.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from liveparams.agent._requests import RequestLedger, row_seq
from liveparams.contract import UpdateOutcome, UpdateRequest

__all__ = ["Intake"]

logger = logging.getLogger(__name__)

READ_LIMIT = 500  # rows per re-read; more are read at once by another re-read


class Intake:
    """Feeds the bounded request queue from request rows.

    Args:
        queue_size (`int`): capacity of :attr:`queue`. When it is full, the remaining
            requests wait (at most one read's worth in memory, the rest in the table) until the trainer
            drains (``retry_backlog``).
        max_request_bytes (`int`): larger params are rejected.
        reject (`Callable[[UpdateOutcome], None]`): receives each rejection, to be recorded.
        resync (`Callable[[], None]`): asks for a REST re-read from :attr:`after_seq`.
    """

    def __init__(
        self,
        *,
        queue_size: int,
        max_request_bytes: int,
        reject: Callable[[UpdateOutcome], None],
        resync: Callable[[], None],
    ) -> None:
        self.queue: queue.Queue[UpdateRequest] = queue.Queue(queue_size)
        self._ledger = RequestLedger(max_request_bytes)
        self._reject = reject
        self._resync = resync
        # Rows that found the queue full, and the seq a read was complete up to (None: unknown).
        self._backlog: tuple[list[Mapping[str, Any]], int | None] | None = None

    @property
    def backlogged(self) -> bool:
        """Whether requests are waiting for room in the queue (read from any thread)."""
        return self._backlog is not None

    @property
    def after_seq(self) -> int | None:
        """Where the next re-read starts (``None``: the first read, undecided requests only)."""
        return self._ledger.last_seq

    @property
    def replay_after_step(self) -> int | None:
        """The resume step given to ``start()`` (see ``UpdateAgent.start``)."""
        return self._ledger.replay_after_step

    @property
    def read_limit(self) -> int:
        """How many rows the next re-read should ask for: the room left, within bounds."""
        return max(16, min(READ_LIMIT, self.queue.maxsize - self.queue.qsize()))

    def replay_applied_after(self, step: int | None) -> None:
        """Resumed from a checkpoint at ``step``: deliver again what was applied after it (before the first read)."""
        self._ledger.replay_after_step = step

    def on_change(self, payload: Mapping[str, Any]) -> None:
        """The Realtime ``postgres_changes`` callback (INSERTs of the job's requests). Never raises:
        an exception would kill the client's listener.
        """
        try:
            self._take_pushed(payload["data"]["record"], payload["data"].get("errors"))
        except Exception:
            logger.exception("Ignored a Realtime change the agent could not read")

    def on_broadcast(self, message: Mapping[str, Any]) -> None:
        """The Realtime Broadcast callback of ``transport=broadcast``: an ``INSERT`` event sent by
        ``realtime.broadcast_changes``, the row in ``payload.record``. Never raises, as :meth:`on_change`.
        """
        try:
            self._take_pushed(message["payload"]["record"], None)
        except Exception:
            logger.exception("Ignored a Realtime broadcast the agent could not read")

    def _take_pushed(self, record: Any, errors: object) -> None:
        """One pushed row, whichever transport brought it: taken on its own only when it is the next ``seq``."""
        seq = row_seq(record)
        if seq is None:
            logger.debug("Pushed row without seq (errors: %s); re-reading", errors)
            self._resync()
        elif self._ledger.handled(seq):
            pass  # a held or repeated event, or one a re-read already took
        elif self.backlogged:
            pass  # read from the mark once the backlog is queued
        elif not self._ledger.follows(seq):
            self._resync()  # something before it is not handled yet: read from the mark, in order
        else:
            self.ingest([record])

    def ingest_read(self, result: Mapping[str, Any], limit: int) -> bool:
        """Take one answer of ``read_parameter_update_requests`` asked for at most ``limit`` rows:
        ``{"latest_seq": n, "requests": [...]}``; return whether it held every request up to the latest.
        """
        rows = result.get("requests")
        latest = result.get("latest_seq")
        if not isinstance(rows, list) or not isinstance(latest, int):
            logger.warning("Unexpected answer when reading the job's requests; ignored")
            return False
        full = len(rows) >= limit
        self.ingest(rows, None if full else latest)
        if full and not self.backlogged:
            self._resync()  # a full page: there may be more
        return not full

    def ingest(self, rows: Sequence[Mapping[str, Any]], complete_to: int | None = None) -> None:
        """Queue what is new in ``rows`` (ascending seq) and hand rejections to ``reject``, in order.

        ``complete_to``: ``rows`` hold every request up to this seq (a whole read), so once they are
        handled nothing before it is missing.
        """
        ledger = self._ledger
        scan = ledger.scan(rows, room=self.queue.maxsize - self.queue.qsize())
        for item in scan.items:
            if isinstance(item, UpdateRequest):
                if item.id in scan.replayed:
                    logger.info("Resumed before update %s was applied: applying it again", item.id)
                else:
                    logger.info("New parameter update found: %s", scan.shown[item.id])
                # Only this thread puts and scan() counted the room, so this cannot be full.
                self.queue.put_nowait(item)
            else:
                logger.warning("Rejected parameter update %s: %s", item.request_id, item.reason)
                self._reject(item)
        if scan.blocked:
            if self._backlog is None:
                logger.warning(
                    "%d requests queued and not yet taken by the trainer; the rest wait in the table",
                    self.queue.qsize(),
                )
            rest = [row for row in rows if (seq := row_seq(row)) is not None and not ledger.handled(seq)]
            self._backlog = (rest, complete_to)
            return
        had_backlog, self._backlog = self._backlog is not None, None
        if complete_to is not None:
            ledger.caught_up(complete_to)
        if had_backlog:
            self._resync()  # pushes were set aside while the queue was full: read from the mark

    def retry_backlog(self) -> None:
        """The trainer drained: try again to queue what found the queue full."""
        if self._backlog is not None:
            self.ingest(*self._backlog)
