"""Decide one request: check it, apply it all-or-nothing, and roll it back unless every rank applied it.

Requests are decided one at a time, in order, each against the run as the
previous one left it, so a batch drained at one step boundary ends exactly
where the same requests arriving at separate boundaries would.
:func:`decide` never raises: in a multi-process run every rank must reach the
verdict exchange for every request (see ``_distributed``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from liveparams.contract import (
    Change,
    InvalidParameter,
    OutcomeStatus,
    UpdateOutcome,
    UpdateRequest,
    format_value,
    validate_parameter,
)
from liveparams.trainer_hooks import _registry, _snapshot
from liveparams.trainer_hooks._context import ApplyContext

__all__ = ["Agree", "decide"]

logger = logging.getLogger(__name__)

# Turns this rank's outcome into the one every rank reports (identity in a single process).
Agree = Callable[[UpdateOutcome], UpdateOutcome]


def _single_process(outcome: UpdateOutcome) -> UpdateOutcome:
    return outcome


def decide(request: UpdateRequest | None, request_id: str, ctx: ApplyContext, agree: Agree | None) -> UpdateOutcome:
    """The outcome of ``request`` at this step; its changes stay only if it is applied on every rank.

    ``request`` is None on a rank that could not read it (it then fails everywhere).
    The outcome's changes hold old → new per parameter; nothing is logged here.
    """
    step = int(ctx.state.global_step)
    restore: Callable[[], None] | None = None
    try:
        if request is None:
            local = UpdateOutcome(request_id, OutcomeStatus.FAILED, step=step, reason="could not be read on this rank")
        else:
            refusal = _check(request, ctx)
            if refusal is None:
                restore = _snapshot.capture(ctx)
                local = _apply(request, ctx, restore)
            else:
                local = refusal
    except Exception as exc:
        logger.exception("deciding request %s failed", request_id)
        local = UpdateOutcome(request_id, OutcomeStatus.FAILED, step=step, reason=f"{type(exc).__name__}: {exc}")
        if restore is not None:
            _quietly(restore)
    outcome = (agree or _single_process)(local)
    if local.status is OutcomeStatus.APPLIED and outcome.status is not OutcomeStatus.APPLIED and restore is not None:
        _quietly(restore)  # another rank refused or failed it: undone here too, so the replicas stay equal
    if outcome.status is not OutcomeStatus.APPLIED and ctx.state.is_world_process_zero:  # one rank says so
        logger.warning("Parameter update %s %s: %s", request_id, outcome.status.value, outcome.reason)
    return outcome


def _quietly(restore: Callable[[], None]) -> None:
    try:
        restore()
    except Exception:
        logger.exception("rolling a request back failed")


def _check(request: UpdateRequest, ctx: ApplyContext) -> UpdateOutcome | None:
    """A refusal if any parameter of the request cannot be applied to this run (all-or-nothing)."""
    step = int(ctx.state.global_step)
    reason = _invalid_reason(request)
    if reason is not None:
        return UpdateOutcome(request.id, OutcomeStatus.REJECTED, step=step, reason=reason)
    try:
        reasons = [
            f"{name}: {r}"
            for name, value in request.params.items()
            if (r := _registry.get_applier(name).check(value, ctx, request.params)) is not None
        ]
    except Exception as exc:
        logger.exception("checking request %s failed", request.id)
        return UpdateOutcome(request.id, OutcomeStatus.FAILED, step=step, reason=f"{type(exc).__name__}: {exc}")
    if reasons:
        return UpdateOutcome(request.id, OutcomeStatus.REJECTED, step=step, reason="; ".join(reasons))
    return None


def _apply(request: UpdateRequest, ctx: ApplyContext, restore: Callable[[], None]) -> UpdateOutcome:
    """Apply every parameter in registry order; if one raises, roll the request back.

    Every ``old`` is read before anything is applied: it is the value before the request, not
    what an earlier parameter of the same request left (``learning_rate_mode="constant"``
    freezes the rate, which would make ``learning_rate``'s old the current scheduled rate
    instead of the peak; docs/parameters.md).
    """
    step = int(ctx.state.global_step)
    changes: dict[str, Change] = {}
    names = [name for name in _registry.applier_names() if name in request.params]
    try:
        olds: dict[str, Any] = {name: _registry.get_applier(name).read(ctx) for name in names}
    except Exception as exc:
        logger.exception("reading the values request %s changes failed; nothing changed", request.id)
        return UpdateOutcome(request.id, OutcomeStatus.FAILED, step=step, reason=f"{type(exc).__name__}: {exc}")
    for name in names:
        applier, value = _registry.get_applier(name), request.params[name]
        try:
            applier.apply(value, ctx)
        except Exception as exc:
            logger.exception("applying %s=%s failed; request %s rolled back", name, format_value(value), request.id)
            restore()
            reason = f"{name}: {type(exc).__name__}: {exc}; nothing changed"
            return UpdateOutcome(request.id, OutcomeStatus.FAILED, step=step, reason=reason)
        changes[name] = Change(old=olds[name], new=value)
    return UpdateOutcome(request.id, OutcomeStatus.APPLIED, step=step, changes=changes)


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
