"""How often the loop logs, evaluates and saves: ``logging_steps``, ``eval_steps``, ``save_steps``.

Trainer reads intervals from ``state``, not ``args``, so that is where they are
set; ``args`` is set too (see :class:`IntervalApplier`). A checkpoint does not
hold them, so a resume sets them again.

What they use of the :class:`~liveparams.trainer_hooks.ApplyContext`:

- ``state.<kind>_steps`` (set: what the loop must read at each step end);
- ``args``: ``<kind>_steps`` (set) and ``<kind>_strategy`` (a string or an enum
  with a ``value``; only ``"steps"`` makes an interval count), ``load_best_model_at_end``
  (optional);
- ``trainer.eval_dataset`` (optional): an evaluation needs one. Without a trainer,
  ``args.eval_strategy`` other than ``"no"`` stands for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from liveparams.trainer_hooks._appliers.base import NO_OTHER_PARAMS, ParameterApplier
from liveparams.trainer_hooks._context import ApplyContext

__all__ = [
    "STEP_INTERVALS",
    "EvalStepsApplier",
    "IntervalApplier",
    "LoggingStepsApplier",
    "SaveStepsApplier",
    "no_eval_reason",
]

# The intervals load_best_model_at_end ties together.
_BEST_MODEL_PAIR = ("save_steps", "eval_steps")

# The intervals Trainer reads from state (an interval set live is also written to args: see IntervalApplier).
STEP_INTERVALS = ("logging_steps", "eval_steps", "save_steps")


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

    def check(self, value: int, ctx: ApplyContext, params: Mapping[str, Any] = NO_OTHER_PARAMS) -> str | None:
        strategy = _strategy(ctx.args, self.strategy_field)
        if strategy != "steps":
            return f"{self.name} has no effect: {self.strategy_field} is {strategy!r}, not 'steps'"
        return None

    def apply(self, value: int, ctx: ApplyContext) -> None:
        setattr(ctx.state, self.name, int(value))
        setattr(ctx.args, self.name, int(value))


class LoggingStepsApplier(IntervalApplier):
    name = "logging_steps"
    strategy_field = "logging_strategy"


class SaveStepsApplier(IntervalApplier):
    name = "save_steps"
    strategy_field = "save_strategy"

    def check(self, value: int, ctx: ApplyContext, params: Mapping[str, Any] = NO_OTHER_PARAMS) -> str | None:
        return super().check(value, ctx, params) or _best_model_reason(self.name, value, ctx, params)


class EvalStepsApplier(IntervalApplier):
    name = "eval_steps"
    strategy_field = "eval_strategy"

    def check(self, value: int, ctx: ApplyContext, params: Mapping[str, Any] = NO_OTHER_PARAMS) -> str | None:
        return (
            no_eval_reason(ctx)
            or super().check(value, ctx, params)
            or _best_model_reason(self.name, value, ctx, params)
        )


def no_eval_reason(ctx: ApplyContext) -> str | None:
    """Evaluation without an eval set raises inside the loop; refuse it up front."""
    if ctx.trainer is not None:
        if getattr(ctx.trainer, "eval_dataset", None) is None:
            return f"{ctx.trainer_name} has no eval_dataset"
        return None
    if _strategy(ctx.args, "eval_strategy") == "no":
        return "evaluation is off (eval_strategy='no'), so there may be no eval dataset"
    return None


def _strategy(args: Any, field: str) -> str:
    strategy = getattr(args, field)
    return str(getattr(strategy, "value", strategy))


def _best_model_reason(name: str, value: int, ctx: ApplyContext, params: Mapping[str, Any]) -> str | None:
    """With ``load_best_model_at_end``, every save must follow an evaluation; TrainingArguments refuses other intervals.

    The intervals compared are those a restart would be given: this value, the other one set
    with it (``params``), else the run's (``args`` holds the values set live, see ``IntervalApplier``).
    """
    args = ctx.args
    if not getattr(args, "load_best_model_at_end", False) or _strategy(args, "save_strategy") != "steps":
        return None
    if _strategy(args, "eval_strategy") != "steps":
        return None  # a save strategy other than eval's fails at start; nothing this request changes
    given = {kind: params.get(kind, getattr(args, kind) or getattr(ctx.state, kind)) for kind in _BEST_MODEL_PAIR}
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
