"""The requests table people look at: ``liveparams watch`` and the demo's live view."""

from __future__ import annotations

import json
from typing import Any

from rich.table import Table
from rich.text import Text

from liveparams.jobs import RequestView, trainer_state

STATUS_STYLE = {
    "pending": "yellow",
    "applied": "green",
    "rejected": "red",
    "failed": "red",
    "superseded": "dim",
}


def requests_table(views: list[RequestView], title: str = "parameter update requests") -> Table:
    """One line per request, oldest first, coloured by status."""
    table = Table(title=title, expand=False)
    table.add_column("id", style="dim", no_wrap=True)
    table.add_column("requested at", no_wrap=True)
    table.add_column("request")
    table.add_column("status", no_wrap=True)
    table.add_column("step", justify="right")
    table.add_column("detail")
    for view in views:
        table.add_row(
            view.id[:8],
            (view.requested_at or "")[11:23],
            json.dumps(view.params, separators=(", ", ": ")),
            Text(view.status, style=STATUS_STYLE.get(view.status, "")),
            "" if view.step is None else str(view.step),
            view.detail,
        )
    return table


def job_title(job_id: str, job: dict[str, Any]) -> str:
    """The line above the table: the platform's status, the trainer's attachment, the values in force."""
    trainer = trainer_state(job)
    in_force = job.get("parameters_in_force") or {}
    values = ", ".join(f"{name}={value}" for name, value in in_force.items())
    step = job.get("parameters_applied_step")
    applied = f" — in force{f' since step {step}' if step is not None else ''}: {values}" if values else ""
    return f"job {job_id} — {job.get('status')} — {trainer.detail}{applied}"
