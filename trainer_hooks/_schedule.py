"""Scheduler-aware learning-rate edits.

Why this module exists: every schedule Trainer builds (except
``reduce_lr_on_plateau`` and ``greedy``) is a ``LambdaLR`` that recomputes
``lr = base_lrs[i] * lambda_i(last_epoch)`` on every step, so writing
``param_groups[i]['lr']`` lasts exactly one step (see
shared/trainer-mechanics.md). A change that sticks edits ``base_lrs`` (the
peak) and recomputes the current rate and ``_last_lr`` (what Trainer logs) at
once. The metric-driven schedulers keep their state in ``group['lr']`` itself.

Every edit here *sets* a value instead of scaling by a stored factor, so the
same call can be repeated on resume without compounding.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau

__all__ = [
    "capture_lambdas",
    "is_constant",
    "is_lambda_schedule",
    "lambda_keyword",
    "lambda_keyword_reason",
    "make_constant",
    "peak_lr",
    "restore_peak_keyword",
    "resume_schedule",
    "resume_schedule_reason",
    "schedule_lambdas",
    "set_lambda_keyword",
    "set_peak_lr",
    "unsupported_reason",
    "unwrap",
]

# The lambdas a scheduler had before ``learning_rate_mode="constant"`` replaced
# them, so "rescale" can bring the schedule back. Kept outside the scheduler:
# anything in its ``__dict__`` would be pickled into ``scheduler.pt``.
_saved_lambdas: weakref.WeakKeyDictionary[Any, list[Callable[[int], float]]] = weakref.WeakKeyDictionary()


def _constant_factor(_step: int) -> float:
    """The lambda of a constant rate: the rate is ``base_lrs[i]`` itself."""
    return 1.0


def unwrap(scheduler: Any) -> Any:
    """The scheduler itself, not accelerate's ``AcceleratedScheduler`` around it."""
    if type(scheduler).__name__ == "AcceleratedScheduler":
        return scheduler.scheduler
    return scheduler


def is_lambda_schedule(scheduler: Any) -> bool:
    """Whether the rate is ``base_lrs[i] * lambda_i(step)`` (every schedule Trainer builds but two)."""
    return isinstance(scheduler, LambdaLR)


def _is_metric_driven(scheduler: Any) -> bool:
    """``ReduceLROnPlateau`` and transformers' ``GreedyLR`` keep the rate in ``group['lr']``."""
    return isinstance(scheduler, ReduceLROnPlateau) or type(scheduler).__name__ == "GreedyLR"


def unsupported_reason(scheduler: Any) -> str | None:
    """Why the learning rate cannot be changed safely under ``scheduler``, or None if it can."""
    if scheduler is None or isinstance(scheduler, LambdaLR) or _is_metric_driven(scheduler):
        return None
    return (
        f"learning-rate changes support the schedulers Trainer creates (LambdaLR family, "
        f"reduce_lr_on_plateau, greedy); this run uses {type(scheduler).__name__}"
    )


def _set_group_lr(group: dict[str, Any], value: float | torch.Tensor) -> None:
    if isinstance(group["lr"], torch.Tensor):
        group["lr"].fill_(value)
    else:
        group["lr"] = value


def _refresh(optimizer: Any, scheduler: Any) -> None:
    """Recompute the current rate from the peak and refresh what Trainer logs."""
    if isinstance(scheduler, LambdaLR):
        for base, fn, group in zip(scheduler.base_lrs, scheduler.lr_lambdas, optimizer.param_groups, strict=True):
            _set_group_lr(group, base * fn(scheduler.last_epoch))
    if scheduler is not None:
        scheduler._last_lr = [float(group["lr"]) for group in optimizer.param_groups]


def peak_lr(optimizer: Any, scheduler: Any) -> float:
    """The first group's peak rate: what ``learning_rate`` means (``args.learning_rate`` in a plain run)."""
    if isinstance(scheduler, LambdaLR):
        return float(scheduler.base_lrs[0])
    return float(optimizer.param_groups[0]["lr"])


def set_peak_lr(optimizer: Any, scheduler: Any, new: float) -> None:
    """Make ``new`` the first group's peak and scale the other groups by the same ratio.

    The schedule keeps its shape: the current rate becomes ``new * lambda(step)``
    immediately, and every later step follows the schedule from the new peak.
    Groups keep their ratios to the first (LoRA+, layer-wise rates).
    """
    old = peak_lr(optimizer, scheduler)
    groups = optimizer.param_groups
    if isinstance(scheduler, LambdaLR):
        bases = scheduler.base_lrs
        scheduler.base_lrs = [new if i == 0 or old == 0 else base * new / old for i, base in enumerate(bases)]
        for base, group in zip(scheduler.base_lrs, groups, strict=True):
            group["initial_lr"] = base
        for fn in _partials_with(scheduler, "lr_init"):
            # The polynomial lambda divides by the peak it was built with, to keep lr_end absolute.
            fn.keywords["lr_init"] = new
    else:
        currents = [float(group["lr"]) for group in groups]
        for i, (current, group) in enumerate(zip(currents, groups, strict=True)):
            _set_group_lr(group, new if i == 0 or old == 0 else current * new / old)
        if type(scheduler).__name__ == "GreedyLR":
            # GreedyLR resets to _init_lrs after a long plateau: move that anchor too.
            scheduler._init_lrs = [init * new / old if old else new for init in scheduler._init_lrs]
    _refresh(optimizer, scheduler)


def restore_peak_keyword(optimizer: Any, scheduler: Any, peak: float) -> bool:
    """After resume, give the polynomial lambda back the peak :func:`set_peak_lr` set; whether there was one.

    ``scheduler.pt`` restores ``base_lrs`` but not the lambda's keywords, so a
    resumed polynomial schedule would divide by the peak the run started with.
    """
    if not isinstance(scheduler, LambdaLR) or not _partials_with(scheduler, "lr_init"):
        return False
    set_lambda_keyword(optimizer, scheduler, "lr_init", peak)
    return True


def is_constant(scheduler: Any) -> bool:
    """Whether ``learning_rate_mode="constant"`` has frozen this scheduler."""
    return scheduler is not None and scheduler in _saved_lambdas


def schedule_lambdas(scheduler: Any) -> list[Callable[[int], float]]:
    """The schedule's own lambdas, also while a constant rate has replaced them (none for a metric-driven one)."""
    if scheduler in _saved_lambdas:
        return _saved_lambdas[scheduler]
    return list(scheduler.lr_lambdas) if isinstance(scheduler, LambdaLR) else []


def make_constant(optimizer: Any, scheduler: Any) -> None:
    """Freeze every group at its current rate: ``base_lrs = lr`` and a lambda of 1.

    The current rate is read from ``group['lr']``, which a resumed checkpoint
    restores too, so re-applying this after resume is a no-op on the rate.
    """
    if scheduler in _saved_lambdas:
        return
    _saved_lambdas[scheduler] = list(scheduler.lr_lambdas)
    scheduler.base_lrs = [float(group["lr"]) for group in optimizer.param_groups]
    for base, group in zip(scheduler.base_lrs, optimizer.param_groups, strict=True):
        group["initial_lr"] = base
    scheduler.lr_lambdas = [_constant_factor] * len(optimizer.param_groups)
    _refresh(optimizer, scheduler)


def resume_schedule_reason(scheduler: Any) -> str | None:
    """Why the schedule cannot be resumed from the current rate, or None if it can."""
    if scheduler not in _saved_lambdas:
        return None
    if any(fn(scheduler.last_epoch) == 0 for fn in _saved_lambdas[scheduler]):
        return "the schedule's factor is 0 at this step, so it cannot continue from the current rate"
    return None


def resume_schedule(optimizer: Any, scheduler: Any) -> None:
    """Undo :func:`make_constant`: the schedule continues from the current rate (peak = lr / lambda(step))."""
    lambdas = _saved_lambdas.pop(scheduler, None)
    if lambdas is None:
        return
    scheduler.lr_lambdas = lambdas
    scheduler.base_lrs = [
        float(group["lr"]) / fn(scheduler.last_epoch) for fn, group in zip(lambdas, optimizer.param_groups, strict=True)
    ]
    for base, group in zip(scheduler.base_lrs, optimizer.param_groups, strict=True):
        group["initial_lr"] = base
    _refresh(optimizer, scheduler)


def _partials_with(scheduler: Any, keyword: str) -> list[functools.partial[float]]:
    found: list[functools.partial[float]] = []
    for fn in schedule_lambdas(scheduler):
        if isinstance(fn, functools.partial) and keyword in fn.keywords and fn not in found:
            found.append(fn)
    return found


def lambda_keyword_reason(scheduler: Any, keyword: str) -> str | None:
    """Why the schedule has no ``keyword`` to change, or None if it has."""
    if not isinstance(scheduler, LambdaLR):
        return f"the {type(scheduler).__name__} scheduler has no {keyword}"
    if not _partials_with(scheduler, keyword):
        names = sorted({getattr(getattr(fn, "func", fn), "__name__", repr(fn)) for fn in schedule_lambdas(scheduler)})
        return f"this run's schedule ({', '.join(names)}) has no {keyword}"
    return None


def set_lambda_keyword(optimizer: Any, scheduler: Any, keyword: str, value: float) -> None:
    """Set a keyword of the schedule's lambdas (the HF lambdas are partials) and recompute the rate."""
    for fn in _partials_with(scheduler, keyword):
        fn.keywords[keyword] = value
    if not is_constant(scheduler):
        _refresh(optimizer, scheduler)


def lambda_keyword(scheduler: Any, keyword: str) -> Any:
    """The current value of a schedule keyword (from the first lambda that has it)."""
    partials = _partials_with(scheduler, keyword)
    return partials[0].keywords[keyword] if partials else None


def capture_lambdas(scheduler: Any) -> Callable[[], None]:
    """Return a function restoring the schedule lambdas' keywords and the constant-mode record."""
    keywords = [(fn, dict(fn.keywords)) for fn in schedule_lambdas(scheduler) if isinstance(fn, functools.partial)]
    saved = _saved_lambdas.get(scheduler)

    def restore() -> None:
        for fn, kw in keywords:
            fn.keywords.clear()
            fn.keywords.update(kw)
        if saved is None:
            _saved_lambdas.pop(scheduler, None)
        else:
            _saved_lambdas[scheduler] = saved

    return restore
