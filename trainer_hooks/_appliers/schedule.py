"""The learning-rate schedule: its mode, horizon (``max_steps``), warmup and peak (``learning_rate``).

The four interact (coupling ``"schedule"``) and are applied in that order
within a request (see ``_registry``). The scheduler arithmetic itself is in
``_schedule``; these appliers decide what a restart with the new settings
would have, and refuse what no restart could reach mid-run.

What they use of the :class:`~liveparams.trainer_hooks.ApplyContext`:

- ``optimizer.param_groups`` (``lr``, and ``initial_lr`` once a scheduler exists);
- ``lr_scheduler``: None (the rate is what the groups hold), a ``LambdaLR`` (its
  ``base_lrs`` are the peaks; the shape is the keywords of the ``functools.partial``
  lambdas that ``transformers.get_scheduler`` builds, so a torch ``LambdaLR`` with
  its own lambdas refuses ``warmup_steps``), or a metric-driven one
  (``ReduceLROnPlateau``, transformers' ``GreedyLR``: a peak but no shape);
- ``args``: ``lr_scheduler_kwargs`` (optional), ``warmup_steps`` (set; below 1 a
  ratio resolved by ``args.get_warmup_steps(total)``), ``max_steps``,
  ``gradient_accumulation_steps``, and ``logging_steps``/``eval_steps``/``save_steps``
  (None when the loop has none);
- ``state``: ``global_step``, ``max_steps`` (set: what the loop checks),
  ``num_train_epochs`` (optional) and the intervals (set when given as a ratio);
- ``control.should_training_stop`` and ``train_dataloader`` (optional, its
  length bounds how far ``max_steps`` can move).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from liveparams.contract import format_value
from liveparams.trainer_hooks import _schedule
from liveparams.trainer_hooks._appliers.base import NO_OPTIMIZER, NO_OTHER_PARAMS, ParameterApplier
from liveparams.trainer_hooks._appliers.intervals import STEP_INTERVALS
from liveparams.trainer_hooks._context import ApplyContext

__all__ = ["LearningRateApplier", "LearningRateModeApplier", "MaxStepsApplier", "WarmupStepsApplier"]

logger = logging.getLogger(__package__)


class LearningRateModeApplier(ParameterApplier):
    """``"constant"`` freezes the rate from now on; ``"rescale"`` brings the schedule back.

    Applied before ``learning_rate`` in the same request, so
    ``{"learning_rate": 1e-5, "learning_rate_mode": "constant"}`` means "1e-5 from now on".
    While constant, ``max_steps`` and ``warmup_steps`` edit the stored schedule, which
    ``"rescale"`` resumes from the current rate (peak = rate / factor at this step).
    """

    name = "learning_rate_mode"
    coupling = "schedule"

    def read(self, ctx: ApplyContext) -> str:
        return "constant" if _schedule.is_constant(ctx.lr_scheduler) else "rescale"

    def check(self, value: str, ctx: ApplyContext, params: Mapping[str, Any] = NO_OTHER_PARAMS) -> str | None:
        scheduler = ctx.lr_scheduler
        if value == "rescale":
            return _schedule.resume_schedule_reason(scheduler)
        if scheduler is not None and not _schedule.is_lambda_schedule(scheduler):
            return (
                f"learning_rate_mode 'constant' needs a LambdaLR-family schedule; "
                f"{type(scheduler).__name__} changes the rate from evaluation metrics"
            )
        return None

    def apply(self, value: str, ctx: ApplyContext) -> None:
        if ctx.lr_scheduler is None:
            return  # no scheduler: the rate is constant already
        if value == "constant":
            _schedule.make_constant(ctx.optimizer, ctx.lr_scheduler)
        else:
            _schedule.resume_schedule(ctx.optimizer, ctx.lr_scheduler)


class MaxStepsApplier(ParameterApplier):
    """``state.max_steps`` (what the loop checks) and the schedule's ``num_training_steps``.

    Shortening always works. Extending works only within the epochs the run
    planned at start: the epoch loop's range is fixed when ``train()`` begins.
    Nothing works at a step where training already ends (the old ``max_steps``
    reached, or a ``stop``): the loop leaves right after ``on_step_end``.
    Intervals given as a ratio of ``max_steps`` follow it, as they would at a start.
    """

    name = "max_steps"
    coupling = "schedule"

    def read(self, ctx: ApplyContext) -> int:
        return int(ctx.state.max_steps)

    def check(self, value: int, ctx: ApplyContext, params: Mapping[str, Any] = NO_OTHER_PARAMS) -> str | None:
        return (
            _schedule.horizon_reason(ctx.lr_scheduler)
            or _run_ends_reason(value, ctx)
            or _past_reason(value, ctx)
            or _capacity_reason(value, ctx)
        )

    def reapply_check(self, value: int, ctx: ApplyContext, params: Mapping[str, Any] = NO_OTHER_PARAMS) -> str | None:
        # A value at or before the checkpoint's step was in force when the run ended there: set it, and the
        # resumed run ends as one started with it would (transformers then still makes one step).
        return _schedule.horizon_reason(ctx.lr_scheduler) or _capacity_reason(value, ctx)

    def apply(self, value: int, ctx: ApplyContext) -> None:
        ctx.state.max_steps = value
        # An interval given as a ratio is of max_steps, as TrainerState.compute_steps makes it.
        for kind in STEP_INTERVALS:
            ratio = getattr(ctx.args, kind)
            if ratio is not None and 0 < ratio < 1:
                setattr(ctx.state, kind, math.ceil(value * ratio))
        if _schedule.is_lambda_schedule(ctx.lr_scheduler):
            _set_shape(ctx, total=value, warmup=_warmup_for(ctx, value))


def _run_ends_reason(value: int, ctx: ApplyContext) -> str | None:
    if not ctx.control.should_training_stop:  # see docs/internals.md, "When a change can be made"
        return None
    return (
        f"training ends at this step ({ctx.state.global_step}): its max_steps is reached or a stop was "
        f"requested; resume from a checkpoint with max_steps={value} to train on"
    )


def _past_reason(value: int, ctx: ApplyContext) -> str | None:
    step = ctx.state.global_step
    if value > step:
        return None
    return f"max_steps={value} is not after the current step {step}; use command 'stop' to stop now"


def _capacity_reason(value: int, ctx: ApplyContext) -> str | None:
    capacity = _planned_steps(ctx)
    if capacity is None or value <= capacity:
        return None
    return (
        f"max_steps={value} is beyond the {capacity} steps the run's planned epochs hold; "
        "extending past them needs a restart"
    )


def _warmup_for(ctx: ApplyContext, total: int) -> int:
    """The warmup a run of ``total`` steps starts with: a ratio (``warmup_steps`` < 1) is of the total."""
    if 0 < ctx.args.warmup_steps < 1:
        return int(ctx.args.get_warmup_steps(total))
    current = _schedule.lambda_keyword(ctx.lr_scheduler, "num_warmup_steps")
    return int(ctx.args.warmup_steps) if current is None else int(current)


def _set_shape(ctx: ApplyContext, *, total: int, warmup: int) -> None:
    given = _schedule.user_kwargs(ctx.args)
    _schedule.set_shape(ctx.optimizer, ctx.lr_scheduler, total=total, warmup=warmup, given=given)


def _planned_steps(ctx: ApplyContext) -> int | None:
    """Optimizer steps the epochs planned at ``train()`` start can hold (None: unbounded or unknown)."""
    epochs = getattr(ctx.state, "num_train_epochs", None)
    loader = ctx.train_dataloader
    try:
        batches = len(loader) if loader is not None else None
    except TypeError:  # no length: one "epoch" is args.max_steps steps, then the data is read again from the start
        return int(ctx.args.max_steps) if ctx.args.max_steps > 0 else None
    if not epochs or batches is None:
        return None
    accumulation = max(int(ctx.args.gradient_accumulation_steps), 1)
    per_epoch = max(batches // accumulation + int(batches % accumulation > 0), 1)
    return int(epochs) * per_epoch


class WarmupStepsApplier(ParameterApplier):
    """The schedule lambda's ``num_warmup_steps`` and what derives from it; the current rate is recomputed at once.

    ``inverse_sqrt``'s default ``timescale`` and ``warmup_stable_decay``'s stable length follow
    the warmup, as in a run started with it; ``args.warmup_steps`` is set too (a warmup ratio
    no longer applies when ``max_steps`` changes later).
    """

    name = "warmup_steps"
    coupling = "schedule"

    def read(self, ctx: ApplyContext) -> Any:
        return _schedule.lambda_keyword(ctx.lr_scheduler, "num_warmup_steps")

    def check(self, value: int, ctx: ApplyContext, params: Mapping[str, Any] = NO_OTHER_PARAMS) -> str | None:
        return _schedule.lambda_keyword_reason(ctx.lr_scheduler, "num_warmup_steps")

    def apply(self, value: int, ctx: ApplyContext) -> None:
        ctx.args.warmup_steps = int(value)
        total = _schedule.lambda_keyword(ctx.lr_scheduler, "num_training_steps")
        _set_shape(ctx, total=int(ctx.state.max_steps if total is None else total), warmup=int(value))


class LearningRateApplier(ParameterApplier):
    """The peak rate of the first param group; the schedule keeps its shape, groups keep their ratios."""

    name = "learning_rate"
    coupling = "schedule"

    def read(self, ctx: ApplyContext) -> float:
        return _schedule.peak_lr(ctx.optimizer, ctx.lr_scheduler)

    def check(self, value: float, ctx: ApplyContext, params: Mapping[str, Any] = NO_OTHER_PARAMS) -> str | None:
        if ctx.optimizer is None:
            return NO_OPTIMIZER
        return _schedule.unsupported_reason(ctx.lr_scheduler) or _schedule.peak_reason(ctx.lr_scheduler, value)

    def apply(self, value: float, ctx: ApplyContext) -> None:
        given = _schedule.user_kwargs(ctx.args)
        _schedule.set_peak_lr(ctx.optimizer, ctx.lr_scheduler, float(value), given)

    def reapply(self, value: float, ctx: ApplyContext) -> bool:
        # optimizer.pt and scheduler.pt restore the rates (base_lrs, group['lr']), including what a
        # plateau or a constant mode did after this value was set; only the lambdas' keywords are lost.
        given = _schedule.user_kwargs(ctx.args)
        return _schedule.set_peak_keywords(ctx.optimizer, ctx.lr_scheduler, float(value), given)

    def log_applied(self, old: Any, new: Any, step: int) -> None:
        # The old polling design's line, word for word, which users search for; logged once per change
        # (the step is in the outcome on the row).
        logger.info("✅ Applied learning rate update: %s → %s", format_value(old), format_value(new))
