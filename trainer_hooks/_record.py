"""What the callback keeps in checkpoints: which requests are decided, and the values in force.

Why a high-water mark: requests reach the callback in ``seq`` order (strictly
increasing per job), so "every request up to seq N is decided" is one number.
The few requests delivered but not decided yet (commands held at train begin
until the first step ends) are listed by id. The record's size therefore does
not grow with the job's history.

Why the recent outcomes: an outcome handed to the source may never reach the
row (a crash before its flush). After a resume the source delivers such a
request again as undecided; the callback reports the outcome it kept instead of
deciding it a second time. The last :data:`MAX_RECENT_OUTCOMES` outcomes are
kept, across saves: an outage can outlast several checkpoints, and the one a
run resumes from must still hold every outcome that was never written. Which
ones were written only the source knows, and the protocol does not ask it to
say (a custom source may never know), so the record keeps the most recent
ones whether written or not; an outcome then goes missing only when 256 more
were decided before the outage ended, which the bound trades for a checkpoint
that never grows (a few tens of kB at most).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from liveparams.contract import Change, OutcomeStatus, UpdateOutcome, UpdateRequest

__all__ = ["MAX_RECENT_OUTCOMES", "DecisionRecord"]

MAX_RECENT_OUTCOMES = 256


def _outcome_from_row(request_id: str, row: dict[str, Any]) -> UpdateOutcome:
    changes = {name: Change(c["old"], c["new"]) for name, c in row.get("changes", {}).items()}
    return UpdateOutcome(
        request_id,
        OutcomeStatus(row["status"]),
        step=row.get("step"),
        changes=changes,
        reason=row.get("reason"),
        superseded_by=row.get("superseded_by"),
        at=row["at"],
    )


@dataclass
class DecisionRecord:
    """The callback's checkpointed state (JSON in ``trainer_state.json``).

    Args:
        job_id (`str`, *optional*): the job the ``seq`` numbers below count requests of.
        decided_seq (`int`): every request with a ``seq`` up to this one that reached the callback
            is decided, except those in ``undecided``; -1 before the first.
        undecided (`set[str]`): ids delivered with a ``seq`` up to ``decided_seq`` and not decided yet.
        in_force (`dict[str, Any]`): parameter → the value last applied (set again after a resume).
        recent (`dict[str, dict]`): request id → outcome row, the last ``MAX_RECENT_OUTCOMES`` decided.
    """

    job_id: str | None = None
    decided_seq: int = -1
    undecided: set[str] = field(default_factory=set)
    in_force: dict[str, Any] = field(default_factory=dict)
    recent: dict[str, dict[str, Any]] = field(default_factory=dict)

    def for_job(self, job_id: str | None) -> DecisionRecord:
        """This record when it is about ``job_id`` (or about no job yet); else a fresh one for ``job_id``.

        A checkpoint resumed under another job (a retry that made a new job row, a script that
        changed ``JOB_ID``) says nothing about that job's requests: its ``seq`` numbers count
        another job's. The values in force are the run's, so they are kept.
        """
        if job_id is None or self.job_id in (None, job_id):
            self.job_id = job_id or self.job_id
            return self
        return DecisionRecord(job_id=job_id, in_force=dict(self.in_force))

    def is_decided(self, request: UpdateRequest) -> bool:
        return request.seq <= self.decided_seq and request.id not in self.undecided

    def lost_outcome(self, request: UpdateRequest) -> UpdateOutcome | None:
        """The outcome kept for a decided request the source delivered again (its outcome never reached the row)."""
        row = self.recent.get(request.id)
        return None if row is None else _outcome_from_row(request.id, row)

    def hold(self, request: UpdateRequest) -> None:
        """``request`` was delivered and waits to be decided."""
        self.decided_seq = max(self.decided_seq, request.seq)
        self.undecided.add(request.id)

    def decide(self, request: UpdateRequest, outcome: UpdateOutcome) -> None:
        self.undecided.discard(request.id)
        self.decided_seq = max(self.decided_seq, request.seq)
        self.recent[request.id] = outcome.to_row()
        while len(self.recent) > MAX_RECENT_OUTCOMES:
            del self.recent[next(iter(self.recent))]

    def checkpoint(self) -> dict[str, Any]:
        """The JSON attributes for a checkpoint; reading them changes nothing."""
        return {
            "job_id": self.job_id,
            "decided_seq": self.decided_seq,
            "undecided": sorted(self.undecided),
            "in_force": dict(self.in_force),
            "recent_outcomes": dict(self.recent),
        }

    @classmethod
    def from_checkpoint(cls, attributes: dict[str, Any]) -> DecisionRecord:
        return cls(
            job_id=attributes.get("job_id"),
            decided_seq=int(attributes.get("decided_seq", -1)),
            undecided=set(attributes.get("undecided", [])),
            in_force=dict(attributes.get("in_force", {})),
            recent=dict(attributes.get("recent_outcomes", {})),
        )
