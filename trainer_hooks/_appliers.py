"""One applier per live parameter: how to check, read and set it on a running Trainer.

Appliers *set* values (never scale by a stored factor), so the callback can
set the values in force again after ``resume_from_checkpoint`` without
compounding them (:meth:`ParameterApplier.reapply`). They raise only on bugs;
a change that cannot be made on this run is refused by
:meth:`ParameterApplier.check` with a sentence for the user.
"""

from __future__ import annotations

import logging
import math
import weakref
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from liveparams.contract import format_value
from liveparams.trainer_hooks import _schedule
from liveparams.trainer_hooks._context import ApplyContext

__all__ = [
    "AdamBeta1Applier",
    "AdamBeta2Applier",
    "AdamBetaApplier",
    "AdamEpsilonApplier",
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
        one_off (`bool`): a command rather than a value; never superseded, never re-applied on resume.
        coupling (`str`, *optional*): parameters with the same coupling interact (the schedule's
            peak, shape and mode), so one of them counts as replaced by a later request only if
            no other of the group was set in between. None: the parameter stands alone.
    """

    name: ClassVar[str]
    one_off: ClassVar[bool] = False
    coupling: ClassVar[str | None] = None

    def check(self, value: Any, ctx: ApplyContext) -> str | None:
        """Why ``value`` cannot be applied to this run (a sentence for the user), or None."""
        return None

    @abstractmethod
    def read(self, ctx: ApplyContext) -> Any:
        """The value in force now (the ``old`` of a change)."""

    @abstractmethod
    def apply(self, value: Any, ctx: ApplyContext) -> None:
        """Set ``value``; idempotent, effective from the next optimizer step."""

    def reapply_check(self, value: Any, ctx: ApplyContext) -> str | None:
        """Why ``value``, in force at the checkpoint, cannot be set again after a resume; by default :meth:`check`'s."""
        return self.check(value, ctx)

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
        logger.info("Applied %s: %s → %s at step %d", self.name, format_value(old), format_value(new), step)


# ---- schedule (applied first within a request) ---------------------------------------------------


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
    Nothing works at a step where training already ends (the old ``max_steps``
    reached, or a ``stop``): the loop leaves right after ``on_step_end``.
    Intervals given as a ratio of ``max_steps`` follow it, as they would at a start.
    """

    name = "max_steps"
    coupling = "schedule"

    def read(self, ctx: ApplyContext) -> int:
        return int(ctx.state.max_steps)

    def check(self, value: int, ctx: ApplyContext) -> str | None:
        return (
            _schedule.horizon_reason(ctx.lr_scheduler)
            or _run_ends_reason(value, ctx)
            or _past_reason(value, ctx)
            or _capacity_reason(value, ctx)
        )

    def reapply_check(self, value: int, ctx: ApplyContext) -> str | None:
        # A value at or before the checkpoint's step was in force when the run ended there: set it, and the
        # resumed run ends as one started with it would (transformers then still makes one step).
        return _schedule.horizon_reason(ctx.lr_scheduler) or _capacity_reason(value, ctx)

    def apply(self, value: int, ctx: ApplyContext) -> None:
        ctx.state.max_steps = value
        for kind in _INTERVALS:  # an interval given as a ratio is of max_steps, as TrainerState.compute_steps makes it
            ratio = getattr(ctx.args, kind)
            if ratio is not None and 0 < ratio < 1:
                setattr(ctx.state, kind, math.ceil(value * ratio))
        if _schedule.is_lambda_schedule(ctx.lr_scheduler):
            _set_shape(ctx, total=value, warmup=_warmup_for(ctx, value))


# The intervals Trainer reads from state (an interval set live is also written to args: see IntervalApplier).
_INTERVALS = ("logging_steps", "eval_steps", "save_steps")


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

    def check(self, value: int, ctx: ApplyContext) -> str | None:
        return _schedule.lambda_keyword_reason(ctx.lr_scheduler, "num_warmup_steps")

    def apply(self, value: int, ctx: ApplyContext) -> None:
        ctx.args.warmup_steps = int(value)
        total = _schedule.lambda_keyword(ctx.lr_scheduler, "num_training_steps")
        _set_shape(ctx, total=int(ctx.state.max_steps if total is None else total), warmup=int(value))


# ---- optimizer ------------------------------------------------------------------------------------


class LearningRateApplier(ParameterApplier):
    """The peak rate of the first param group; the schedule keeps its shape, groups keep their ratios."""

    name = "learning_rate"
    coupling = "schedule"

    def read(self, ctx: ApplyContext) -> float:
        return _schedule.peak_lr(ctx.optimizer, ctx.lr_scheduler)

    def check(self, value: float, ctx: ApplyContext) -> str | None:
        if ctx.optimizer is None:
            return "the optimizer does not exist yet"
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
            _schedule.set_group_value(group, "weight_decay", float(value))

    def reapply(self, value: float, ctx: ApplyContext) -> bool:
        return False  # a param-group field: optimizer.pt restores it


# Optimizer → indices of the groups seen decayed, so that weight_decay=0 can be undone without a trainer.
_decayed_groups: weakref.WeakKeyDictionary[Any, tuple[int, ...]] = weakref.WeakKeyDictionary()


def _decay_groups(ctx: ApplyContext) -> list[dict[str, Any]]:
    """Groups whose weight decay is on (or was, before a request set it to 0); else the trainer says which."""
    all_groups = ctx.optimizer.param_groups
    on = tuple(i for i, g in enumerate(all_groups) if g.get("weight_decay", 0) > 0)
    if on:
        _decayed_groups[ctx.optimizer] = on
    remembered = _decayed_groups.get(ctx.optimizer, ())
    if remembered:
        return [all_groups[i] for i in remembered]
    if ctx.trainer is None or ctx.model is None:
        return []
    names = set(ctx.trainer.get_decay_parameter_names(ctx.model))
    decayed = {id(p) for n, p in ctx.model.named_parameters() if n in names}
    return [g for g in ctx.optimizer.param_groups if g["params"] and all(id(p) in decayed for p in g["params"])]


class _AdamApplier(ParameterApplier):
    """A field of every param group (Adam/AdamW and the optimizers that share their group fields)."""

    field: ClassVar[str]

    def check(self, value: float, ctx: ApplyContext) -> str | None:
        if ctx.optimizer is None:
            return "the optimizer does not exist yet"
        if not all(self.field in group for group in ctx.optimizer.param_groups):
            inner = getattr(ctx.optimizer, "optimizer", ctx.optimizer)
            return f"the optimizer ({type(inner).__name__}) has no {self.field!r} in its param groups"
        return None

    def reapply(self, value: float, ctx: ApplyContext) -> bool:
        return False  # a param-group field: optimizer.pt restores it


class AdamBetaApplier(_AdamApplier):
    """``betas[index]`` of every param group; a tensor beta is filled in place."""

    field = "betas"
    index: ClassVar[int]

    def read(self, ctx: ApplyContext) -> float:
        return float(ctx.optimizer.param_groups[0]["betas"][self.index])

    def apply(self, value: float, ctx: ApplyContext) -> None:
        for group in ctx.optimizer.param_groups:
            betas = list(group["betas"])
            if hasattr(betas[self.index], "fill_"):
                betas[self.index].fill_(float(value))
            else:
                betas[self.index] = float(value)
                group["betas"] = tuple(betas)


class AdamBeta1Applier(AdamBetaApplier):
    """``betas[0]`` of every param group; a tensor beta is filled in place."""

    name = "adam_beta1"
    index = 0


class AdamBeta2Applier(AdamBetaApplier):
    """``betas[1]`` of every param group; a tensor beta is filled in place."""

    name = "adam_beta2"
    index = 1


class AdamEpsilonApplier(_AdamApplier):
    """``eps`` of every param group."""

    name = "adam_epsilon"
    field = "eps"

    def read(self, ctx: ApplyContext) -> float:
        return float(ctx.optimizer.param_groups[0]["eps"])

    def apply(self, value: float, ctx: ApplyContext) -> None:
        for group in ctx.optimizer.param_groups:
            _schedule.set_group_value(group, "eps", float(value))


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
    """``state.<kind>_steps``: the loop reads ``state``, not ``args``, for intervals.

    ``args.<kind>_steps`` is set too: it is what a restart would be given, what the checks
    of the other intervals compare with, and it keeps a later ``max_steps`` from recomputing
    an interval that was a ratio of it at start.
    """

    name: ClassVar[str]
    strategy_field: ClassVar[str]

    def read(self, ctx: ApplyContext) -> Any:
        return getattr(ctx.state, self.name)

    def check(self, value: int, ctx: ApplyContext) -> str | None:
        strategy = _strategy(ctx.args, self.strategy_field)
        if strategy != "steps":
            return f"{self.name} has no effect: {self.strategy_field} is {strategy!r}, not 'steps'"
        return None

    def apply(self, value: int, ctx: ApplyContext) -> None:
        setattr(ctx.state, self.name, int(value))
        setattr(ctx.args, self.name, int(value))


def _strategy(args: Any, field: str) -> str:
    strategy = getattr(args, field)
    return str(getattr(strategy, "value", strategy))


def _best_model_reason(name: str, value: int, ctx: ApplyContext) -> str | None:
    """With ``load_best_model_at_end``, every save must follow an evaluation; TrainingArguments refuses other intervals.

    The intervals compared are those a restart would be given: this value, the other one of
    the same request, else the run's (``args`` holds the values set live, see ``IntervalApplier``).
    """
    args = ctx.args
    if not getattr(args, "load_best_model_at_end", False) or _strategy(args, "save_strategy") != "steps":
        return None
    if _strategy(args, "eval_strategy") != "steps":
        return None  # a save strategy other than eval's fails at start; nothing this request changes
    given = {kind: ctx.params.get(kind, getattr(args, kind) or getattr(ctx.state, kind)) for kind in _BEST_MODEL_PAIR}
    given[name] = value
    save, evaluate = given["save_steps"], given["eval_steps"]
    if (save < 1) != (evaluate < 1):
        return (
            "load_best_model_at_end needs the saving steps to be a multiple of the evaluation steps, which "
            f"cannot be guaranteed when mixing a ratio and absolute steps (save_steps {save}, eval_steps {evaluate})"
        )
    if save >= 1 and save % evaluate:
        return (
            "load_best_model_at_end needs the saving steps to be a round multiple of the evaluation steps, "
            f"but save_steps {save} is not a round multiple of eval_steps {evaluate}"
        )
    return None


# The intervals load_best_model_at_end ties together.
_BEST_MODEL_PAIR = ("save_steps", "eval_steps")


class LoggingStepsApplier(IntervalApplier):
    name = "logging_steps"
    strategy_field = "logging_strategy"


class SaveStepsApplier(IntervalApplier):
    name = "save_steps"
    strategy_field = "save_strategy"

    def check(self, value: int, ctx: ApplyContext) -> str | None:
        return super().check(value, ctx) or _best_model_reason(self.name, value, ctx)


class EvalStepsApplier(IntervalApplier):
    name = "eval_steps"
    strategy_field = "eval_strategy"

    def check(self, value: int, ctx: ApplyContext) -> str | None:
        return _no_eval_reason(ctx) or super().check(value, ctx) or _best_model_reason(self.name, value, ctx)


def _no_eval_reason(ctx: ApplyContext) -> str | None:
    """Evaluation without an eval set raises inside the loop; refuse it up front."""
    if ctx.trainer is not None:
        if getattr(ctx.trainer, "eval_dataset", None) is None:
            return f"{ctx.trainer_name} has no eval_dataset"
        return None
    if _strategy(ctx.args, "eval_strategy") == "no":
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
        dividing = sorted(_loss_types(trainer, ctx.args) & _DIVIDES_BY_BETA)
        if value == 0 and dividing:
            return f"the {'/'.join(dividing)} loss divides by beta, so beta must be > 0 (a start with 0 would crash)"
        if value != 0 and _batch_in_use_lacks_reference(trainer):
            return (
                "the generation batch in use was made with beta=0, so it has no reference log-probs; "
                f"retry after the next generation (every {_generate_every(trainer)} micro-batches)"
            )
        if _is_trl(trainer, "RLOOTrainer") and _mid_generation(trainer):
            return (
                f"RLOO puts beta into the rewards when it scores a generation batch, and the one in use was "
                f"scored with beta={trainer.beta:g}; retry after the next generation "
                f"(every {_generate_every(trainer)} micro-batches)"
            )
        return None

    def apply(self, value: float, ctx: ApplyContext) -> None:
        ctx.trainer.beta = float(value)
        if hasattr(ctx.args, "beta"):
            ctx.args.beta = float(value)  # so a saved training_args.bin tells the truth


def _is_trl(trainer: Any, name: str) -> bool:
    """Whether ``trainer`` is (a subclass of) TRL's trainer of that name, without importing TRL."""
    return any(cls.__name__ == name for cls in type(trainer).__mro__)


def _mid_generation(trainer: Any) -> bool:
    """Whether GRPO's or RLOO's next micro-step reuses a buffered generation batch (docs/internals.md, Trainer)."""
    buffered = getattr(trainer, "_buffered_inputs", None)
    return bool(buffered) and getattr(trainer, "_step", 0) % _generate_every(trainer) != 0


def _batch_in_use_lacks_reference(trainer: Any) -> bool:
    """Whether GRPO's next micro-step reuses a batch generated while beta was 0 (docs/internals.md, Trainer)."""
    if not _is_trl(trainer, "GRPOTrainer") or not _mid_generation(trainer):
        return False  # nothing buffered, or the next micro-step makes a new batch with the new beta
    return any("ref_per_token_logps" not in batch for batch in trainer._buffered_inputs)


def _generate_every(trainer: Any) -> int:
    """Micro-steps between two of GRPO's (or RLOO's) generation batches."""
    return int(trainer.args.steps_per_generation) * int(getattr(trainer, "num_iterations", 1))


# TRL losses that divide by beta (DPO's ipo and sppo_hard, CPO's simpo, TPO's tpo-l, …): beta=0 raises in them.
_DIVIDES_BY_BETA = frozenset({"ipo", "sppo_hard", "simpo", "tpo-l"})


def _loss_types(trainer: Any, args: Any) -> set[str]:
    """The loss types a TRL trainer computes (DPO keeps a list in ``loss_types``, others one ``loss_type``)."""
    found = getattr(trainer, "loss_types", None) or getattr(trainer, "loss_type", None)
    found = found or getattr(args, "loss_type", None)
    if found is None:
        return set()
    if isinstance(found, (list, tuple, set, frozenset)):
        return {str(t) for t in found}
    return {str(getattr(found, "value", found))}


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
