"""``liveparams set | watch``: what a person (or a script) does to a running job."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import sys
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from liveparams.cli_options import add_client_options, client_config
from liveparams.contract import OutcomeStatus
from liveparams.jobs import (
    ClientConfig,
    JobError,
    JobView,
    RequestView,
    check_job_id,
    connect,
    fetch_job,
    fetch_last_metrics,
    fetch_requests,
    follow_job,
    request_update,
    summarize,
    trainer_state,
    watch_job,
)
from liveparams.param_names import LinesHelpFormatter, parameters_help, unknown_parameter_hint
from liveparams.view import job_title, live, newest_that_fit, outcome_text, params_text, requests_table
from liveparams.watch_lines import watch_lines

TERMINAL = {status.value for status in OutcomeStatus}


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """``["learning_rate=5e-5", "command=stop"]`` → ``{"learning_rate": 5e-05, "command": "stop"}``.

    Values are read as JSON when they parse (numbers, true/false), else kept as
    strings, so ``command=stop`` needs no quoting. Validation is the server's job,
    except for what JSON cannot carry (NaN, infinities, numbers beyond a double).
    """
    params: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise JobError(f"expected NAME=VALUE, got {item!r}")
        if name in params:
            raise JobError(f"{name!r} given twice")
        if (hint := unknown_parameter_hint(name)) is not None:
            raise JobError(hint)
        try:
            value = json.loads(raw)
        except (json.JSONDecodeError, RecursionError):
            value = raw
        except ValueError:  # an integer longer than Python converts (4,300 digits)
            raise JobError(f"{name}: a number of {len(raw)} digits cannot be sent (no parameter allows it)") from None
        if _not_json(value):
            raise JobError(f"{name}={raw}: not a finite number (NaN and infinities cannot be sent)")
        params[name] = value
    return params


def _not_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return True
    return False


def positive_seconds(text: str) -> float:
    """``--wait``: a finite number of seconds above zero (argparse's refusal otherwise)."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return seconds


def add_job_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``set`` and ``watch`` on the CLI's subparsers."""
    set_parser = subparsers.add_parser(
        "set",
        help="request a parameter update on a running job",
        description="Request a parameter update through the request_parameter_update RPC. The trainer "
        "attached to the job applies it at its next step boundary; with no trainer attached it waits for the "
        "next attach; once the job's run has ended it is refused (docs/contracts.md).",
        epilog=f"{parameters_help()}\n\nexample: liveparams set 3f0c…  learning_rate=5e-5 weight_decay=0.01",
        formatter_class=LinesHelpFormatter,
    )
    set_parser.add_argument("job_id", help="the job's uuid")
    set_parser.add_argument("assignments", nargs="+", metavar="NAME=VALUE", help="parameters to change")
    set_parser.add_argument(
        "--wait", type=positive_seconds, metavar="SECONDS", help="wait up to SECONDS for the outcome"
    )
    add_client_options(set_parser)
    set_parser.set_defaults(run=_run_set)

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


def _run_set(args: argparse.Namespace) -> int:
    job_id = check_job_id(args.job_id)
    params = parse_assignments(args.assignments)
    return asyncio.run(_set(client_config(args), job_id, params, args.wait, args.json))


async def _set(config: ClientConfig, job_id: str, params: dict[str, Any], wait: float | None, as_json: bool) -> int:
    async with connect(config) as client:
        stored = await request_update(client, job_id, params)
        trainer = trainer_state(await fetch_job(client, job_id))
        if not trainer.attached:
            print(f"liveparams: warning: {trainer.detail}; the request waits for the next attach", file=sys.stderr)
        if wait is None:
            shown = f"requested #{stored['seq']} ({stored['id']}): {params_text(params)}"
            print(json.dumps(stored) if as_json else shown)
            return 0
        outcome = await _wait_for_outcome(client, job_id, str(stored["id"]), wait)
    if as_json:
        print(outcome.to_json() if outcome else json.dumps({"id": stored["id"], "status": "pending"}))
    elif outcome is None:
        print(f"requested {stored['id']}: still pending after {wait:g} s")
    else:
        print(outcome_text(outcome))
    return 0 if outcome is not None and outcome.status == "applied" else 3


async def _wait_for_outcome(client: Any, job_id: str, request_id: str, timeout: float) -> RequestView | None:
    found: list[RequestView] = []
    stop = asyncio.Event()

    def on_view(job: JobView) -> None:
        for view in summarize(job):
            if view.id == request_id and view.status in TERMINAL:
                found.append(view)
                stop.set()

    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(watch_job(client, job_id, on_view, stop), timeout)
    return found[0] if found else None


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
            job = await fetch_job(client, job_id)
            view = JobView(job)
            for row in await fetch_requests(client, job_id):
                view.take(row)
            view.take_metrics([await fetch_last_metrics(client, job_id)])
        if as_json:
            for request in summarize(view):
                print(request.to_json(), flush=True)
        else:
            Console().print(requests_table(summarize(view), title=job_title(job_id, job, metrics=view.metrics)))
        return 0
    if as_json:
        return await _watch_json(config, job_id)
    return await (_watch_table(config, job_id) if Console().is_terminal else watch_lines(config, job_id))


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
