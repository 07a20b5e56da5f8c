"""The Trainer callback that applies queued parameter updates at step boundaries.

Per request it decides one outcome: applied at global step N (old → new per
parameter), rejected with a reason, superseded by a later request for the
same parameter, or failed (an applier raised; the request's partial changes
are rolled back and training goes on). Nothing here may raise into the
training loop or wait on the network.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

from liveparams.contract import (
    Change,
    InvalidParameter,
    OutcomeStatus,
    UpdateOutcome,
    UpdateRequest,
    UpdateSource,
    validate_parameter,
)
from liveparams.trainer_hooks import _distributed, _registry, _schedule, _snapshot
from liveparams.trainer_hooks._context import ApplyContext

__all__ = ["DEFAULT_CLOSE_TIMEOUT", "DEFAULT_MAX_ITEMS_PER_STEP", "RuntimeParameterCallback"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_ITEMS_PER_STEP = 64
DEFAULT_CLOSE_TIMEOUT = 2.0

SourceFactory = Callable[[], "UpdateSource | None"]


def _agent_from_env() -> UpdateSource | None:
    """The production source: a ``liveparams.agent.UpdateAgent`` configured from the environment, or None."""
    from liveparams.agent import UpdateAgent  # the agent pulls in the network stack; only rank 0 needs it

    return UpdateAgent.from_env()  # its config logs the one "disabled" warning itself


def _close_quietly(source: UpdateSource, timeout: float) -> None:
    try:
        source.close(timeout)
    except Exception:
        logger.exception("closing the update source failed")


class RuntimeParameterCallback(TrainerCallback, ExportableState):
    """Applies live parameter updates from an :class:`UpdateSource` at step boundaries.

    Requests queued before training starts are applied in ``on_train_begin``
    (commands wait for the first step end); later ones after the optimizer
    step that follows their arrival, in ``on_step_end``. In multi-process
    runs only the world's process zero has a source, and every rank applies
    what it broadcasts (see ``sync_ranks``).

    Args:
        source (`UpdateSource`, *optional*): a ready source (tests, custom transports).
        source_factory (`Callable[[], UpdateSource | None]`, *optional*): builds a fresh source at each
            ``train()`` start on process zero; returning None disables updates for that run.
        trainer (`Trainer`, *optional*): needed for knobs TRL keeps on the trainer object (``beta``);
            also settable later with :meth:`bind`. Held weakly.
        max_items_per_step (`int`, defaults to 64): most requests drained at one step boundary.
        close_timeout (`float`, defaults to 2.0): seconds the source may spend flushing outcomes at close.
        sync_ranks (`bool`, defaults to True): in a multi-process run, broadcast process zero's
            requests so that every rank applies them at the same step. Turning it off makes
            rank 0 change alone and the replicas silently diverge; it exists only to show that
            (tests/distributed). With it on, rank 0 tells every rank once at train begin whether
            it has a source; if not, no rank makes any per-step collective.

    What is checkpointed (:meth:`state`, in ``trainer_state.json``): the ids of the
    requests already decided and the values in force. On ``resume_from_checkpoint``
    at global step S:

    - the source is started with ``replay_after_step=S`` and delivers again the
      requests applied after S (the checkpoint rewound the run past them); they are
      applied at once, before the first resumed step;
    - the decided ids in the checkpoint are not applied or reported again;
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
        max_items_per_step: int = DEFAULT_MAX_ITEMS_PER_STEP,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
        sync_ranks: bool = True,
    ) -> None:
        if source is not None and source_factory is not None:
            raise ValueError("pass either source or source_factory, not both")
        if max_items_per_step < 1:
            raise ValueError(f"max_items_per_step must be >= 1, got {max_items_per_step}")
        self._given_source = source
        self._source_factory = source_factory
        self._trainer_ref: Callable[[], Any] = (lambda: None) if trainer is None else weakref.ref(trainer)
        self.max_items_per_step = max_items_per_step
        self.close_timeout = close_timeout
        self.sync_ranks = sync_ranks
        # Checkpointed (see state()): ids already decided (in decision order), and the values in force.
        self.handled_ids: list[str] = []
        self._handled: set[str] = set()  # the same ids, for lookups
        self.in_force: dict[str, Any] = {}
        self._source: UpdateSource | None = None
        self._finalizer: weakref.finalize | None = None
        self._deferred: list[UpdateRequest] = []
        self._ranks: _distributed.RankSync | None = None  # built once per process group
        self._sync: _distributed.RankSync | None = None  # set while this run broadcasts every step

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

    # ---- checkpointed state ----------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """What ``trainer_state.json`` keeps, so resume neither re-applies nor loses an update."""
        return {"args": {}, "attributes": {"handled_ids": list(self.handled_ids), "in_force": dict(self.in_force)}}

    def _restore(self, state: Any) -> None:
        """Take the checkpoint's record; a checkpoint written without this callback has none.

        It replaces this instance's own: a ``train()`` earlier in this process may have gone
        past the checkpoint, and what it applied after it is now delivered again by the source.
        """
        key = type(self).__name__
        saved = state.stateful_callbacks.get(key)
        if isinstance(saved, dict):
            attributes = saved.get("attributes", {})
            self.handled_ids, self._handled = [], set()
            self._mark_handled(attributes.get("handled_ids", []))
            self.in_force = dict(attributes.get("in_force", {}))
        # Without this, the next save raises KeyError when the checkpoint lacked the callback.
        state.stateful_callbacks.setdefault(key, self.state())

    def _mark_handled(self, ids: Iterable[str]) -> None:
        for request_id in ids:
            if request_id not in self._handled:
                self._handled.add(request_id)
                self.handled_ids.append(request_id)

    # ---- lifecycle -------------------------------------------------------------------------------

    def _open_source(self, resume_step: int | None) -> None:
        self.close()  # a source left open by a train() that raised
        try:
            source = self._source_factory() if self._source_factory is not None else self._given_source
            if source is None:
                return
            if resume_step is None:
                source.start()
            else:
                logger.info("Resumed at step %d: updates applied after it will be applied again", resume_step)
                source.start(replay_after_step=resume_step)
        except Exception:
            logger.exception("runtime parameter updates disabled: the update source failed to start")
            return
        self._source = source
        # Trainer has no exception hook: if train() raises, the source is closed when this callback
        # is collected, at interpreter exit, or at the next train() start, whichever comes first.
        self._finalizer = weakref.finalize(self, _close_quietly, source, self.close_timeout)

    def close(self) -> None:
        """Close the source now (flushing outcomes); idempotent. Called at train end."""
        finalizer, self._finalizer, self._source = self._finalizer, None, None
        if finalizer is not None:
            finalizer()

    # ---- hooks -----------------------------------------------------------------------------------

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        resume_step = int(state.global_step) if state.global_step > 0 else None  # > 0 only when resuming
        try:
            self._restore(state)
            if resume_step is not None and self.in_force:
                self._reapply(self._context(args, state, control, kwargs))
            if state.is_world_process_zero:
                self._open_source(resume_step)
        except Exception:
            logger.exception("runtime parameter updates: setup at train begin failed")
        self._sync = self._connect_ranks()  # every rank, whatever happened above
        self._step(args, state, control, kwargs, at_train_begin=True)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._step(args, state, control, kwargs, at_train_begin=False)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.close()

    def _connect_ranks(self) -> _distributed.RankSync | None:
        """The per-step broadcast for this run, or None: single process, ``sync_ranks`` off, or rank 0 has no source.

        Collective: every rank calls it once at train begin.
        """
        if not self.sync_ranks or not _distributed.is_multi_process():
            return None
        try:
            if self._ranks is None or not self._ranks.is_for_current_world():
                self._ranks = _distributed.RankSync()
            return self._ranks if self._ranks.enabled_on_rank0(self._source is not None) else None
        except Exception:
            logger.exception("runtime parameter updates disabled: ranks could not agree at train begin")
            return None

    # ---- one step boundary -----------------------------------------------------------------------

    def _step(self, args: Any, state: Any, control: Any, kwargs: dict[str, Any], *, at_train_begin: bool) -> None:
        source, sync = self._source, self._sync
        if source is None and sync is None and not self._deferred:
            return  # the common case when updates are off: no work at all, no collective
        try:
            requests = self._drain(source)
            if sync is not None:
                requests = sync.broadcast(requests)
            if at_train_begin:
                # Control flags are reset at each step's begin: commands must wait for the first step end.
                self._deferred += [r for r in requests if "command" in r.params]
                requests = [r for r in requests if "command" not in r.params]
            elif self._deferred:
                requests, self._deferred = self._deferred + requests, []
            if not requests:
                return
            outcomes = self._process(requests, self._context(args, state, control, kwargs))
            if source is not None and outcomes:
                source.report(outcomes)
        except Exception:
            logger.exception("runtime parameter updates: step %d skipped after an internal error", state.global_step)

    def _drain(self, source: UpdateSource | None) -> list[UpdateRequest]:
        if source is None:
            return []
        try:
            return source.drain(self.max_items_per_step)
        except Exception:
            logger.exception("draining the update source failed")
            return []

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
        )

    def _process(self, requests: list[UpdateRequest], ctx: ApplyContext) -> list[UpdateOutcome]:
        """Decide every drained request, reporting in request order.

        All requests are checked against the run as it is now; only those that pass
        compete per parameter (the last one wins), so a refused request never
        supersedes an earlier good one.
        """
        step = int(ctx.state.global_step)
        fresh = [r for r in requests if r.id not in self._handled]
        if len(fresh) < len(requests):
            logger.debug("%d request(s) handled before this resume were skipped", len(requests) - len(fresh))
        decided: dict[str, UpdateOutcome] = {}
        for request in fresh:
            refusal = self._check(request, ctx)
            if refusal is not None:
                decided[request.id] = refusal
        accepted = [r for r in fresh if r.id not in decided]
        winners = _last_request_per_param(accepted)
        position = {r.id: i for i, r in enumerate(accepted)}
        for request in accepted:
            superseded = {k: winners[k] for k in request.params if winners.get(k, request.id) != request.id}
            if len(superseded) == len(request.params):
                by = max(superseded.values(), key=position.__getitem__)
                logger.info("Parameter update %s superseded by %s", request.id, by)
                decided[request.id] = UpdateOutcome(request.id, OutcomeStatus.SUPERSEDED, step=step, superseded_by=by)
            else:
                live = {k: v for k, v in request.params.items() if k not in superseded}
                decided[request.id] = self._apply(request, live, superseded, ctx)
        self._mark_handled(r.id for r in fresh)
        return [decided[r.id] for r in fresh]

    def _check(self, request: UpdateRequest, ctx: ApplyContext) -> UpdateOutcome | None:
        """A refusal if any parameter of the request cannot be applied to this run (all-or-nothing)."""
        step = int(ctx.state.global_step)
        reason = _invalid_reason(request)
        if reason is not None:
            return self._refuse(request, OutcomeStatus.REJECTED, reason, step)
        try:
            reasons = [
                f"{name}: {r}"
                for name, value in request.params.items()
                if (r := _registry.get_applier(name).check(value, ctx)) is not None
            ]
        except Exception as exc:
            logger.exception("checking request %s failed", request.id)
            return self._refuse(request, OutcomeStatus.FAILED, f"{type(exc).__name__}: {exc}", step)
        return self._refuse(request, OutcomeStatus.REJECTED, "; ".join(reasons), step) if reasons else None

    def _apply(
        self, request: UpdateRequest, live: dict[str, Any], superseded: dict[str, str], ctx: ApplyContext
    ) -> UpdateOutcome:
        """Apply the checked parameters in registry order; if one raises, roll the request back."""
        step = int(ctx.state.global_step)
        ordered = [(_registry.get_applier(name), live[name]) for name in _registry.applier_names() if name in live]
        restore = _snapshot.capture(ctx)
        changes: dict[str, Change] = {}
        for applier, value in ordered:
            try:
                old = applier.read(ctx)
                applier.apply(value, ctx)
            except Exception as exc:
                logger.exception("applying %s=%r failed; request %s rolled back", applier.name, value, request.id)
                restore()
                return self._refuse(
                    request, OutcomeStatus.FAILED, f"{applier.name}: {type(exc).__name__}: {exc}; nothing changed", step
                )
            changes[applier.name] = Change(old=old, new=value)
        for applier, value in ordered:
            applier.log_applied(changes[applier.name].old, value, step)
            if not applier.one_off:
                self.in_force[applier.name] = value
        note = ", ".join(f"{k} superseded by {v}" for k, v in superseded.items()) or None
        return UpdateOutcome(request.id, OutcomeStatus.APPLIED, step=step, changes=changes, reason=note)

    def _reapply(self, ctx: ApplyContext) -> None:
        """After resume, set again what the checkpoint does not restore (see :meth:`ParameterApplier.reapply`)."""
        for name in _registry.applier_names():
            if name not in self.in_force:
                continue
            applier, value = _registry.get_applier(name), self.in_force[name]
            try:
                reason = applier.check(value, ctx)
                if reason is None:
                    if applier.reapply(value, ctx):
                        logger.info("Re-applied %s=%r after resume at step %d", name, value, ctx.state.global_step)
                else:
                    logger.warning("could not re-apply %s=%r after resume: %s", name, value, reason)
            except Exception:
                logger.exception("re-applying %s=%r after resume failed", name, value)

    @staticmethod
    def _refuse(request: UpdateRequest, status: OutcomeStatus, reason: str, step: int) -> UpdateOutcome:
        logger.warning("Parameter update %s %s: %s", request.id, status.value, reason)
        return UpdateOutcome(request.id, status, step=step, reason=reason)


def _invalid_reason(request: UpdateRequest) -> str | None:
    """Defensive re-validation: the agent already refuses these, but a custom source may not."""
    if not request.params:
        return "the request carries no parameters"
    try:
        for name, value in request.params.items():
            validate_parameter(name, value)
            _registry.get_applier(name)
    except (InvalidParameter, ValueError) as exc:
        return str(exc)
    return None


def _last_request_per_param(requests: list[UpdateRequest]) -> dict[str, str]:
    """Parameter → id of the last request setting it; commands are never superseded."""
    winners: dict[str, str] = {}
    for request in requests:
        for name in request.params:
            if not _registry.get_applier(name).one_off:
                winners[name] = request.id
    return winners
