"""The update source of one ``train()``: opened on process zero at train begin, closed at its end.

Trainer has no exception hook, so a source left open by a ``train()`` that raised is
closed when the callback is collected, at interpreter exit, or at the next
``train()`` start, whichever comes first. Closing uses the source's own timeout
(``AgentConfig.shutdown_timeout`` for the agent): the callback sets none.
"""

from __future__ import annotations

import atexit
import logging
import sys
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from liveparams.contract import RestartRecord, UpdateOutcome, UpdateRequest, UpdateSource

__all__ = ["SourceFactory", "SourceLink"]

logger = logging.getLogger(__name__)

SourceFactory = Callable[[], "UpdateSource | None"]


def _close_quietly(source: UpdateSource, reason: str | None, step: int | None) -> None:
    if reason is not None:
        try:
            source.record_end(reason, step)
        except Exception:
            logger.exception("telling the update source how training ended failed")
    try:
        source.close()
    except Exception:
        logger.exception("closing the update source failed")


class _Reached:
    """The step a run has reached, for a source closed after the run ended without saying so.

    The trainer counts a step before any callback hears of its end, so Ctrl-C, or a user's
    callback raising before ours, can land after the count and before our ``on_step_end``. The
    trainer's own count (its ``TrainerState``) is then the truth; the last boundary we saw is
    only the fallback, for a state that cannot be read.
    """

    def __init__(self, step: int) -> None:
        self.step = step
        self.state: Any = None  # the TrainerState of the current train(): a restart makes a new one

    def now(self) -> int:
        try:
            return int(self.state.global_step)
        except Exception:
            return self.step


def _close_abandoned(source: UpdateSource, reached: _Reached) -> None:
    """A source whose ``train()`` never reached its end: it raised, or Ctrl-C interrupted it.

    At interpreter exit ``sys.last_value`` is the exception that ended the script, so an
    uncaught ``KeyboardInterrupt`` is told apart from a crash. Either way the run is not over:
    requests made meanwhile wait for the run that resumes it.
    """
    step = reached.now()
    reason = "interrupted" if isinstance(getattr(sys, "last_value", None), KeyboardInterrupt) else "crashed"
    logger.warning(
        "Training %s at step %s; the job row says so, and requests made meanwhile wait for the resumed run",
        reason,
        step,
    )
    _close_quietly(source, reason, step)


class SourceLink:
    """Holds the source while a run is going; every method is safe to call when there is none.

    Args:
        given (`UpdateSource`, *optional*): a ready source, started at each ``train()``.
        factory (`SourceFactory`, *optional*): builds a fresh source at each ``train()`` instead.
    """

    def __init__(self, given: UpdateSource | None, factory: SourceFactory | None) -> None:
        if given is not None and factory is not None:
            raise ValueError("pass either source or source_factory, not both")
        self._given = given
        self._factory = factory
        self.source: UpdateSource | None = None
        self._finalizer: weakref.finalize | None = None
        self._reached: _Reached | None = None  # where the run is, for a source closed as crashed
        self._record_step: Callable[[int], None] | None = None  # the source's optional record_step, looked up once
        self._receiving_failed = False  # `receiving` raised once: said once, not at every round of a pause

    def open(self, owner: object, resume_step: int | None, initial_read_timeout: float) -> None:
        """Start a source for this run; failing to start disables updates for this run.

        ``owner`` is the callback: collecting it closes the source. With ``resume_step`` the source
        replays what the checkpoint rewound, and this waits (at most ``initial_read_timeout``
        seconds) for its initial read, so that the replays apply before the first resumed step.
        A fresh start does not wait: training never waits on the network unless correctness needs it.
        """
        self._abandon()  # a source left open by a train() that raised
        try:
            source = self._factory() if self._factory is not None else self._given
            if source is None:
                return
            self._record_step = getattr(source, "record_step", None)
            self._tell_step(resume_step or 0)  # before start: the trainer attaches at this step
            if resume_step is None:
                source.start()
            else:
                logger.info("Resumed at step %d: updates applied after it will be applied again", resume_step)
                source.start(replay_after_step=resume_step)
        except Exception:
            self._record_step = None
            logger.exception("runtime parameter updates disabled: the update source failed to start")
            return
        self.source = source
        self._reached = _Reached(resume_step or 0)
        self._finalizer = weakref.finalize(owner, _close_abandoned, source, self._reached)
        # Before the source's own exit hook (atexit runs the last registered first), so that a
        # script ended by Ctrl-C records where it stopped instead of a bare "closed".
        atexit.register(self._abandon)
        if resume_step is not None:
            self._wait_initial_read(source, initial_read_timeout)

    @staticmethod
    def _wait_initial_read(source: UpdateSource, timeout: float) -> None:
        """So that the requests replayed on resume apply before the first resumed step."""
        began = time.monotonic()
        try:
            ready = source.wait_initial_read(timeout)
        except Exception:
            logger.exception("waiting for the update source's initial read failed")
            return
        if not ready:
            logger.warning(
                "The update source's initial read did not finish within %.1fs; training goes on and "
                "the requests replayed after the resume apply at the first step boundary after they arrive",
                timeout,
            )
        else:
            logger.debug("initial read done in %.3fs", time.monotonic() - began)

    @property
    def job_id(self) -> str | None:
        """The source's job, or None without a source."""
        if self.source is None:
            return None
        try:
            return self.source.job_id
        except Exception:
            logger.exception("asking the update source for its job failed")
            return None

    @property
    def receiving(self) -> bool:
        """Whether a request can still reach this run: a source is open and does not say it cannot.

        The source's optional ``receiving`` (outside the protocol; an attribute read, see
        ``UpdateSource``): a source without it receives while it is open. One that fails to answer
        is taken to receive, so a bug there never ends a pause the user asked for.
        """
        if self.source is None:
            return False
        try:
            return bool(getattr(self.source, "receiving", True))
        except Exception:
            if not self._receiving_failed:
                logger.exception("asking the update source whether it still receives failed")
            self._receiving_failed = True
            return True

    def drain(self, max_items: int) -> list[UpdateRequest]:
        if self.source is None:
            return []
        try:
            return self.source.drain(max_items)
        except Exception:
            logger.exception("draining the update source failed")
            return []

    def report(self, outcomes: Iterable[UpdateOutcome]) -> None:
        outcomes = list(outcomes)
        if self.source is None or not outcomes:
            return
        try:
            self.source.report(outcomes)
        except Exception:
            logger.exception("handing %d outcomes to the update source failed", len(outcomes))

    def publish_metrics(self, step: int, metrics: Mapping[str, Any]) -> None:
        """What the trainer logged, handed to the source (one that predates ``publish_metrics`` is skipped)."""
        publish = getattr(self.source, "publish_metrics", None)
        if publish is None:
            return
        try:
            publish(step, metrics)
        except Exception:
            logger.exception("handing metrics to the update source failed")

    def record_pause(self, step: int | None) -> None:
        """Say the run holds at ``step`` (None: it goes on again), for the job row; a source without it is skipped."""
        self._tell("record_pause", step, "pause")

    def record_restart(self, record: RestartRecord) -> None:
        """Say an in-process restart or rewind is done, and how long it took; a source without it is skipped."""
        self._tell("record_restart", record, "restart")

    def _tell(self, method: str, value: Any, what: str) -> None:
        """Call the source's optional ``method`` (outside the protocol) with ``value``; failures are logged."""
        call = getattr(self.source, method, None)
        if call is None:
            return
        try:
            call(value)
        except Exception:
            logger.exception("telling the update source about the %s failed", what)

    def follow(self, state: Any) -> None:
        """Read the run's step from ``state`` (this ``train()``'s ``TrainerState``) if it ends without saying so."""
        if self._reached is not None:
            self._reached.state = state

    def at_step(self, state: Any) -> None:
        """Note the step boundary reached, so a source closed after a crash can say where, and tell the source.

        Every step boundary goes through here: the source's ``record_step`` must only note the step
        (the agent writes one attribute, which its heartbeat reads when it beats).
        """
        if self._reached is not None:
            self._reached.step, self._reached.state = int(state.global_step), state
            self._tell_step(self._reached.step)

    def _tell_step(self, step: int) -> None:
        record_step = self._record_step
        if record_step is None:
            return
        try:
            record_step(step)
        except Exception:
            self._record_step = None  # said once: a source whose record_step fails is not asked again
            logger.exception("telling the update source the step failed; it is not told again this run")

    def close(self, reason: str | None = None, step: int | None = None) -> None:
        """Close the source now (flushing outcomes), first saying how training ended if ``reason``; idempotent.

        ``reason`` is one of ``END_REASONS``; None closes without one (the job row then says "closed").
        """
        source, finalizer = self.source, self._finalizer
        self.source = self._finalizer = self._record_step = None
        atexit.unregister(self._abandon)
        if source is not None and finalizer is not None and finalizer.detach() is not None:
            _close_quietly(source, reason, step)

    def _abandon(self) -> None:
        """Close a source whose run never reached its end as crashed; idempotent."""
        finalizer, self._finalizer, self.source, self._record_step = self._finalizer, None, None, None
        atexit.unregister(self._abandon)
        if finalizer is not None:
            finalizer()
