"""``liveparams watch`` when stdout is not a terminal (a pipe, a log file, CI): the table, then a line per change.

Why: rich's live display redraws in place and, off a terminal, prints only when it stops,
so ``liveparams watch JOB | cat`` showed nothing while it ran. Here the table is printed once
as plain text, and from then on every change is one line, flushed at once: a request that
appears or changes status, the job's line (attachment, run, values in force) when it changes,
and the connection's state.
"""

from __future__ import annotations

import asyncio
import sys

from rich.console import Console

from liveparams.jobs import ClientConfig, JobView, follow_job, summarize
from liveparams.view import job_title, request_line, requests_table

__all__ = ["watch_lines"]


def _say(line: str) -> None:
    print(line, flush=True)


async def watch_lines(config: ClientConfig, job_id: str) -> int:
    """Follow the job until interrupted, writing plain text to stdout."""
    console = Console(file=sys.stdout)
    seen: dict[str, str] = {}  # request id -> the status last written
    title: list[str] = []  # the job's line last written (empty before the table)

    def on_view(view: JobView) -> None:
        requests = summarize(view)
        line = job_title(job_id, view.job, view.present)
        if not title:
            console.print(requests_table(requests, title=line))
            sys.stdout.flush()
            seen.update((request.id, request.status) for request in requests)
            title.append(line)
            return
        if line != title[0]:
            title[0] = line
            _say(line)
        for request in requests:
            if seen.get(request.id) != request.status:
                seen[request.id] = request.status
                _say(request_line(request))

    outage = [False]

    def on_connection(lost: str | None) -> None:
        if lost is None:
            _say("connected again" if outage[0] else "live")
        elif not outage[0]:
            _say(f"disconnected, retrying ({lost})")
        outage[0] = lost is not None

    await follow_job(config, job_id, on_view, on_connection, asyncio.Event())
    return 0
