"""The requests table people look at: ``liveparams watch`` and the demo's live view."""

from __future__ import annotations

import json

from rich.table import Table
from rich.text import Text

from liveparams.jobs import RequestView

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
