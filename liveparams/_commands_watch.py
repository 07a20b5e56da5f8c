"""``liveparams watch JOB``: a job's requests and their outcomes, followed live.

Four ways to show the same (``liveparams._live.follow_job`` feeds each): ``--once`` prints the
table and exits; ``--json`` writes a JSON line per request whenever its status changes; on a
terminal, a live table of the newest requests that fit; off a terminal, the table, then a line
per change.

Why the last: rich's live display redraws in place and, off a terminal, prints only when it stops,
so ``liveparams watch JOB | cat`` showed nothing while it ran. There the table is printed once
as plain text, and from then on every change is one line, flushed at once: a request that
appears or changes status, the job's line (attachment, run, values in force) when it changes,
and the connection's state.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from liveparams._api import connect, fetch_view
from liveparams._client_config import ClientConfig, check_job_id
from liveparams._live import follow_job
from liveparams._options import add_client_options, client_config
from liveparams._render import job_title, live, newest_that_fit, request_line, requests_table
from liveparams._views import JobView, summarize

__all__ = ["add_watch_command"]


def add_watch_command(subparsers: argparse._SubParsersAction) -> None:
    """Register ``watch`` on the CLI's subparsers."""
    watch_parser = subparsers.add_parser(
        "watch",
        help="a live table of a job's requests and their outcomes",
        description="Show the job's requests and outcomes, updated over Supabase Realtime; the newest rows "
        "when they do not all fit. The status line says 'live' once changes are followed, and a lost "
        "connection shows as 'disconnected, retrying' until it is back.",
    )
    watch_parser.add_argument("job_id", help="the job's uuid")
    watch_parser.add_argument("--once", action="store_true", help="print the current table and exit")
    add_client_options(watch_parser)
    watch_parser.set_defaults(run=_run_watch)


def _run_watch(args: argparse.Namespace) -> int:
    job_id = check_job_id(args.job_id)
    config = client_config(args)
    try:
        return asyncio.run(_watch(config, job_id, args.once, args.json))
    except KeyboardInterrupt:
        return 0


async def _watch(config: ClientConfig, job_id: str, once: bool, as_json: bool) -> int:
    if once:
        async with connect(config) as client:  # fails with one line before anything is drawn
            view = await fetch_view(client, job_id, metrics=True)
        if as_json:
            for request in summarize(view):
                print(request.to_json(), flush=True)
        else:
            Console().print(requests_table(summarize(view), title=job_title(job_id, view.job, metrics=view.metrics)))
        return 0
    if as_json:
        return await _watch_json(config, job_id)
    return await (_watch_table(config, job_id) if Console().is_terminal else _watch_lines(config, job_id))


async def _watch_json(config: ClientConfig, job_id: str) -> int:
    """A JSON line per request whenever its status changes; ``live`` and connection changes go to stderr."""
    seen: dict[str, str] = {}

    def on_view(job: JobView) -> None:
        for view in summarize(job):
            if seen.get(view.id) != view.status:
                seen[view.id] = view.status
                print(view.to_json(), flush=True)

    outage = [False]

    def on_connection(lost: str | None) -> None:
        if lost is None:
            print("liveparams: connected again" if outage[0] else "liveparams: live", file=sys.stderr, flush=True)
        elif not outage[0]:
            print(f"liveparams: disconnected, retrying ({lost})", file=sys.stderr, flush=True)
        outage[0] = lost is not None

    await follow_job(config, job_id, on_view, on_connection, asyncio.Event())
    return 0


async def _watch_table(config: ClientConfig, job_id: str) -> int:
    """The live table: the newest requests that fit, under the job's line and the connection's state."""
    console = Console()
    state: dict[str, Any] = {"job": None, "lost": None, "live": False}

    def render() -> Group:
        job = state["job"]
        if state["lost"] is not None:
            status = Text(f"disconnected, retrying ({state['lost']})", style="bold red")
        elif state["live"]:
            status = Text("live", style="green")
        else:  # drawn from a first read; changes are not followed until the subscription is confirmed
            status = Text("connecting", style="yellow")
        if job is None:
            return Group(status)
        title = job_title(job_id, job.job, job.present, metrics=job.metrics)
        table = newest_that_fit(summarize(job), title, console, reserved=2)
        return Group(table, status)

    # The first connection is made before the display starts, so a bad id or URL is one line.
    first = asyncio.Event()
    stop = asyncio.Event()

    def on_view(job: JobView) -> None:
        state["job"] = job
        first.set()
        if display is not None:
            display.update(render(), refresh=True)

    def on_connection(lost: str | None) -> None:
        state["lost"], state["live"] = lost, lost is None
        if display is not None:
            display.update(render(), refresh=True)

    display: Live | None = None
    follower = asyncio.ensure_future(follow_job(config, job_id, on_view, on_connection, stop))
    waiter = asyncio.ensure_future(first.wait())
    await asyncio.wait({follower, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if follower.done():
        follower.result()  # raises the first connection's error
        return 0
    try:
        with live(render(), console, auto_refresh=False) as display:
            await follower
    finally:
        follower.cancel()
    return 0


def _say(line: str) -> None:
    print(line, flush=True)


async def _watch_lines(config: ClientConfig, job_id: str) -> int:
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
