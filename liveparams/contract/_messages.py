"""What crosses the queue between the agent thread and the training thread.

Frozen dataclasses with no dependencies, so ``trainer_hooks`` can use them
without knowing about pydantic, websockets or Supabase. The JSON each outcome
becomes on the database (the ``record_parameter_update_outcomes`` RPC's
``{<request id>: outcome}``, stored on the request's row) is defined here once,
in :meth:`UpdateOutcome.to_row`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from liveparams.contract._parameters import ParamValue

# A reason is a sentence for the user. An exception's text can be far longer, and the database records
# an outcome of at most 16 KiB (liveparams_max_outcome_bytes(), 4 bytes a character at worst): longer
# reasons are cut here, so the outcome is stored with its reason instead of refused.
MAX_REASON_CHARS = 2000


class OutcomeStatus(str, Enum):
    """The value written to the row's ``status`` field of an outcome.

    The trainer writes the first four. ``cancelled`` is written by the database only: the owner
    cancelled the request, or its run ended before the trainer took it (docs/contracts.md).
    """

    APPLIED = "applied"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class UpdateRequest:
    """A validated request, ready to apply.

    Args:
        id (`str`): the request's id (a uuid stamped by the RPC; ``legacy-<hash>``
            for entries written without one).
        params (`dict[str, ParamValue]`): parameter name to validated value.
        requested_at (`str`): when the user asked, as stored on the row.
        seq (`int`): the request's order on its job; requests are applied in seq order.
            Strictly increasing per job, so a checkpoint can record what was decided as a
            high-water mark instead of every id. Required: a source that delivered two
            requests with the same seq would have the second skipped as already decided.
        requested_by (`str`, *optional*): who asked (user id or role).
    """

    id: str
    params: dict[str, ParamValue]
    requested_at: str
    seq: int
    requested_by: str | None = None


@dataclass(frozen=True)
class Change:
    """One parameter changed by an applied request: its value before and after."""

    old: Any
    new: Any


def utc_now_iso() -> str:
    """The timestamp format used on the row (millisecond precision, ``Z`` suffix)."""
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class UpdateOutcome:
    """What happened to one request; recorded on the row under its id.

    Args:
        request_id (`str`): the id of the request this is about.
        status (`OutcomeStatus`): applied, rejected, superseded or failed.
        step (`int`, *optional*): the global step after which it took effect
            (or was refused); ``None`` when the agent refused it before training saw it.
        changes (`dict[str, Change]`): for applied requests, old → new per parameter.
        reason (`str`, *optional*): for anything not applied, a sentence for the user.
        superseded_by (`str`, *optional*): the id of the request that replaced this one.
        at (`str`): when the outcome was decided.
    """

    request_id: str
    status: OutcomeStatus
    step: int | None = None
    changes: dict[str, Change] = field(default_factory=dict)
    reason: str | None = None
    superseded_by: str | None = None
    at: str = field(default_factory=utc_now_iso)

    def to_row(self) -> dict[str, Any]:
        """The JSON the outcomes RPC takes for ``request_id``: status, at, step, changes/reason/superseded_by."""
        row: dict[str, Any] = {"status": self.status.value, "at": self.at, "step": self.step}
        if self.changes:
            row["changes"] = {name: {"old": c.old, "new": c.new} for name, c in self.changes.items()}
        if self.reason is not None:
            cut = len(self.reason) > MAX_REASON_CHARS
            row["reason"] = self.reason[: MAX_REASON_CHARS - 1] + "…" if cut else self.reason
        if self.superseded_by is not None:
            row["superseded_by"] = self.superseded_by
        return row


@dataclass(frozen=True)
class RestartRecord:
    """An in-process restart or rewind done, for the job row: where it went on from, and how long it took.

    Args:
        kind (`str`): ``"restart"`` (a restart-only setting, from the checkpoint of ``step``) or
            ``"rewind"`` (``command=rewind``, back to the checkpoint of ``step``).
        step (`int`): the global step the run went on from.
        from_step (`int`, *optional*): a rewind's: the step it left.
        settings (`dict[str, int]`): the restart-only settings the run went on with.
        seconds (`float`): wall time, measured, from the request's apply (the save) to the
            first step after ``train()`` was entered again.
    """

    kind: str
    step: int
    from_step: int | None
    settings: dict[str, int]
    seconds: float

    def to_args(self) -> dict[str, Any]:
        """The RPC's arguments (``record_trainer_restart``), less the job."""
        return {
            "p_kind": self.kind,
            "p_step": self.step,
            "p_from_step": self.from_step,
            "p_settings": self.settings,
            "p_seconds": self.seconds,
        }
