"""Undo for one request: everything an applier may touch, captured before it runs.

A request is all-or-nothing. Rather than asking every applier to undo itself
(which "constant" → "rescale" could not do exactly), the callback captures the
few mutable places appliers write to and puts them back if any applier
raises. It is only taken for a non-empty request, so an empty step pays nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch

from liveparams.trainer_hooks import _schedule
from liveparams.trainer_hooks._context import ApplyContext

__all__ = ["capture"]

# Attributes of the trainer object that appliers change (TRL knobs).
_TRAINER_FIELDS = ("beta",)


def _copy_value(value: Any) -> Any:
    return value.clone() if isinstance(value, torch.Tensor) else copy.copy(value)


def _restore_attributes(obj: Any, saved: dict[str, Any]) -> Callable[[], None]:
    return lambda: obj.__dict__.update(saved)


def _restore_items(target: dict[str, Any], saved: dict[str, Any]) -> Callable[[], None]:
    return lambda: target.update(saved)


def capture(ctx: ApplyContext) -> Callable[[], None]:
    """Return a function that restores what ``ctx``'s appliers may change to its state now."""
    restorers: list[Callable[[], None]] = []
    for obj in (ctx.args, ctx.state, ctx.control):
        restorers.append(_restore_attributes(obj, dict(obj.__dict__)))
    if ctx.optimizer is not None:
        for group in ctx.optimizer.param_groups:
            restorers.append(_restore_items(group, {k: _copy_value(v) for k, v in group.items() if k != "params"}))
    scheduler = ctx.lr_scheduler
    if scheduler is not None:
        fields = {k: _copy_value(v) for k, v in vars(scheduler).items() if k != "optimizer"}
        restorers.append(_restore_attributes(scheduler, fields))
        restorers.append(_schedule.capture_lambdas(scheduler))
    if ctx.trainer is not None:
        fields = {k: getattr(ctx.trainer, k) for k in _TRAINER_FIELDS if hasattr(ctx.trainer, k)}
        restorers.append(_restore_attributes(ctx.trainer, fields))

    def restore() -> None:
        for restorer in restorers:
            restorer()

    return restore
