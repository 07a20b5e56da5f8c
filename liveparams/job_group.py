"""``liveparams job create | list | show``: the job rows themselves.

``create`` is what a platform does when it queues a training: it inserts the row
the trainer will attach to, owned by a person. As that person (their token) the
database makes them the owner; ``--owner EMAIL`` instead takes the service key
and looks the person up through the Auth admin API. A job is never created without
an owner: nobody could then request updates on it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from rich.console import Console

from liveparams.cli_options import add_client_options, client_config
from liveparams.jobs import (
    JOB_STATUSES,
    ClientConfig,
    JobError,
    JobView,
    check_job_id,
    connect,
    create_job,
    fetch_job,
    fetch_requests,
    list_jobs,
    summarize,
    trainer_state,
)
from liveparams.run_commands import add_end_command
from liveparams.runs import trainer_present
from liveparams.users import find_user_id
from liveparams.view import in_force_text, jobs_table, requests_table

MAX_NAME_CHARS = 200
SHOWN_OUTCOMES = 5  # requests `job show` lists: the latest


def add_job_group(subparsers: argparse._SubParsersAction) -> None:
    """Register ``job create|list|show`` on the CLI's subparsers."""
    group = subparsers.add_parser("job", help="create, list and show training jobs")
    actions = group.add_subparsers(dest="job_command", required=True, metavar="ACTION")

    create = actions.add_parser(
        "create",
        help="create a job row for a training to attach to; prints its id",
        description="Create a job owned by the signed-in user (`liveparams user login`, or $LIVEPARAMS_USER_TOKEN), "
        "or by --owner "
        "(which takes a service key). Prints the job's id on stdout, e.g. export JOB_ID=$(liveparams job create ...).",
    )
    create.add_argument("--name", required=True, help="a name people recognise the job by")
    create.add_argument("--owner", metavar="EMAIL", help="the owner's email (needs a service key)")
    create.add_argument(
        "--status",
        default="running",
        help=f"the platform's status column: {', '.join(JOB_STATUSES)} (default: running; "
        "updates are accepted only while running)",
    )
    add_client_options(create)
    create.set_defaults(run=_run_create)

    listing = actions.add_parser("list", help="the newest jobs you may see")
    listing.add_argument("--limit", type=_positive_int, default=20, help="how many (default: 20)")
    add_client_options(listing)
    listing.set_defaults(run=_run_list)

    show = actions.add_parser(
        "show",
        help="a job: status, trainer attached or how it detached, values in force, last outcomes",
    )
    show.add_argument("job_id", help="the job's uuid")
    add_client_options(show)
    show.set_defaults(run=_run_show)
    add_end_command(actions)


def _positive_int(text: str) -> int:
    if not text.strip().isascii() or not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number above 0, got {text!r}")
    return int(text)


def _run_create(args: argparse.Namespace) -> int:
    name = args.name.strip()
    if not name or len(name) > MAX_NAME_CHARS or not name.isprintable():
        raise JobError(f"--name must be 1 to {MAX_NAME_CHARS} printable characters")
    if args.status not in JOB_STATUSES:
        raise JobError(f"--status must be one of {', '.join(JOB_STATUSES)}, got {args.status!r}")
    config = client_config(args)
    owner_id = None
    if args.owner is not None:
        if not config.is_service:
            raise JobError(
                "--owner needs a service key (pass --key with it while signed in); a user creates jobs for themself"
            )
        owner_id = find_user_id(config.url, config.key, args.owner)
    elif config.access_token is None:
        raise JobError(
            "who owns the job? sign in ($LIVEPARAMS_USER_TOKEN, from `liveparams user create`) "
            "or pass --owner EMAIL with a service key"
        )
    job = asyncio.run(_create(config, name, args.status, owner_id))
    if args.json:
        print(json.dumps(job))
    else:
        owner = args.owner or config.acting_as.removeprefix("as ")
        print(f"created job {job['id']} ({name!r}, {job['status']}), owned by {owner}", file=sys.stderr)
        print(job["id"])
    return 0


async def _create(config: ClientConfig, name: str, status: str, owner_id: str | None) -> dict[str, Any]:
    async with connect(config) as client:
        return await create_job(client, name, status, owner_id)


def _run_list(args: argparse.Namespace) -> int:
    config = client_config(args)
    jobs = asyncio.run(_list(config, args.limit))
    if args.json:
        print(json.dumps(jobs))
    elif not jobs:
        print(f"no jobs visible {config.acting_as}; create one with `liveparams job create --name NAME`")
    else:
        Console().print(jobs_table(jobs, title=f"jobs {config.acting_as}, newest first"))
    return 0


async def _list(config: ClientConfig, limit: int) -> list[dict[str, Any]]:
    async with connect(config) as client:
        return await list_jobs(client, limit)


def _run_show(args: argparse.Namespace) -> int:
    job_id = check_job_id(args.job_id)
    config = client_config(args)
    view = asyncio.run(_show(config, job_id))
    requests = summarize(view)[-SHOWN_OUTCOMES:]
    job = view.job
    trainer = trainer_state(job, present=view.present)
    if args.json:
        print(json.dumps({"job": job, "trainer": trainer.detail, "requests": [r.__dict__ for r in requests]}))
        return 0
    console = Console()
    console.print(f"job {job_id} ({job.get('name') or 'no name'}), owner {job.get('user_id') or 'none'}")
    console.print(f"status: {job.get('status')} (the platform's column; requests are accepted while running)")
    console.print(f"trainer: {trainer.detail}")
    console.print(in_force_text(job) or "in force: the training's own settings (nothing changed yet)")
    if requests:
        console.print(requests_table(requests, title=f"last {len(requests)} requests"))
    else:
        console.print("no requests yet: `liveparams set JOB NAME=VALUE` makes one")
    return 0


async def _show(config: ClientConfig, job_id: str) -> JobView:
    async with connect(config) as client:
        view = JobView(await fetch_job(client, job_id))
        for row in await fetch_requests(client, job_id, latest=SHOWN_OUTCOMES):
            view.take(row)
        if trainer_state(view.job).attached:  # the row says attached: is it on the job's topic right now?
            view.present = await trainer_present(client, job_id)
    return view
