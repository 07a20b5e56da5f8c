"""What a UI shows of a job, as plain data: the job and its requests (`JobView`), one request and where it
stands (`RequestView`), and whether a trainer is attached (`Attachment`).

Nothing here talks to the network or draws: ``liveparams._api`` and ``liveparams._live`` fill a
`JobView`, ``liveparams._render`` draws these.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from liveparams.agent import AgentConfig, decode_params
from liveparams.agent._subscription import PRESENCE_KEY
from liveparams.contract import METADATA_KEYS, format_value

__all__ = [
    "HEARTBEAT_STALE_S",
    "PRESENCE_GRACE_S",
    "WATCHED",
    "Attachment",
    "JobView",
    "RequestView",
    "restart_text",
    "summarize",
    "trainer_attachment",
    "trainer_in",
]

WATCHED = 200  # requests ``watch`` shows: the latest ones; the job's history can be far longer
# A trainer silent for two heartbeats and a little more is gone: a beat may land up to 30 s late (an API restart,
# a call that hangs until its 10 s timeout, then its retries) without the trainer reading as gone. The database's
# liveparams_trainer_stale_seconds() returns the same (tests/test_runs.py checks it).
HEARTBEAT_SLACK_S = 5.0
HEARTBEAT_STALE_S = 2 * AgentConfig.heartbeat_interval + HEARTBEAT_SLACK_S
# Presence lags the row by a moment at attach (the agent tracks once subscribed): absent for longer means gone.
PRESENCE_GRACE_S = 15.0


@dataclass
class JobView:
    """What a UI shows of a job: its row and its latest requests (by seq), kept current by ``_live.watch_job``."""

    job: dict[str, Any]
    requests: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> row, in seq order
    present: bool | None = None  # a trainer on the job's topic (Presence); None until its state arrived
    metrics: dict[str, Any] = field(default_factory=dict)  # the newest point the trainer logged: {"step", "metrics"}

    def take_metrics(self, points: list[dict[str, Any]]) -> None:
        """Keep the newest of ``points`` (a live Broadcast message's, or the newest stored one)."""
        for point in points:
            if isinstance(point, dict) and point.get("step", -1) >= self.metrics.get("step", -1):
                self.metrics = point

    def take(self, row: dict[str, Any]) -> None:
        """Add or update one request row, keeping seq order and the latest ``WATCHED`` rows."""
        self.requests[str(row.get("id"))] = row
        ordered = sorted(self.requests.values(), key=lambda r: r.get("seq") or 0)[-WATCHED:]
        self.requests = {str(r.get("id")): r for r in ordered}


@dataclass(frozen=True)
class Attachment:
    """Whether a trainer is attached to the job, from the row's ``trainer_*`` columns (docs/contracts.md)."""

    attached: bool
    detail: str
    label: str  # the same in a word or two, for a table cell


def trainer_in(presence_state: Mapping[str, Any]) -> bool:
    """Whether a Presence state of the job's topic (``channel.presence_state()``) holds the trainer."""
    return bool(presence_state.get(PRESENCE_KEY))


def trainer_attachment(job: dict[str, Any], now: datetime | None = None, present: bool | None = None) -> Attachment:
    """Attached = it said so, has not detached, its heartbeat is recent and, when known, it is on the
    job's topic (``present``, from Presence: a killed trainer leaves it at once); otherwise say why not.
    """
    ended = "; the run ended, so requests are refused until a trainer attaches" if job.get("run_ended_at") else ""
    if not job.get("trainer_attached_at"):
        return Attachment(False, f"no trainer has attached yet{ended}", "not yet")
    if job.get("trainer_detached_at"):
        step = job.get("trainer_detach_step")
        where = f" at step {step}" if step is not None else ""
        reason = job.get("trainer_detach_reason")
        return Attachment(False, f"the trainer detached: {reason}{where}{ended}", f"{reason}{where}")
    seen = _parse_time(job.get("trainer_seen_at"))
    now = now or datetime.now(timezone.utc)
    if seen is None or (now - seen).total_seconds() > HEARTBEAT_STALE_S:
        return Attachment(
            False, f"the trainer stopped responding (last heartbeat {job.get('trainer_seen_at')}); killed?", "silent"
        )
    attached_at = _parse_time(job.get("trainer_attached_at"))
    settled = attached_at is None or (now - attached_at).total_seconds() > PRESENCE_GRACE_S
    if present is False and settled:
        return Attachment(False, "the trainer left the job's channel (killed, or reconnecting)", "gone")
    if job.get("trainer_paused_at"):
        step = job.get("trainer_pause_step")
        return Attachment(
            True, f"a trainer is attached, paused at step {step} (command=resume goes on)", f"paused at step {step}"
        )
    step = job.get("trainer_step")  # None from a trainer or a database before it
    at = f", at step {step} at its last heartbeat" if step is not None else ""
    return Attachment(True, f"a trainer is attached{at}", "attached")


def restart_text(job: dict[str, Any]) -> str:
    """The job's last in-process restart or rewind and how long it took, from its ``trainer_restart_*`` columns.

    ``""`` when it never restarted. The seconds are the trainer's measure, from the request's
    apply (the save) to the first step after ``train()`` was entered again.
    """
    kind, step = job.get("trainer_restart_kind"), job.get("trainer_restart_step")
    if kind not in ("restart", "rewind") or step is None:
        return ""
    seconds = job.get("trainer_restart_seconds")
    took = f" in {seconds:.2f} s" if isinstance(seconds, (int, float)) else ""
    at = job.get("trainer_restarted_at")
    when = f" ({str(at)[:19].replace('T', ' ')} UTC)" if at else ""
    if kind == "rewind":
        return f"rewound from step {job.get('trainer_restart_from_step')} to step {step}{took}{when}"
    settings = job.get("trainer_restart_settings") or {}
    shown = ", ".join(f"{name}={format_value(value)}" for name, value in settings.items())
    return f"restarted in-process at step {step}{f' with {shown}' if shown else ''}{took}{when}"


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class RequestView:
    """One request and where it stands, as the ``watch`` table shows it."""

    id: str
    params: dict[str, Any]
    requested_at: str | None
    status: str
    step: int | None
    detail: str
    seq: int | None = None  # its number on the job (what `liveparams request cancel` takes)

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)


def _change_text(name: str, change: Any) -> str:
    if not isinstance(change, dict):
        return f"{name}: {change}"
    if name == "command":
        return f"{change.get('new')} done"
    return f"{name}: {format_value(change.get('old'))} → {format_value(change.get('new'))}"


def _detail(row: dict[str, Any]) -> str:
    changes = row.get("changes")
    if isinstance(changes, dict) and changes:  # written by a trainer credential: any JSON object
        return ", ".join(_change_text(name, change) for name, change in changes.items())
    if row.get("superseded_by"):
        return f"superseded by {str(row['superseded_by'])[:8]}"
    return str(row.get("reason") or "")


def summarize(view: JobView) -> list[RequestView]:
    """Each watched request with where it stands (``pending`` until it has an outcome), oldest first."""
    views = []
    for row in view.requests.values():
        params = decode_params(row.get("params"))  # the agent's own reading, so both agree
        shown = {k: v for k, v in params.items() if k not in METADATA_KEYS} if isinstance(params, dict) else None
        views.append(
            RequestView(
                id=str(row.get("id")),
                params=shown if shown is not None else {"(malformed)": params},
                requested_at=row.get("requested_at"),
                status=str(row.get("status") or "pending"),
                step=row.get("step"),
                detail=_detail(row),
                seq=row.get("seq"),
            )
        )
    return views
