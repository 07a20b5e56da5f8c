"""What people look at: the requests table (``liveparams watch``, ``job show``, the demo), the job list."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from liveparams._views import RequestView, restart_text, trainer_attachment

__all__ = [
    "in_force_text",
    "job_title",
    "jobs_table",
    "live",
    "metrics_text",
    "newest_that_fit",
    "outcome_text",
    "params_text",
    "request_line",
    "requests_table",
]
from liveparams.contract import format_value

STATUS_STYLE = {
    "pending": "yellow",
    "applied": "green",
    "rejected": "red",
    "failed": "red",
    "superseded": "dim",
    "cancelled": "dim",
}


def params_text(params: dict[str, Any]) -> str:
    """``learning_rate=5.00e-05, command=stop``: a request's parameters in the one number format."""
    return ", ".join(f"{name}={format_value(value)}" for name, value in params.items())


def requests_table(views: list[RequestView], title: str = "parameter update requests", older: int = 0) -> Table:
    """One line per request, oldest first, coloured by status; ``older`` requests above it are counted, not shown."""
    caption = f"{older} older request{'s' if older != 1 else ''} not shown" if older else None
    table = Table(title=title, caption=caption, expand=False)
    table.add_column("#", justify="right", no_wrap=True)  # the seq `liveparams request cancel` takes
    table.add_column("id", style="dim", no_wrap=True)
    table.add_column("requested at", no_wrap=True)
    table.add_column("request")
    table.add_column("status", no_wrap=True)
    table.add_column("step", justify="right")
    table.add_column("detail")
    for view in views:
        table.add_row(
            "" if view.seq is None else str(view.seq),
            view.id[:8],
            (view.requested_at or "")[11:23],
            params_text(view.params),
            Text(view.status, style=STATUS_STYLE.get(view.status, "")),
            "" if view.step is None else str(view.step),
            view.detail,
        )
    return table


def outcome_text(view: RequestView) -> str:
    """``applied at step 12: learning_rate: 1.00e-04 → 5.00e-05``: where one request stands, in a line."""
    where = f" at step {view.step}" if view.step is not None else ""
    return f"{view.status}{where}: {view.detail}".rstrip(": ")


def request_line(view: RequestView) -> str:
    """``#3 3f0c5a4e learning_rate=5.00e-05: applied at step 12: …``: one request in a line of plain text."""
    number = "" if view.seq is None else f"#{view.seq} "
    return f"{number}{view.id[:8]} {params_text(view.params)}: {outcome_text(view)}"


def newest_that_fit(views: list[RequestView], title: str, console: Console, reserved: int = 0) -> Table:
    """The requests table cut to the newest rows that fit the terminal's height (less ``reserved`` lines).

    Why: a live display taller than the terminal is cut at the bottom, which is where the
    newest requests are. Rows can wrap, so the table is measured rather than counted.
    """
    shown = views[-max(console.height, 1) :]
    while True:
        table = requests_table(shown, title, older=len(views) - len(shown))
        height = len(console.render_lines(table, console.options, pad=False))
        if height + reserved <= console.height or not shown:
            return table
        shown = shown[1:]


def job_title(
    job_id: str, job: dict[str, Any], present: bool | None = None, metrics: dict[str, Any] | None = None
) -> str:
    """The line above the table: status, the trainer's attachment and last restart, the last loss and rate, the
    values in force.

    ``present``: whether the trainer is on the job's topic now (Presence), when known. ``metrics``: the
    newest point the trainer logged (``{"step", "metrics"}``), when there is one.
    """
    trainer = trainer_attachment(job, present=present)
    parts = [f"job {job_id}", str(job.get("status")), trainer.detail, restart_text(job)]
    parts += [metrics_text(metrics or {}), in_force_text(job)]
    return " — ".join(part for part in parts if part)


def metrics_text(point: dict[str, Any]) -> str:
    """``step 120: loss=2.31, learning_rate=5.00e-05`` from the newest metrics point, or ``""`` before any."""
    shown = {name: value for name, value in (point.get("metrics") or {}).items() if name in ("loss", "learning_rate")}
    return f"step {point.get('step')}: {params_text(shown)}" if shown else ""


def in_force_text(job: dict[str, Any]) -> str:
    """``in force since step 120: learning_rate=5.00e-05``, or ``""`` before any change was applied."""
    values = params_text(job.get("parameters_in_force") or {})
    step = job.get("parameters_applied_step")
    return f"in force{f' since step {step}' if step is not None else ''}: {values}" if values else ""


def jobs_table(jobs: list[dict[str, Any]], title: str) -> Table:
    """``liveparams job list``: one line per job, newest first."""
    table = Table(title=title, expand=False)
    for column in ("id", "name", "status", "trainer", "values in force"):
        table.add_column(column, no_wrap=column in ("id", "status"))
    for job in jobs:
        table.add_row(
            str(job.get("id")),
            str(job.get("name") or ""),
            str(job.get("status")),
            trainer_attachment(job).label,
            params_text(job.get("parameters_in_force") or {}),
        )
    return table


@contextmanager
def live(renderable: RenderableType, console: Console, **options: Any) -> Iterator[Live]:
    """A rich ``Live`` display that ends with a newline also when the output is not a terminal.

    Why: rich adds the final newline on terminals only, so a captured or piped display
    ended mid-line and the next line was glued to the table's bottom border.
    """
    with Live(renderable, console=console, **options) as display:
        yield display
    if not console.is_terminal:
        console.line()
