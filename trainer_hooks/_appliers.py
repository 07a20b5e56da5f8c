"""One applier per live parameter: how to check, read and set it on a running Trainer.

Appliers *set* values (never scale by a stored factor), so the callback can
set the values in force again after ``resume_from_checkpoint`` without
compounding them (:meth:`ParameterApplier.reapply`). They raise only on bugs;
a change that cannot be made on this run is refused by
:meth:`ParameterApplier.check` with a sentence for the user.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from liveparams.trainer_hooks import _schedule
from liveparams.trainer_hooks._context import ApplyContext

__all__ = [
    "BetaApplier",
    "CommandApplier",
    "IntervalApplier",
    "LearningRateApplier",
    "LearningRateModeApplier",
    "MaxGradNormApplier",
    "MaxStepsApplier",
    "ParameterApplier",
    "WarmupStepsApplier",
    "WeightDecayApplier",
]

logger = logging.getLogger(__name__)


class ParameterApplier(ABC):
    """Changes one parameter of a running training.

    Attributes:
        name (`str`): the parameter's key in a request (a key of ``liveparams.contract._parameters.PARAMETERS``).
        one_off (`bool`): a command rather than a value; never coalesced, never re-applied on resume.
    """

    name: ClassVar[str]
    one_off: ClassVar[bool] = False

    def check(self, value: Any, ctx: ApplyContext) -> str | None:
        """Why ``value`` cannot be applied to this run (a sentence for the user), or None."""
        return None

    @abstractmethod
    def read(self, ctx: ApplyContext) -> Any:
        """The value in force now (the ``old`` of a change)."""

    @abstractmethod
    def apply(self, value: Any, ctx: ApplyContext) -> None:
        """Set ``value``; idempotent, effective from the next optimizer step."""

    def reapply(self, value: Any, ctx: ApplyContext) -> bool:
        """After ``resume_from_checkpoint``, set again the part of ``value`` the checkpoint does not restore.

        The default sets all of it, for values that live outside the checkpoint
        (``args``, schedule keywords, trainer attributes, intervals). An applier whose
        value the checkpoint restores must not set it: the run may have moved it on
        since (a plateau reduction, a frozen rate). Returns whether anything was set.
        """
        self.apply(value, ctx)
        return True

    def log_applied(self, old: Any, new: Any, step: int) -> None:
        """One INFO line per applied change."""
        logger.info("Applied %s: %r → %r at step %d", self.name, old, new, step)


# ---- schedule (applied first within a request) ---------------------------------------------------


class LearningRateModeApplier(ParameterApplier):
    """``"constant"`` freezes the rate from now on; ``"rescale"`` brings the schedule back.

    Applied before ``learning_rate`` in the same request, so
    ``{"learning_rate": 1e-5, "learning_rate_mode": "constant"}`` means "1e-5 from now on".
    While constant, ``max_steps`` and ``warmup_steps`` edit the stored schedule, which
    ``"rescale"`` resumes from the current rate (peak = rate / factor at this step).
    """

    name = "learning_rate_mode"

    def read(self, ctx: ApplyContext) -> str:
        return "constant" if _schedule.is_constant(ctx.lr_scheduler) else "rescale"

    def check(self, value: str, ctx: ApplyContext) -> str | None:
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
    """

    name = "max_steps"

    def read(self, ctx: ApplyContext) -> int:
        return int(ctx.state.max_steps)

    def check(self, value: int, ctx: ApplyContext) -> str | None:
        if value <= ctx.state.global_step:
            step = ctx.state.global_step
            return f"max_steps={value} is not after the current step {step}; use command 'stop' to stop now"
        capacity = _planned_steps(ctx)
        if capacity is not None and value > capacity:
            return (
                f"max_steps={value} is beyond the {capacity} steps the run's planned epochs hold; "
                "extending past them needs a restart"
            )
        return None

    def apply(self, value: int, ctx: ApplyContext) -> None:
        ctx.state.max_steps = value
        scheduler = ctx.lr_scheduler
        if _schedule.lambda_keyword_reason(scheduler, "num_training_steps") is None:
            _schedule.set_lambda_keyword(ctx.optimizer, scheduler, "num_training_steps", value)


def _planned_steps(ctx: ApplyContext) -> int | None:
    """Optimizer steps the epochs planned at ``train()`` start can hold (None: unbounded or unknown)."""
    epochs = getattr(ctx.state, "num_train_epochs", None)
    loader = ctx.train_dataloader
    try:
        batches = len(loader) if loader is not None else None
    except TypeError:  # an iterable dataset: the loop runs until max_steps
        return None
    if not epochs or batches is None:
        return None
    accumulation = max(int(ctx.args.gradient_accumulation_steps), 1)
    per_epoch = max(batches // accumulation + int(batches % accumulation > 0), 1)
    return int(epochs) * per_epoch


class WarmupStepsApplier(ParameterApplier):
    """The schedule lambda's ``num_warmup_steps``; the current rate is recomputed at once."""

    name = "warmup_steps"

    def read(self, ctx: ApplyContext) -> Any:
        return _schedule.lambda_keyword(ctx.lr_scheduler, "num_warmup_steps")

    def check(self, value: int, ctx: ApplyContext) -> str | None:
        return _schedule.lambda_keyword_reason(ctx.lr_scheduler, "num_warmup_steps")

    def apply(self, value: int, ctx: ApplyContext) -> None:
        _schedule.set_lambda_keyword(ctx.optimizer, ctx.lr_scheduler, "num_warmup_steps", value)


# ---- optimizer ------------------------------------------------------------------------------------


class LearningRateApplier(ParameterApplier):
    """The peak rate of the first param group; the schedule keeps its shape, groups keep their ratios."""

    name = "learning_rate"

    def read(self, ctx: ApplyContext) -> float:
        return _schedule.peak_lr(ctx.optimizer, ctx.lr_scheduler)

    def check(self, value: float, ctx: ApplyContext) -> str | None:
        if ctx.optimizer is None:
            return "the optimizer does not exist yet"
        return _schedule.unsupported_reason(ctx.lr_scheduler)

    def apply(self, value: float, ctx: ApplyContext) -> None:
        _schedule.set_peak_lr(ctx.optimizer, ctx.lr_scheduler, float(value))

    def reapply(self, value: float, ctx: ApplyContext) -> bool:
        # optimizer.pt and scheduler.pt restore the rates (base_lrs, group['lr']), including what a
        # plateau or a constant mode did after this value was set; only the schedule's keyword is lost.
        return _schedule.restore_peak_keyword(ctx.optimizer, ctx.lr_scheduler, float(value))

    def log_applied(self, old: Any, new: Any, step: int) -> None:
        # The seed's line, which users grep for.
        logger.info("✅ Applied learning rate update: %.2e → %.2e", old, new)
        super().log_applied(old, new, step)


class WeightDecayApplier(ParameterApplier):
    """Weight decay of the decayed group(s); groups built with 0 (biases, norms) stay at 0."""

    name = "weight_decay"

    def read(self, ctx: ApplyContext) -> float:
        groups = _decay_groups(ctx)
        return float(groups[0]["weight_decay"]) if groups else 0.0

    def check(self, value: float, ctx: ApplyContext) -> str | None:
        if ctx.optimizer is None:
            return "the optimizer does not exist yet"
        if not _decay_groups(ctx):
            return "no parameter group is decayed (all have weight_decay 0) and no trainer reference to find them"
        return None

    def apply(self, value: float, ctx: ApplyContext) -> None:
        for group in _decay_groups(ctx):
            group["weight_decay"] = float(value)

    def reapply(self, value: float, ctx: ApplyContext) -> bool:
        return False  # a param-group field: optimizer.pt restores it


def _decay_groups(ctx: ApplyContext) -> list[dict[str, Any]]:
    """Groups whose weight decay is on; when all are 0, the trainer says which parameters decay."""
    groups = [g for g in ctx.optimizer.param_groups if g.get("weight_decay", 0) > 0]
    if groups or ctx.trainer is None or ctx.model is None:
        return groups
    names = set(ctx.trainer.get_decay_parameter_names(ctx.model))
    decayed = {id(p) for n, p in ctx.model.named_parameters() if n in names}
    return [g for g in ctx.optimizer.param_groups if g["params"] and all(id(p) in decayed for p in g["params"])]


class MaxGradNormApplier(ParameterApplier):
    """``args.max_grad_norm``, which Trainer reads at every clip (0 disables clipping)."""

    name = "max_grad_norm"

    def read(self, ctx: ApplyContext) -> float:
        return float(ctx.args.max_grad_norm)

    def check(self, value: float, ctx: ApplyContext) -> str | None:
        if getattr(ctx.args, "deepspeed", None) or getattr(ctx.trainer, "is_deepspeed_enabled", False):
            return "under DeepSpeed, gradient clipping is fixed in its config; restart to change it"
        return None

    def apply(self, value: float, ctx: ApplyContext) -> None:
        ctx.args.max_grad_norm = float(value)


# ---- intervals ------------------------------------------------------------------------------------


class IntervalApplier(ParameterApplier):
    """``state.<kind>_steps``: the loop reads ``state``, not ``args``, for intervals."""

    name: ClassVar[str]
    strategy_field: ClassVar[str]

    def read(self, ctx: ApplyContext) -> Any:
        return getattr(ctx.state, self.name)

    def check(self, value: int, ctx: ApplyContext) -> str | None:
        strategy = getattr(ctx.args, self.strategy_field)
        strategy = getattr(strategy, "value", strategy)
        if strategy != "steps":
            return f"{self.name} has no effect: {self.strategy_field} is {strategy!r}, not 'steps'"
        return None

    def apply(self, value: int, ctx: ApplyContext) -> None:
        setattr(ctx.state, self.name, int(value))


class LoggingStepsApplier(IntervalApplier):
    name = "logging_steps"
    strategy_field = "logging_strategy"


class SaveStepsApplier(IntervalApplier):
    name = "save_steps"
    strategy_field = "save_strategy"


class EvalStepsApplier(IntervalApplier):
    name = "eval_steps"
    strategy_field = "eval_strategy"

    def check(self, value: int, ctx: ApplyContext) -> str | None:
        return _no_eval_reason(ctx) or super().check(value, ctx)


def _no_eval_reason(ctx: ApplyContext) -> str | None:
    """Evaluation without an eval set raises inside the loop; refuse it up front."""
    if ctx.trainer is not None:
        if getattr(ctx.trainer, "eval_dataset", None) is None:
            return f"{ctx.trainer_name} has no eval_dataset"
        return None
    strategy = ctx.args.eval_strategy
    if getattr(strategy, "value", strategy) == "no":
        return "evaluation is off (eval_strategy='no'), so there may be no eval dataset"
    return None


# ---- TRL knobs ------------------------------------------------------------------------------------


class BetaApplier(ParameterApplier):
    """``trainer.beta``: TRL copies it from args at init and reads the copy in every loss."""

    name = "beta"

    def read(self, ctx: ApplyContext) -> float:
        return float(ctx.trainer.beta)

    def check(self, value: float, ctx: ApplyContext) -> str | None:
        trainer = ctx.trainer
        if trainer is None:
            return "beta lives on the trainer object: build the callback with from_env(trainer) or bind(trainer)"
        if not hasattr(trainer, "beta"):
            return f"{ctx.trainer_name} has no beta"
        built_without_reference = getattr(trainer, "ref_model", ...) is None and trainer.beta == 0.0
        if built_without_reference and value != 0 and not hasattr(ctx.model, "peft_config"):
            return f"{ctx.trainer_name} started with beta=0 and so built no reference model; restart to enable beta"
        return None

    def apply(self, value: float, ctx: ApplyContext) -> None:
        ctx.trainer.beta = float(value)
        if hasattr(ctx.args, "beta"):
            ctx.args.beta = float(value)  # so a saved training_args.bin tells the truth


# ---- commands (applied last within a request) -----------------------------------------------------


class CommandApplier(ParameterApplier):
    """One-off actions through ``control`` flags, which the loop acts on right after ``on_step_end``."""

    name = "command"
    one_off = True

    def read(self, ctx: ApplyContext) -> None:
        return None

    def check(self, value: str, ctx: ApplyContext) -> str | None:
        return _no_eval_reason(ctx) if value == "evaluate" else None

    def apply(self, value: str, ctx: ApplyContext) -> None:
        if value == "evaluate":
            ctx.control.should_evaluate = True
        elif value == "save_checkpoint":
            ctx.control.should_save = True
        elif value == "stop":
            ctx.control.should_save = True  # checkpoint first, then stop
            ctx.control.should_training_stop = True
        else:
            raise ValueError(f"unknown command {value!r}")

    def log_applied(self, old: Any, new: Any, step: int) -> None:
        logger.info("Applied command %r at step %d", new, step)
