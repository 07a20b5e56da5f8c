"""Where row snapshots, pushed or re-read, become queued requests and recorded rejections.

Both paths (the Realtime callback and REST re-reads) end in :meth:`Intake.ingest`,
so there is one place that decides what is new. It runs on the agent's event
loop only; the training thread only reads :attr:`Intake.queue`.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from liveparams.agent._requests import RequestLedger
from liveparams.contract import UpdateOutcome, UpdateRequest

__all__ = ["Intake"]

logger = logging.getLogger(__name__)


class Intake:
    """Feeds the bounded request queue from snapshots of the job's row.

    Args:
        updates_column (`str`): the row's requests array.
        outcomes_column (`str`): the row's outcomes map.
        queue_size (`int`): capacity of :attr:`queue`. When it is full, the remaining
            requests stay on the row and are taken once the trainer drains (``retry_backlog``).
        max_request_bytes (`int`): larger entries are rejected.
        reject (`Callable[[UpdateOutcome], None]`): receives each rejection, to be recorded on the row.
        resync (`Callable[[], None]`): asks for a REST re-read, when a pushed record lacks the requests
            (e.g. the server cut an oversized record down).
    """

    def __init__(
        self,
        *,
        updates_column: str,
        outcomes_column: str,
        queue_size: int,
        max_request_bytes: int,
        reject: Callable[[UpdateOutcome], None],
        resync: Callable[[], None],
    ) -> None:
        self.queue: queue.Queue[UpdateRequest] = queue.Queue(queue_size)
        self._updates_column = updates_column
        self._outcomes_column = outcomes_column
        self._ledger = RequestLedger(max_request_bytes)
        self._reject = reject
        self._resync = resync
        self._backlog: tuple[Sequence[Any], Mapping[str, Any]] | None = None

    @property
    def backlogged(self) -> bool:
        """Whether requests are waiting for room in the queue (read from any thread)."""
        return self._backlog is not None

    def replay_applied_after(self, step: int | None) -> None:
        """Resumed from a checkpoint at ``step``: deliver again what was applied after it (before the first scan)."""
        self._ledger.replay_after_step = step

    def on_change(self, payload: Mapping[str, Any]) -> None:
        """The Realtime ``postgres_changes`` callback. Never raises: an exception would kill the client's listener.

        An event that adds no request (progress updates, the agent's own outcome
        writes) costs a length check and one id comparison.
        """
        try:
            record = payload["data"]["record"]
            updates = record.get(self._updates_column) if isinstance(record, Mapping) else None
            if not isinstance(updates, list):
                logger.debug(
                    "Change without %s (errors: %s); re-reading the row",
                    self._updates_column,
                    payload["data"].get("errors"),
                )
                self._resync()
                return
            if not self._ledger.is_current(updates):
                self.ingest(updates, record.get(self._outcomes_column) or {})
        except Exception:
            logger.exception("Ignored a Realtime change the agent could not read")

    def ingest_row(self, row: Mapping[str, Any]) -> None:
        """Take a row read over REST."""
        updates = row.get(self._updates_column) or []
        outcomes = row.get(self._outcomes_column) or {}
        if not isinstance(updates, list) or not isinstance(outcomes, Mapping):
            logger.warning(
                "Unexpected shape of %s/%s on the job row; ignored", self._updates_column, self._outcomes_column
            )
            return
        if not self._ledger.is_current(updates):
            self.ingest(updates, outcomes)

    def ingest(self, updates: Sequence[Any], outcomes: Mapping[str, Any]) -> None:
        """Queue what is new in ``updates`` and hand rejections to ``reject``, in array order."""
        scan = self._ledger.scan(updates, outcomes, room=self.queue.maxsize - self.queue.qsize())
        for item in scan.items:
            if isinstance(item, UpdateRequest):
                if item.id in scan.replayed:
                    logger.info("Resumed before update %s was applied: applying it again", item.id)
                else:
                    logger.info("New parameter update found: %s", scan.raw[item.id])
                # Only this thread puts and scan() counted the room, so this cannot be full.
                self.queue.put_nowait(item)
            else:
                logger.warning("Rejected parameter update %s: %s", item.request_id, item.reason)
                self._reject(item)
        if scan.blocked and self._backlog is None:
            logger.warning(
                "%d requests queued and not yet taken by the trainer; the rest wait on the row", self.queue.qsize()
            )
        self._backlog = (updates, outcomes) if scan.blocked else None

    def retry_backlog(self) -> None:
        """Try again to queue requests that found the queue full (after the trainer drained)."""
        if self._backlog is not None:
            self.ingest(*self._backlog)
