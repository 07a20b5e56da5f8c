"""The optimizer's param-group fields (weight decay, Adam's betas and epsilon) and gradient clipping.

Param-group fields are in ``optimizer.pt``, so a resume restores them and
these appliers do not set them again; ``max_grad_norm`` lives in ``args``,
which a checkpoint does not hold.

What they use of the :class:`~liveparams.trainer_hooks.ApplyContext`:

- ``optimizer.param_groups`` (``weight_decay``, ``betas``, ``eps``; accelerate's
  wrapper or the optimizer itself);
- ``args.max_grad_norm`` (set: the loop must read it at every clip, as Trainer does)
  and ``args.deepspeed`` (optional);
- ``trainer`` and ``model`` (optional): which groups are decayed when none is yet
  (``trainer.get_decay_parameter_names(model)``); ``trainer.is_deepspeed_enabled``.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any, ClassVar

from liveparams.trainer_hooks import _schedule
from liveparams.trainer_hooks._appliers.base import NO_OPTIMIZER, NO_OTHER_PARAMS, ParameterApplier
from liveparams.trainer_hooks._context import ApplyContext

__all__ = [
    "AdamBeta1Applier",
    "AdamBeta2Applier",
    "AdamBetaApplier",
    "AdamEpsilonApplier",
    "MaxGradNormApplier",
    "WeightDecayApplier",
]

# Optimizer → indices of the groups seen decayed, so that weight_decay=0 can be undone without a trainer.
_decayed_groups: weakref.WeakKeyDictionary[Any, tuple[int, ...]] = weakref.WeakKeyDictionary()


class WeightDecayApplier(ParameterApplier):
    """Weight decay of the decayed group(s); groups built with 0 (biases, norms) stay at 0."""

    name = "weight_decay"

    def read(self, ctx: ApplyContext) -> float:
        groups = _decay_groups(ctx)
        return float(groups[0]["weight_decay"]) if groups else 0.0

    def check(self, value: float, ctx: ApplyContext, params: Mapping[str, Any] = NO_OTHER_PARAMS) -> str | None:
        if ctx.optimizer is None:
            return NO_OPTIMIZER
        if not _decay_groups(ctx):
            return "no parameter group is decayed (all have weight_decay 0) and no trainer reference to find them"
        return None

    def apply(self, value: float, ctx: ApplyContext) -> None:
        for group in _decay_groups(ctx):
            _schedule.set_group_value(group, "weight_decay", float(value))

    def reapply(self, value: float, ctx: ApplyContext) -> bool:
        return False  # a param-group field: optimizer.pt restores it


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

    def check(self, value: float, ctx: ApplyContext, params: Mapping[str, Any] = NO_OTHER_PARAMS) -> str | None:
        if ctx.optimizer is None:
            return NO_OPTIMIZER
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

    def check(self, value: float, ctx: ApplyContext, params: Mapping[str, Any] = NO_OTHER_PARAMS) -> str | None:
        if getattr(ctx.args, "deepspeed", None) or getattr(ctx.trainer, "is_deepspeed_enabled", False):
            return "under DeepSpeed, gradient clipping is fixed in its config; restart to change it"
        return None

    def apply(self, value: float, ctx: ApplyContext) -> None:
        ctx.args.max_grad_norm = float(value)
