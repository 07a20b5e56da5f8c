"""``UpdateAgent``: the public face of the agent thread, safe to call from the training loop.

Every method here returns at once: ``drain()`` reads an in-memory queue,
``report()`` appends to an in-memory inbox, ``start()`` starts a thread, and
``close()`` waits at most its timeout. Nothing raises into training except
misuse (``start()`` after ``close()``).
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

from liveparams.agent._config import AgentConfig
from liveparams.agent._exceptions import AgentClosedError
from liveparams.agent._lifecycle import AgentStatus
from liveparams.agent._worker import Worker
from liveparams.contract import DRAIN_MAX_ITEMS, END_REASONS, RestartRecord, UpdateOutcome, UpdateRequest

__all__ = ["AgentStatus", "UpdateAgent"]


logger = logging.getLogger(__name__)


class UpdateAgent:
    """Delivers the job's parameter-update requests to the training thread, and their outcomes back to the database.

    Implements the ``UpdateSource`` protocol of ``trainer_hooks``.

    Args:
        config (`AgentConfig`): the job, the project and the key.

    Example:
        ```python
        agent = UpdateAgent.from_env()      # None (after one warning) when JOB_ID etc. are not set
        if agent is not None:
            with agent:                     # start() ... close()
                for request in agent.drain():
                    ...
                    agent.report([UpdateOutcome(request.id, OutcomeStatus.APPLIED, step=120)])
        ```
    """

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self._worker = Worker(config)
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def from_env(cls) -> UpdateAgent | None:
        """An agent configured by :meth:`AgentConfig.from_env`; ``None`` if the environment configures none."""
        config = AgentConfig.from_env()
        return None if config is None else cls(config)

    def __repr__(self) -> str:
        return f"UpdateAgent(job_id={self.config.job_id!r}, status={self.status.value!r})"

    @property
    def status(self) -> AgentStatus:
        """Where the agent stands: not started, starting, subscribed, degraded (polling) or closed."""
        return AgentStatus.CLOSED if self._closed else self._worker.lifecycle.status

    def start(self, replay_after_step: int | None = None) -> None:
        """Start the agent thread; idempotent, never waits on the network.

        Args:
            replay_after_step (`int`, *optional*): training resumed from a checkpoint at this global
                step. Requests recorded as ``applied`` at a later step are delivered once more (the
                checkpoint rewound the model past them); all other requests with an outcome are skipped.

        Raises:
            AgentClosedError: the agent was closed; an agent runs once.
        """
        with self._lock:
            if self._closed:
                raise AgentClosedError("this UpdateAgent was closed; create a new one to start again")
            if self._worker.lifecycle.status is not AgentStatus.NOT_STARTED:
                return
            self._worker.start(replay_after_step)
            atexit.register(self.close)
        # The old polling design's line, which users search for.
        logger.info("Runtime parameter updates enabled for job %s", self.config.job_id)

    @property
    def job_id(self) -> str:
        """The job this agent delivers requests of."""
        return self.config.job_id

    @property
    def receiving(self) -> bool:
        """Whether a request made now can still reach :meth:`drain`; never touches the network.

        False before :meth:`start`, after :meth:`close` or once the agent thread ended, once the
        trainer credential was revoked or rotated or a fixed token expired, and while the last read
        of the job's requests found no job (deleted by its owner, or no longer readable with this
        key). A paused run reads it at every round: when no ``resume`` can arrive any more, it goes on.
        """
        return not self._closed and self._worker.receiving

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until push is subscribed and the requests were re-read after it; return whether that happened in time.

        Requests are delivered whether or not this is ever true (the agent polls while push is down). Tests,
        demos and scripts use it to know the push path is live.
        """
        return self._worker.lifecycle.ready.wait(timeout)

    def wait_initial_read(self, timeout: float | None = None) -> bool:
        """Wait until the requests stored before :meth:`start` are queued (the first complete read over REST).

        It does not wait for push: the callback waits on it, bounded, after a resume, so that the replayed
        settings apply before the first resumed step even where Realtime is slow to confirm.
        """
        return self._worker.lifecycle.initial_read.wait(timeout)

    def drain(self, max_items: int = DRAIN_MAX_ITEMS) -> list[UpdateRequest]:
        """Take up to ``max_items`` validated requests, in request order, without blocking."""
        taken: list[UpdateRequest] = []
        requests = self._worker.intake.queue
        while len(taken) < max_items:
            try:
                taken.append(requests.get_nowait())
            except queue.Empty:
                break
        # Even when nothing was taken: a backlog set while the queue was being emptied needs this retry.
        if self._worker.intake.backlogged:
            self._worker.call_soon(self._worker.intake.retry_backlog)
        return taken

    def report(self, outcomes: Iterable[UpdateOutcome]) -> None:
        """Hand over outcomes to be recorded; never blocks (they are written on the agent thread)."""
        if self._closed:
            logger.warning("Dropped %d outcomes reported after the agent was closed", len(list(outcomes)))
            return
        self._worker.writer.submit(outcomes)

    def publish_metrics(self, step: int, metrics: Mapping[str, Any]) -> None:
        """Queue what the trainer logged at ``step`` for the job's owner; never blocks (sent on the agent thread).

        Only finite numbers are kept. Off with ``AgentConfig.metrics=False`` (``LIVEPARAMS_METRICS=off``).
        """
        metrics_publisher = self._worker.metrics
        if metrics_publisher is not None and not self._closed:
            metrics_publisher.publish(step, metrics)

    def record_pause(self, step: int | None) -> None:
        """Say that training holds at ``step`` (``command=pause``), or (None) that it goes on; returns at once.

        The job row shows it from the next heartbeat, which this brings forward (docs/contracts.md).
        """
        self._worker.record_pause(step)

    def record_step(self, step: int) -> None:
        """Say the global step training reached; one attribute write, for the step boundary's hot path.

        Nothing is sent for it: the heartbeat carries the last step written to the job row's
        ``trainer_step`` when it beats (docs/contracts.md).
        """
        self._worker.step = step

    def record_restart(self, record: RestartRecord) -> None:
        """Say an in-process restart or rewind is done, where it went on from and how long it took; returns at once.

        The job row shows it once the agent's heartbeat sent it, which this brings forward (docs/contracts.md).
        """
        self._worker.record_restart(record)

    def record_end(self, reason: str, step: int | None = None) -> None:
        """Say how training ended, for the job row when the agent closes; returns at once.

        Args:
            reason (`str`): ``"completed"``, ``"stopped"`` (by a request), ``"crashed"`` or ``"interrupted"``
                (Ctrl-C); the first two end the job's run (its pending requests get their final outcome),
                the others do not (docs/contracts.md), nor does any when ``close()`` could not record
                every outcome (it then records ``"closed"``, at ``step``). Without a call,
                ``close()`` records ``"closed"``; a process killed before closing records nothing, and its
                heartbeat going stale says so (docs/contracts.md).
            step (`int`, *optional*): the global step training ended at.

        Raises:
            ValueError: ``reason`` is not one of these.
        """
        if reason not in END_REASONS:
            raise ValueError(f"reason must be one of {', '.join(END_REASONS)}, got {reason!r}")
        self._worker.record_end(reason, step)

    def close(self, timeout: float | None = None) -> None:
        """Stop the thread, flushing outcomes for at most ``timeout`` seconds (default ``config.shutdown_timeout``).

        Idempotent. The flush is not held to ``outcome_writes_per_second``. Outcomes still unwritten at
        the deadline are dropped with a warning, and then the trainer detaches as ``"closed"`` rather
        than ending the run, so their requests stay pending instead of "cancelled: not applied".
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            atexit.unregister(self.close)
        if self._worker.lifecycle.status is AgentStatus.NOT_STARTED:
            return
        timeout = self.config.shutdown_timeout if timeout is None else timeout
        if not self._worker.stop(timeout):
            logger.warning(
                "The liveparams agent thread did not stop within %.1fs; it is a daemon and will not "
                "keep the process alive",
                timeout,
            )

    def __enter__(self) -> UpdateAgent:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
