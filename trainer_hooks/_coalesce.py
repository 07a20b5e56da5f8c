"""Report as superseded what a later request of the same drain replaced before any step used it.

The requests of one drain are all applied, one at a time (``_decide``), so the
run ends where one-at-a-time arrivals would leave it. This only changes what
is *reported*: a parameter whose value no optimizer step used, because a later
request set it again, is "superseded by" the request whose value is in force.
Parameters that interact (the schedule's: see ``ParameterApplier.coupling``)
count as replaced only when nothing touched their group in between, so
``learning_rate_mode="constant"``, ``learning_rate=x``, ``learning_rate_mode="rescale"``
stay three applied requests, as they would be one step apart.
"""

from __future__ import annotations

import dataclasses

from liveparams.contract import OutcomeStatus, UpdateOutcome, UpdateRequest
from liveparams.trainer_hooks import _registry

__all__ = ["mark_superseded"]


def _group(name: str) -> str:
    applier = _registry.get_applier(name)
    return applier.coupling or applier.name


def mark_superseded(requests: list[UpdateRequest | None], outcomes: list[UpdateOutcome]) -> list[UpdateOutcome]:
    """``outcomes`` (one per request, in order) with replaced parameters reported as superseded."""
    applied = [
        i for i, (r, o) in enumerate(zip(requests, outcomes, strict=True)) if r and o.status is OutcomeStatus.APPLIED
    ]
    replaced_by: dict[tuple[int, str], int] = {}  # (request index, parameter) → index of the request replacing it
    for position, i in enumerate(applied):
        for name in outcomes[i].changes:
            if _registry.get_applier(name).one_off:
                continue
            group = _group(name)
            for j in applied[position + 1 :]:
                touched = {n for n in outcomes[j].changes if _group(n) == group}
                if touched:
                    if name in touched:
                        replaced_by[(i, name)] = j
                    break
    result = list(outcomes)
    for i in applied:  # first first, so the value before the drain travels along the chain to the one in force
        for name in outcomes[i].changes:
            if (i, name) in replaced_by:
                j = replaced_by[(i, name)]
                later = dict(result[j].changes)
                later[name] = dataclasses.replace(later[name], old=result[i].changes[name].old)
                result[j] = dataclasses.replace(result[j], changes=later)
    for i in applied:
        final = {name: _final(replaced_by, i, name) for name in outcomes[i].changes if (i, name) in replaced_by}
        if not final:
            continue
        ids = {name: outcomes[j].request_id for name, j in final.items()}
        kept = {name: change for name, change in result[i].changes.items() if name not in final}
        if kept:
            note = ", ".join(f"{name} superseded by {by}" for name, by in ids.items())
            result[i] = dataclasses.replace(result[i], changes=kept, reason=note)
        else:
            by = outcomes[max(final.values())].request_id
            outcome = outcomes[i]
            result[i] = UpdateOutcome(outcome.request_id, OutcomeStatus.SUPERSEDED, step=outcome.step, superseded_by=by)
    return result


def _final(replaced_by: dict[tuple[int, str], int], i: int, name: str) -> int:
    """The index of the request whose value of ``name`` is in force after request ``i``'s."""
    while (i, name) in replaced_by:
        i = replaced_by[(i, name)]
    return i
