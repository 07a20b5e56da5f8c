"""The Trainer callback: at each step boundary, take the queued requests and decide each one.

Per request it decides one outcome: applied at global step N (old → new per
parameter), rejected with a reason, superseded by a later request of the same
drain, or failed (the request is rolled back and training goes on). The jobs
this takes live in their own modules; this one tells the story of a step:

- ``_source_link``: the update source's lifecycle (process zero only);
- ``_record``: what checkpoints keep (what was decided, the values in force);
- ``_distributed``: every rank gets the same requests and agrees on each outcome;
- ``_decide``: check and apply one request, all-or-nothing;
- ``_coalesce``: what a later request of the same drain superseded;
- ``_resume``: the values in force set again after a resume.

Nothing here may raise into the training loop or wait on the network.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

from liveparams.contract import (
    DRAIN_MAX_ITEMS,
    OutcomeStatus,
    RestartRecord,
    UpdateOutcome,
    UpdateRequest,
    UpdateSource,
)
from liveparams.trainer_hooks import _distributed, _registry, _restart, _schedule
from liveparams.trainer_hooks._coalesce import mark_superseded
from liveparams.trainer_hooks._context import ApplyContext, Pause
from liveparams.trainer_hooks._decide import decide
from liveparams.trainer_hooks._record import DecisionRecord
from liveparams.trainer_hooks._replays import AppliedLog
from liveparams.trainer_hooks._resume import reapply_in_force
from liveparams.trainer_hooks._source_link import SourceFactory, SourceLink
from liveparams.trainer_hooks._trackers import log_to_trackers

__all__ = ["DEFAULT_INITIAL_READ_TIMEOUT", "HOLD_ROUND_S", "RuntimeParameterCallback"]

logger = logging.getLogger(__name__)

DEFAULT_INITIAL_READ_TIMEOUT = 5.0
# While paused, how often the source is drained (and, under DDP, rank 0's batch broadcast): the
# longest a rank waits in a collective during a pause, however long the pause, and the longest a
# request made while paused waits to apply.
HOLD_ROUND_S = 0.5


def _agent_from_env() -> UpdateSource | None:
    """The production source: a ``liveparams.agent.UpdateAgent`` configured from the environment, or None."""
    from liveparams.agent import UpdateAgent  # the agent pulls in the network stack; only rank 0 needs it

    return UpdateAgent.from_env()  # its config logs the one "disabled" warning itself


def _needs_step_end(request: UpdateRequest) -> bool:
    """Whether ``request`` sets control flags (a command, a restart), which only a step end can."""
    return "command" in request.params or any(name in request.params for name in _restart.ALL_RESTART_SETTINGS)


class RuntimeParameterCallback(TrainerCallback, ExportableState):
    """Applies live parameter updates from an :class:`UpdateSource` at step boundaries.

    Requests queued before training starts are applied in ``on_train_begin``
    (commands wait for the first step end); later ones after the optimizer
    step that follows their arrival, in ``on_step_end``. In multi-process
    runs only the world's process zero has a source, and every rank applies
    what it sends, at the exchange after the one that took them (see ``sync_ranks``).

    Args:
        source (`UpdateSource`, *optional*): a ready source (tests, custom transports).
        source_factory (`Callable[[], UpdateSource | None]`, *optional*): builds a fresh source at each
            ``train()`` start on process zero; returning None disables updates for that run.
        trainer (`Trainer`, *optional*): needed for knobs TRL keeps on the trainer object (``beta``);
            also settable later with :meth:`bind`. Held weakly.
        max_items_per_step (`int`, defaults to ``DRAIN_MAX_ITEMS``): most requests drained at one step boundary.
        initial_read_timeout (`float`, defaults to 5.0): when resuming, how long train begin waits
            for the source's initial read, so that the requests replayed after the resume apply
            before the first resumed step. Past it, training goes on and a warning says so. A
            fresh start never waits: requests apply at the first step boundary after they arrive.
        sync_ranks (`bool`, defaults to True): in a multi-process run, broadcast process zero's
            requests so that every rank applies them at the same step. Turning it off makes
            rank 0 change alone and the replicas silently diverge; it exists only to show that
            (tests/distributed). With it on, rank 0 tells every rank once at train begin whether
            it has a source; if not, no rank makes any per-step collective. If it has, what it
            takes at one exchange applies at the next on every rank: the exchange overlaps the
            steps in between instead of holding the training thread, and when steps are short
            the exchanges are about 100 ms of training apart (``_distributed``).

    What is checkpointed (:meth:`state`, in ``trainer_state.json``): a bounded record of
    what was decided (the highest ``seq`` decided, the few ids held undecided, the last
    256 outcomes decided) and the values in force. On
    ``resume_from_checkpoint`` at global step S:

    - the source is started with ``replay_after_step=S`` and delivers again the
      requests applied after S (the checkpoint rewound the run past them); the callback
      waits for that (at most ``initial_read_timeout``) and applies them before the first
      resumed step;
    - requests decided before the checkpoint are not applied again; one whose outcome
      never reached the source's record (a crash before the flush) is reported again;
    - what the checkpoint does not restore is set again (``args.max_grad_norm``,
      schedule keywords and ``learning_rate_mode="constant"``, ``trainer.beta``,
      ``state`` intervals and ``max_steps``), but not what it does: the learning
      rate and weight decay come back from ``optimizer.pt``/``scheduler.pt``, with
      every later change by the schedule (a plateau reduction, a frozen rate) kept.

    Keep transformers' default
    ``restore_callback_states_from_checkpoint=False``: with True, Trainer replaces this
    instance by one built without arguments, which has no source.

    Example:

    ```python
    trainer = SFTTrainer(model=..., args=..., train_dataset=...)
    trainer.add_callback(RuntimeParameterCallback.from_env(trainer))
    trainer.train()
    ```
    """

    def __init__(
        self,
        source: UpdateSource | None = None,
        *,
        source_factory: SourceFactory | None = None,
        trainer: Any = None,
        max_items_per_step: int = DRAIN_MAX_ITEMS,
        initial_read_timeout: float = DEFAULT_INITIAL_READ_TIMEOUT,
        sync_ranks: bool = True,
    ) -> None:
        if max_items_per_step < 1:
            raise ValueError(f"max_items_per_step must be >= 1, got {max_items_per_step}")
        self._link = SourceLink(source, source_factory)
        self._trainer_ref: Callable[[], Any] = (lambda: None) if trainer is None else weakref.ref(trainer)
        self.max_items_per_step = max_items_per_step
        self.initial_read_timeout = initial_read_timeout
        self.sync_ranks = sync_ranks
        self.record = DecisionRecord()  # checkpointed (see state())
        self._held: list[UpdateRequest] = []  # commands drained at train begin, decided at the first step end
        self._stop_applied = False  # whether a `command=stop` request ends this run (the job row says "stopped")
        self._restarting: _restart.PendingRestart | None = None  # the in-process restart under way (source kept open)
        self._timing: _restart.PendingRestart | None = None  # the restart just done, until its first step begins
        self._applied = AppliedLog()  # what this process applied, by step, for a rewind (see _replays)
        self._logs = True  # process zero logs the decisions; the other ranks make the same ones silently
        self._ranks: _distributed.RankSync | None = None  # built once per process group
        self._sync: _distributed.RankSync | None = None  # set while this run exchanges requests every step
        self._pause = Pause()  # set by command=pause: on_step_end then holds (see _hold)

    @classmethod
    def from_env(cls, trainer: Any = None, **kwargs: Any) -> RuntimeParameterCallback:
        """The one-line embedding: a ``liveparams.agent.UpdateAgent`` from the environment, built at train start.

        With no configuration (no ``JOB_ID`` etc.) the agent's config logs one warning and
        this callback does nothing.
        """
        return cls(source_factory=_agent_from_env, trainer=trainer, **kwargs)

    def bind(self, trainer: Any) -> RuntimeParameterCallback:
        """Give the callback its trainer (for ``beta``) after construction; returns self."""
        self._trainer_ref = weakref.ref(trainer)
        return self

    def state(self) -> dict[str, Any]:
        """What ``trainer_state.json`` keeps, so resume neither re-applies nor loses an update (see ``_record``).

        Only reads: calling it twice gives the same answer.
        """
        try:  # the samples consumed, for a restart or a rewind to go on from exactly there
            data = _restart.data_record(self._trainer_ref())
        except Exception:
            logger.exception("recording the data position in the checkpoint failed")
            data = {}
        return {"args": {}, "attributes": {**self.record.checkpoint(), **({"data": data} if data else {})}}

    def close(self) -> None:
        """Close the source now (flushing outcomes); idempotent. Called at train end."""
        self._link.close()

    # ---- the story of a run ----------------------------------------------------------------------

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        resume_step = int(state.global_step) if state.global_step > 0 else None  # > 0 only when resuming
        restarting, self._restarting = self._restarting, None
        self._stop_applied = False
        self._pause = Pause()
        self._logs = bool(state.is_world_process_zero)
        try:
            self._take_checkpoint_record(state)
            if resume_step is not None and self.record.in_force:
                reapply_in_force(self.record.in_force, self._context(args, state, control, kwargs))
            if restarting is not None:  # the source stayed open: no subscription lost
                self._timing = restarting  # until the first step begins (on_step_begin)
                self._held = self._replays_after(restarting.step)
            elif state.is_world_process_zero:
                self._link.open(self, resume_step, self.initial_read_timeout)
                self._use_record_of(self._link.job_id)
        except Exception:
            logger.exception("runtime parameter updates: setup at train begin failed")
        self._link.follow(state)  # a new train() (resume, restart, rewind) counts its steps in a new state
        self._sync = self._connect_ranks()  # every rank, whatever happened above
        self._step(args, state, control, kwargs, at_train_begin=True)

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """The first step after an in-process restart or a rewind begins: say how long it took, and where."""
        restart, self._timing = self._timing, None
        if restart is None:
            return
        record = RestartRecord(restart.kind, restart.step, restart.from_step, dict(restart.settings), restart.elapsed())
        if record.kind == "rewind":
            where = f"Rewound in-process from step {record.from_step} to step {record.step}"
        else:
            where = f"Restarted in-process at step {record.step} with {record.settings}"
        logger.info("%s in %.2f s", where, record.seconds)
        self._link.record_restart(record)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._link.at_step(state)
        self._step(args, state, control, kwargs, at_train_begin=False)
        self._hold(args, state, control, kwargs)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self._link.publish_metrics(int(state.global_step), logs or {})  # only enqueues (docs/contracts.md)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Forget the applied requests no rewind can replay any more (one listing of ``output_dir`` per save)."""
        try:
            self._applied.forget_before_checkpoints(getattr(args, "output_dir", None), int(state.global_step))
        except Exception:
            logger.exception("runtime parameter updates: pruning the requests kept for a rewind failed")

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._finish_ranks()
        trainer = self._trainer_ref()
        if self._stop_applied:
            _restart.cancel(trainer)  # a stop applied with a restart wins
        self._restarting = _restart.pending(trainer)
        if self._restarting is None:
            self._link.close("stopped" if self._stop_applied else "completed", int(state.global_step))

    # ---- the story of a step boundary ------------------------------------------------------------

    def _step(
        self,
        args: Any,
        state: Any,
        control: Any,
        kwargs: dict[str, Any],
        *,
        at_train_begin: bool,
        holding: bool = False,
    ) -> None:
        """One step boundary's exchange and decisions; ``holding``: a round of a pause, which is always one."""
        if self._link.source is None and self._sync is None and not self._held:
            return  # the common case when updates are off: no work at all, no collective
        step = int(state.global_step)
        if self._sync is not None and not at_train_begin and not holding and not self._sync.due(step):
            return  # between two exchanges: rank 0 takes nothing, no rank waits for anything
        try:
            requests = self._receive(at_train_begin, step)
            if requests:
                ctx = self._context(args, state, control, kwargs)
                agree = self._sync.agree if self._sync is not None else None
                outcomes = [decide(r, r.id if r else "(unreadable)", ctx, agree) for r in requests]
                self._conclude(requests, mark_superseded(requests, outcomes))
        except Exception:
            logger.exception("runtime parameter updates: step %d skipped after an internal error", step)
        if self._sync is not None:
            stopping = bool(control.should_training_stop)
            self._post_next(self._sync, stopping, step, first=at_train_begin, holding=holding)

    def _hold(self, args: Any, state: Any, control: Any, kwargs: dict[str, Any]) -> None:
        """While ``command=pause`` holds the run: take no step, and apply what arrives at once, at this step.

        Every rank holds (the pause was decided on all, like any change) and leaves at the same
        round, when a ``resume`` or ``stop`` applies. Each round is one step boundary's exchange,
        every ``HOLD_ROUND_S``, whatever the spacing of exchanges while training: with several
        ranks, what rank 0 posted at the previous round is collected and decided, and what it
        takes now is posted for the next. So a request made while paused applies within two
        rounds, and no rank waits in a collective much longer than a round, however long the
        pause (NCCL's watchdog, a short process-group timeout). Ctrl-C raises out of the sleep;
        the agent's thread goes on meanwhile (heartbeat, Presence, request intake).

        A hold no ``resume`` can reach any more ends with a warning and training goes on
        (:meth:`_resume_unreachable`): holding the devices for ever, with nobody able to lift it,
        is worse than the pause not lasting.
        """
        paused_at = self._pause.step
        if paused_at is None:
            return
        self._link.record_pause(paused_at)
        if self._logs:
            logger.info("Paused at step %d: holding until `command=resume` or `stop`", paused_at)
        while self._pause.step is not None:
            if self._resume_unreachable():
                logger.warning("Paused at step %d with no update source left to resume it: going on", paused_at)
                self._pause.step = None
                break
            time.sleep(HOLD_ROUND_S)
            self._step(args, state, control, kwargs, at_train_begin=False, holding=True)
        self._link.record_pause(None)
        if self._logs:
            logger.info("Pause at step %d ended", paused_at)

    def _resume_unreachable(self) -> bool:
        """Whether no ``resume`` can reach this run any more; the same answer on every rank at the same round.

        A single process asks its source (``SourceLink.receiving``: none left, closed, its credential
        revoked, its job gone). Ranks that exchange requests read rank 0's answer in the header
        collected at this round, so that they all leave the hold together.
        """
        if self._sync is not None:
            return self._sync.rank0_lost
        return not self._link.receiving

    def _receive(self, at_train_begin: bool, step: int) -> list[UpdateRequest | None]:
        """This boundary's requests, the same on every rank.

        With several ranks, those rank 0 posted at the previous exchange (see ``_distributed``);
        at train begin, and in a single process, those taken now.
        """
        if self._sync is not None and not at_train_begin:
            return self._sync.collect(step)
        requests = self._take_contained(at_train_begin, step)
        if self._sync is None:
            return list(requests)
        try:
            return self._sync.broadcast(requests)
        except _distributed.NotSent as exc:
            self._fail_unsent(requests, step, exc)
            return []

    def _post_next(
        self, sync: _distributed.RankSync, stopping: bool, step: int, *, first: bool, holding: bool = False
    ) -> None:
        """Send what rank 0 takes now, to apply at the next exchange on every rank; every rank calls it.

        Nothing is taken when this boundary ends the run: there is no next one, and what is
        queued stays for the next ``train()``. During a pause (``holding``) the header also says
        whether rank 0's source can still receive (only rank 0's answer is sent).
        """
        requests = [] if stopping else self._take_contained(False, step)
        try:
            sync.post(requests, step, first=first, lost=holding and not self._link.receiving)
        except _distributed.NotSent as exc:
            self._fail_unsent(requests, step, exc)
        except Exception:
            logger.exception("runtime parameter updates: the requests taken at step %d could not be posted", step)

    def _take_contained(self, at_train_begin: bool, step: int) -> list[UpdateRequest]:
        """:meth:`_take`, failing to none: the exchange that follows must happen on every rank whatever fails."""
        try:
            return self._take(at_train_begin)
        except Exception:
            logger.exception("runtime parameter updates: step %d skipped after an internal error", step)
            return []

    def _fail_unsent(self, requests: list[UpdateRequest], step: int, exc: Exception) -> None:
        logger.exception("requests could not be sent to the other ranks; they fail")
        failed = [
            UpdateOutcome(r.id, OutcomeStatus.FAILED, step=step, reason=f"could not be sent to every rank: {exc}")
            for r in requests
        ]
        self._conclude(list(requests), failed)

    def _take(self, at_train_begin: bool) -> list[UpdateRequest]:
        """What the source has for this step, after the commands held at train begin."""
        requests = self._held + self._undecided(self._link.drain(self.max_items_per_step))
        self._held = []
        if at_train_begin:
            # Control flags are reset as each step begins: a command (or a restart) must wait for the first step end.
            self._held = [r for r in requests if _needs_step_end(r)]
            requests = [r for r in requests if not _needs_step_end(r)]
            for request in self._held:
                self.record.hold(request)
        return requests

    def _undecided(self, drained: list[UpdateRequest]) -> list[UpdateRequest]:
        """Drop what the checkpoint says was decided; report again an outcome that never reached the source."""
        fresh, lost = [], []
        for request in drained:
            if not self.record.is_decided(request):
                fresh.append(request)
            elif (outcome := self.record.lost_outcome(request)) is not None:
                logger.info("Reporting again the outcome of request %s, lost before it was recorded", request.id)
                lost.append(outcome)
            else:
                logger.info(
                    "Request %s (seq %d) is not after seq %d, decided already: skipped",
                    request.id,
                    request.seq,
                    self.record.decided_seq,
                )
        self._link.report(lost)
        return fresh

    def _conclude(self, requests: list[UpdateRequest | None], outcomes: list[UpdateOutcome]) -> None:
        """Log each change once, keep the values in force and the record, and hand the outcomes over."""
        for request, outcome in zip(requests, outcomes, strict=True):
            if request is None:
                continue
            if outcome.status is OutcomeStatus.SUPERSEDED and self._logs:
                logger.info("Parameter update %s superseded by %s", request.id, outcome.superseded_by)
            for name, change in outcome.changes.items():
                applier = _registry.get_applier(name)
                if self._logs:  # every rank applies; one of them says so
                    applier.log_applied(change.old, change.new, int(outcome.step or 0))
                if not applier.one_off:
                    self.record.in_force[name] = change.new
            self.record.decide(request, outcome)
            if self._logs:
                log_to_trackers(self._trainer_ref(), outcome)  # at its step, under liveparams/<parameter>
            if outcome.status is OutcomeStatus.APPLIED and request.params.get("command") == "stop":
                self._stop_applied = True
            if outcome.status is OutcomeStatus.APPLIED:
                self._applied.add(int(outcome.step or 0), _restart.as_replay(request))
        self._link.report(o for r, o in zip(requests, outcomes, strict=True) if r is not None)

    def _replays_after(self, step: int) -> list[UpdateRequest]:
        """What a resume from ``step`` replays (the requests applied after it), forgotten here until applied again.

        After an in-process restart there are none (the checkpoint is this step's); after a
        rewind the source is not started again, so these stand in for its replay.
        """
        return self._applied.replays_after(step)

    # ---- set-up ----------------------------------------------------------------------------------

    def _take_checkpoint_record(self, state: Any) -> None:
        """Take the checkpoint's record; a checkpoint written without this callback has none.

        It replaces this instance's own: a ``train()`` earlier in this process may have gone
        past the checkpoint, and what it applied after it is now delivered again by the source.
        """
        key = type(self).__name__
        saved = state.stateful_callbacks.get(key)
        if isinstance(saved, dict):
            self.record = DecisionRecord.from_checkpoint(saved.get("attributes", {}))
        elif key not in state.stateful_callbacks:
            # Without this, the next save raises KeyError when the checkpoint lacked the callback.
            state.stateful_callbacks[key] = {"args": {}, "attributes": {}}

    def _use_record_of(self, job_id: str | None) -> None:
        """Keep the record only when it is about this run's job (see ``DecisionRecord.for_job``)."""
        record = self.record.for_job(job_id)
        if record is not self.record:
            logger.warning(
                "The checkpoint's record of decided requests is for job %s, not job %s: starting a new one",
                self.record.job_id,
                job_id,
            )
        self.record = record

    def _connect_ranks(self) -> _distributed.RankSync | None:
        """The per-step exchange for this run, or None: single process, ``sync_ranks`` off, or rank 0 has no source.

        Collective: every rank calls it once at train begin.
        """
        if not self.sync_ranks or not _distributed.is_multi_process():
            return None
        try:
            if not _distributed.every_rank_present():
                logger.warning(
                    "runtime parameter updates disabled for this run: a rank lacks the callback, and a change "
                    "applied without it would split the replicas (give every rank the callback, or use liveparams run)"
                )
                self._link.close()
                return None
            if self._ranks is None or not self._ranks.is_for_current_world():
                self._ranks = _distributed.RankSync()
            return self._ranks if self._ranks.enabled_on_rank0(self._link.source is not None) else None
        except Exception:
            logger.exception("runtime parameter updates disabled: ranks could not agree at train begin")
            return None

    def _finish_ranks(self) -> None:
        """Every rank: wait for the header posted at the last step boundary, so that nothing stays in flight.

        It announces nothing when the run ended as planned (nothing is taken at a boundary that
        ends it); a loop that broke off early may leave requests in it, undecided: the source
        delivers them again to the next ``train()`` of the job.
        """
        sync, self._sync = self._sync, None
        if sync is None:
            return
        try:
            for request in sync.finish():
                logger.info("Request %s came as training ended; it stays undecided for the next run", request.id)
        except Exception:
            logger.exception("runtime parameter updates: the last header from rank 0 could not be received")

    def _context(self, args: Any, state: Any, control: Any, kwargs: dict[str, Any]) -> ApplyContext:
        return ApplyContext(
            args=args,
            state=state,
            control=control,
            optimizer=kwargs.get("optimizer"),
            lr_scheduler=_schedule.unwrap(kwargs.get("lr_scheduler")),
            model=kwargs.get("model"),
            train_dataloader=kwargs.get("train_dataloader"),
            trainer=self._trainer_ref(),
            pause=self._pause,
        )
