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

from liveparams.trainer_hooks import _restart, _schedule
from liveparams.trainer_hooks._context import ApplyContext

__all__ = ["capture"]

# Attributes of the trainer object that appliers change (TRL knobs, a pending in-process restart).
_TRAINER_FIELDS = ("beta", _restart.FIELD)


def _content(value: Any) -> Any:
    """A copy of what ``value`` holds now (tensors cloned, also inside a tuple such as ``betas``)."""
    if isinstance(value, torch.Tensor):
        return value.clone()
    if _holds_tensors(value):
        return type(value)(_content(v) for v in value)
    return copy.copy(value)


def _holds_tensors(value: Any) -> bool:
    return isinstance(value, (tuple, list)) and any(isinstance(v, torch.Tensor) for v in value)


def _refill(original: Any, content: Any) -> Any:
    """``original`` holding ``content`` again: a tensor keeps its identity and is refilled in place.

    As torch's own schedulers do: capturable optimizers and CUDA graphs hold that very tensor.
    """
    if isinstance(original, torch.Tensor):
        with torch.no_grad():
            original.copy_(content)
        return original
    if _holds_tensors(original) and len(original) == len(content):
        return type(original)(_refill(o, c) for o, c in zip(original, content, strict=True))
    return content


def _saved(values: dict[str, Any], skip: str) -> dict[str, tuple[Any, Any]]:
    return {k: (v, _content(v)) for k, v in values.items() if k != skip}


def _put_back(target: dict[str, Any], saved: dict[str, tuple[Any, Any]]) -> None:
    for key, (original, content) in saved.items():
        target[key] = _refill(original, content)


def _restore_attributes(obj: Any, saved: dict[str, Any]) -> Callable[[], None]:
    return lambda: obj.__dict__.update(saved)


def _restore_items(target: dict[str, Any], saved: dict[str, tuple[Any, Any]]) -> Callable[[], None]:
    return lambda: _put_back(target, saved)


def capture(ctx: ApplyContext) -> Callable[[], None]:
    """Return a function that restores what ``ctx``'s appliers may change to its state now."""
    restorers: list[Callable[[], None]] = []
    for obj in (ctx.args, ctx.state, ctx.control):
        restorers.append(_restore_attributes(obj, dict(obj.__dict__)))
    if ctx.optimizer is not None:
        for group in ctx.optimizer.param_groups:
            restorers.append(_restore_items(group, _saved(group, skip="params")))
    scheduler = ctx.lr_scheduler
    if scheduler is not None:
        restorers.append(_restore_items(vars(scheduler), _saved(vars(scheduler), skip="optimizer")))
        restorers.append(_schedule.capture_lambdas(scheduler))
    if ctx.pause is not None:
        restorers.append(_restore_attributes(ctx.pause, dict(ctx.pause.__dict__)))
    if ctx.trainer is not None:
        fields = {k: getattr(ctx.trainer, k) for k in _TRAINER_FIELDS if hasattr(ctx.trainer, k)}
        restorers.append(_restore_attributes(ctx.trainer, fields))

    def restore() -> None:
        for restorer in restorers:
            restorer()

    return restore
