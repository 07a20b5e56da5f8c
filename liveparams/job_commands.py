"""``liveparams set | watch``: what a person (or a script) does to a running job."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from typing import Any

from rich.console import Console
from rich.live import Live

from liveparams.jobs import (
    ClientConfig,
    JobError,
    JobView,
    RequestView,
    connect,
    fetch_job,
    request_update,
    summarize,
    trainer_state,
    watch_job,
)
from liveparams.view import job_title, requests_table

TERMINAL = {"applied", "rejected", "failed", "superseded"}


def _client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="project URL (default: $SUPABASE_URL or $NEXT_PUBLIC_SUPABASE_URL)")
    parser.add_argument(
        "--key", help="API key (default: $SUPABASE_SERVICE_ROLE_KEY, else $SUPABASE_ANON_KEY, else $SUPABASE_KEY)"
    )
    parser.add_argument(
        "--user-token",
        help="a signed-in user's access token, to act as the job's owner (default: $LIVEPARAMS_USER_TOKEN)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """``["learning_rate=5e-5", "command=stop"]`` → ``{"learning_rate": 5e-05, "command": "stop"}``.

    Values are read as JSON when they parse (numbers, true/false), else kept as
    strings, so ``command=stop`` needs no quoting. Validation is the server's job.
    """
    params: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise JobError(f"expected NAME=VALUE, got {item!r}")
        if name in params:
            raise JobError(f"{name!r} given twice")
        try:
            params[name] = json.loads(raw)
        except json.JSONDecodeError:
            params[name] = raw
    return params


def add_job_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``set`` and ``watch`` on the CLI's subparsers."""
    set_parser = subparsers.add_parser(
        "set",
        help="request a parameter update on a running job",
        description="Request a parameter update through the request_parameter_update RPC.",
        epilog="example: liveparams set 3f0c…  learning_rate=5e-5 weight_decay=0.01",
    )
    set_parser.add_argument("job_id", help="the job's uuid")
    set_parser.add_argument("assignments", nargs="+", metavar="NAME=VALUE", help="parameters to change")
    set_parser.add_argument("--wait", type=float, metavar="SECONDS", help="wait up to SECONDS for the outcome")
    _client_options(set_parser)
    set_parser.set_defaults(run=_run_set)

    watch_parser = subparsers.add_parser(
        "watch",
        help="a live table of a job's requests and their outcomes",
        description="Show the job's requests and outcomes, updated over Supabase Realtime.",
    )
    watch_parser.add_argument("job_id", help="the job's uuid")
    watch_parser.add_argument("--once", action="store_true", help="print the current table and exit")
    _client_options(watch_parser)
    watch_parser.set_defaults(run=_run_watch)


def _config(args: argparse.Namespace) -> ClientConfig:
    return ClientConfig.from_env(args.url, args.key, args.user_token)


def _run_set(args: argparse.Namespace) -> int:
    params = parse_assignments(args.assignments)
    return asyncio.run(_set(_config(args), args.job_id, params, args.wait, args.json))


async def _set(config: ClientConfig, job_id: str, params: dict[str, Any], wait: float | None, as_json: bool) -> int:
    async with connect(config) as client:
        stored = await request_update(client, job_id, params)
        trainer = trainer_state(await fetch_job(client, job_id))
        if not trainer.attached:
            print(
                f"liveparams: warning: {trainer.detail}; the request waits and is applied when a trainer attaches",
                file=sys.stderr,
            )
        if wait is None:
            print(json.dumps(stored) if as_json else f"requested {stored['id']}: {json.dumps(params)}")
            return 0
        outcome = await _wait_for_outcome(client, job_id, str(stored["id"]), wait)
    if as_json:
        print(outcome.to_json() if outcome else json.dumps({"id": stored["id"], "status": "pending"}))
    elif outcome is None:
        print(f"requested {stored['id']}: still pending after {wait:g} s")
    else:
        where = f" at step {outcome.step}" if outcome.step is not None else ""
        print(f"{outcome.status}{where}: {outcome.detail}".rstrip(": "))
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
    try:
        return asyncio.run(_watch(_config(args), args.job_id, args.once, args.json))
    except KeyboardInterrupt:
        return 0


async def _watch(config: ClientConfig, job_id: str, once: bool, as_json: bool) -> int:
    console = Console()
    stop = asyncio.Event()
    seen: dict[str, str] = {}

    async with connect(config) as client:
        if as_json:

            def on_view(job: JobView) -> None:
                for view in summarize(job):
                    if seen.get(view.id) != view.status:
                        seen[view.id] = view.status
                        print(view.to_json(), flush=True)
                if once:
                    stop.set()

            await watch_job(client, job_id, on_view, stop)
            return 0

        with Live(requests_table([]), console=console, auto_refresh=False) as live:

            def show(job: JobView) -> None:
                live.update(requests_table(summarize(job), title=job_title(job_id, job.job)), refresh=True)
                if once:
                    stop.set()

            await watch_job(client, job_id, show, stop)
    return 0


def run_job_command(args: argparse.Namespace) -> int:
    """Run a parsed ``set``/``watch`` command; user errors become one line on stderr."""
    try:
        return int(args.run(args))
    except JobError as exc:
        print(f"liveparams: error: {exc}", file=sys.stderr)
        return 1
