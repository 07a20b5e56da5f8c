"""Scheduler-aware learning-rate edits that leave the run where a restart with the new settings would be.

Why this module exists: every schedule Trainer builds (except
``reduce_lr_on_plateau`` and ``greedy``) is a ``LambdaLR`` that recomputes
``lr = base_lrs[i] * lambda_i(last_epoch)`` on every step, so writing
``param_groups[i]['lr']`` lasts exactly one step (docs/internals.md, "Trainer").
A change that sticks edits ``base_lrs`` (the peak) and the lambda's keywords
(the shape), then recomputes the current rate and ``_last_lr`` (what Trainer
logs) at once. The metric-driven schedulers keep their state in ``group['lr']``.

The rule every edit follows: the lambdas get exactly the keywords
``transformers.get_scheduler`` would have given a run *started* with the new
settings (absolute arguments such as ``min_lr`` stay absolute, derived ones
such as ``num_stable_steps`` and ``timescale`` are derived again).

Every edit *sets* a value instead of scaling by a stored factor, so the
same call can be repeated on resume without compounding.
"""

from __future__ import annotations

import functools
import json
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import torch
from accelerate.scheduler import AcceleratedScheduler
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau

from liveparams.contract import format_value

__all__ = [
    "capture_lambdas",
    "horizon_reason",
    "is_constant",
    "is_lambda_schedule",
    "lambda_keyword",
    "lambda_keyword_reason",
    "make_constant",
    "peak_lr",
    "peak_reason",
    "resume_schedule",
    "resume_schedule_reason",
    "schedule_lambdas",
    "set_group_value",
    "set_peak_keywords",
    "set_peak_lr",
    "set_shape",
    "unsupported_reason",
    "unwrap",
    "user_kwargs",
]

# The lambdas a scheduler had before ``learning_rate_mode="constant"`` replaced
# them, so "rescale" can bring the schedule back. Kept outside the scheduler:
# anything in its ``__dict__`` would be pickled into ``scheduler.pt``.
_saved_lambdas: weakref.WeakKeyDictionary[Any, list[Callable[[int], float]]] = weakref.WeakKeyDictionary()

# transformers' default timescale of ``inverse_sqrt`` when warmup is 0.
_INVERSE_SQRT_DEFAULT_TIMESCALE = 10_000


def _constant_factor(_step: int) -> float:
    """The lambda of a constant rate: the rate is ``base_lrs[i]`` itself."""
    return 1.0


def user_kwargs(args: Any) -> dict[str, Any]:
    """``args.lr_scheduler_kwargs``: what the user gave the schedule (the rest is derived by transformers)."""
    given = getattr(args, "lr_scheduler_kwargs", None) or {}
    if isinstance(given, str):
        given = json.loads(given)
    return dict(given)


def unwrap(scheduler: Any) -> Any:
    """The scheduler itself, not accelerate's ``AcceleratedScheduler`` (or its ``DeepSpeedSchedulerWrapper``)."""
    while isinstance(scheduler, AcceleratedScheduler):
        scheduler = scheduler.scheduler
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


def horizon_reason(scheduler: Any) -> str | None:
    """Why ``max_steps`` cannot move this schedule's horizon, or None (no horizon, or one that moves)."""
    if unsupported_reason(scheduler) is None:
        return None
    return f"the {type(scheduler).__name__} scheduler's horizon cannot be moved; restart to change max_steps"


def peak_reason(scheduler: Any, new: float) -> str | None:
    """Why a run started with peak ``new`` would not even build this schedule, or None."""
    for fn in _partials_with(scheduler, "lr_end"):
        if not new > fn.keywords["lr_end"]:
            return f"the polynomial schedule's lr_end ({format_value(fn.keywords['lr_end'])}) must be below the peak"
    return None


def set_group_value(group: dict[str, Any], key: str, value: Any) -> None:
    """Set a param-group field; a tensor is filled in place (captured graphs and capturable optimizers hold it)."""
    current = group.get(key)
    if isinstance(current, torch.Tensor):
        current.fill_(value)
    else:
        group[key] = value


def _set_peaks(optimizer: Any, scheduler: Any, peaks: list[float]) -> None:
    """``base_lrs`` and each group's ``initial_lr`` (what a restarted scheduler would read)."""
    scheduler.base_lrs = list(peaks)
    for peak, group in zip(peaks, optimizer.param_groups, strict=True):
        set_group_value(group, "initial_lr", peak)


def _refresh(optimizer: Any, scheduler: Any) -> None:
    """Recompute the current rate from the peak and refresh what Trainer logs."""
    if isinstance(scheduler, LambdaLR):
        for base, fn, group in zip(scheduler.base_lrs, scheduler.lr_lambdas, optimizer.param_groups, strict=True):
            set_group_value(group, "lr", base * fn(scheduler.last_epoch))
    if scheduler is not None:
        scheduler._last_lr = [float(group["lr"]) for group in optimizer.param_groups]


def peak_lr(optimizer: Any, scheduler: Any) -> float:
    """The first group's peak rate: what ``learning_rate`` means (``args.learning_rate`` in a plain run)."""
    if isinstance(scheduler, LambdaLR):
        return float(scheduler.base_lrs[0])
    return float(optimizer.param_groups[0]["lr"])


def set_peak_lr(optimizer: Any, scheduler: Any, new: float, given: Mapping[str, Any]) -> None:
    """Make ``new`` the first group's peak and scale the other groups by the same ratio.

    The schedule keeps its shape: the current rate becomes ``new * lambda(step)``
    immediately, and every later step follows the schedule from the new peak.
    Groups keep their ratios to the first (LoRA+, layer-wise rates). ``given``
    is ``args.lr_scheduler_kwargs`` (see :func:`set_peak_keywords`).
    """
    old = peak_lr(optimizer, scheduler)
    groups = optimizer.param_groups
    if isinstance(scheduler, LambdaLR):
        # A group at the first group's peak gets ``new`` itself, as in a run started with it (no rounding).
        bases = [float(b) for b in scheduler.base_lrs]
        peaks = [new if i == 0 or old in (0, b) else b * new / old for i, b in enumerate(bases)]
        _set_peaks(optimizer, scheduler, peaks)
        _set_peak_keywords(scheduler, new, given)
    else:
        currents = [float(group["lr"]) for group in groups]
        for i, (current, group) in enumerate(zip(currents, groups, strict=True)):
            set_group_value(group, "lr", new if i == 0 or old == 0 else current * new / old)
        if type(scheduler).__name__ == "GreedyLR":
            # GreedyLR resets to _init_lrs after a long plateau: move that anchor too.
            scheduler._init_lrs = [init * new / old if old else new for init in scheduler._init_lrs]
    _refresh(optimizer, scheduler)


def _set_peak_keywords(scheduler: Any, peak: float, given: Mapping[str, Any]) -> bool:
    """The keywords transformers derives from the peak; whether the schedule has any.

    ``polynomial`` divides by the peak it was built with (``lr_init``) to keep
    ``lr_end`` absolute; the two ``cosine*_min_lr`` schedules turn an absolute
    ``min_lr`` into ``min_lr_rate = min_lr / peak`` at build time. A relative
    ``min_lr_rate`` (or ``min_lr_ratio``) given by the user scales with the peak as is.
    """
    found = False
    for fn in _partials_with(scheduler, "lr_init"):
        fn.keywords["lr_init"] = peak
        found = True
    if given.get("min_lr") is not None:
        for fn in _partials_with(scheduler, "min_lr_rate"):
            fn.keywords["min_lr_rate"] = given["min_lr"] / peak
            found = True
    return found


def set_peak_keywords(optimizer: Any, scheduler: Any, peak: float, given: Mapping[str, Any]) -> bool:
    """After resume, give the lambdas back what :func:`set_peak_lr` derived from the peak; whether there was any.

    ``scheduler.pt`` restores ``base_lrs`` but not the lambdas' keywords.
    """
    if not isinstance(scheduler, LambdaLR) or not _set_peak_keywords(scheduler, peak, given):
        return False
    if not is_constant(scheduler):
        _refresh(optimizer, scheduler)
    return True


def set_shape(optimizer: Any, scheduler: Any, *, total: int, warmup: int, given: Mapping[str, Any]) -> None:
    """Give the lambdas the shape keywords of a schedule built for ``total`` steps with ``warmup``.

    As ``transformers.get_scheduler`` derives them: ``num_stable_steps`` of
    ``warmup_stable_decay`` is ``total - warmup - num_decay_steps`` and
    ``timescale`` of ``inverse_sqrt`` is ``warmup or 10000``, unless the user
    gave them in ``lr_scheduler_kwargs`` (``given``).
    """
    keywords: dict[str, Any] = {"num_training_steps": total, "num_warmup_steps": warmup}
    if given.get("timescale") is None:
        keywords["timescale"] = warmup or _INVERSE_SQRT_DEFAULT_TIMESCALE
    for keyword, value in keywords.items():
        for fn in _partials_with(scheduler, keyword):
            fn.keywords[keyword] = value
    if given.get("num_stable_steps") is None:
        for fn in _partials_with(scheduler, "num_stable_steps"):
            fn.keywords["num_stable_steps"] = total - warmup - fn.keywords["num_decay_steps"]
    if not is_constant(scheduler):
        _refresh(optimizer, scheduler)


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
    _set_peaks(optimizer, scheduler, [float(group["lr"]) for group in optimizer.param_groups])
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
    step, groups = scheduler.last_epoch, optimizer.param_groups
    _set_peaks(optimizer, scheduler, [float(g["lr"]) / fn(step) for fn, g in zip(lambdas, groups, strict=True)])
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
