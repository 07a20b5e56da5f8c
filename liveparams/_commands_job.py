"""``liveparams job create | list | show | wait | end``: the job rows themselves, and the end of a job's run.

``create`` is what a platform does when it queues a training: it inserts the row
the trainer will attach to, owned by a person. As that person (their token) the
database makes them the owner; ``--owner EMAIL`` instead takes the service key
and looks the person up through the Auth admin API. A job is never created without
an owner: nobody could then request updates on it. ``end`` is the owner's (``end_training_run``):
it ends the run of a trainer that will not come back. ``wait`` is for scripts that start a
training and then steer it: it returns once a trainer is attached, or fails after its timeout
(a training that crashed at start never attaches; an open-ended ``until`` loop would spin forever).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from rich.console import Console

from liveparams._api import JOB_STATUSES, call_once, connect, create_job, end_run, fetch_view, list_jobs
from liveparams._client_config import ClientConfig, check_job_id
from liveparams._exceptions import CommandError
from liveparams._live import attachment_now, trainer_present
from liveparams._options import add_client_options, client_config
from liveparams._render import in_force_text, jobs_table, requests_table
from liveparams._views import Attachment, JobView, restart_text, summarize, trainer_attachment
from liveparams.users import find_user_id

__all__ = ["add_job_group"]

MAX_NAME_CHARS = 200
SHOWN_OUTCOMES = 5  # requests `job show` lists: the latest
WAIT_POLL_S = 1.0  # `job wait` reads the row this often: a person's command, not the trainer's path


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
    wait = actions.add_parser(
        "wait",
        help="wait until a trainer is attached to the job (exit 1 after --timeout)",
        description="Return as soon as a trainer is attached to the job (its row says so and it is on the job's "
        "channel), e.g. after starting a training in the background and before `liveparams set`. Exits 1 with the "
        "reason (no trainer yet, the last run's end) when none has attached within --timeout seconds.",
    )
    wait.add_argument("job_id", help="the job's uuid")
    wait.add_argument("--timeout", type=_positive_int, default=120, help="seconds to wait at most (default: 120)")
    add_client_options(wait)
    wait.set_defaults(run=_run_wait)
    end = actions.add_parser(
        "end",
        help="end the job's run: pending requests get their final outcome",
        description="End the job's run when its trainer will not come back (killed, crashed, gone): every "
        "pending request gets the outcome 'not applied: the run ended at step N' and new requests are refused "
        "until a trainer attaches again, which opens the job's next run. Refused while a trainer is attached: "
        "`liveparams set JOB command=stop` ends that run.",
    )
    end.add_argument("job_id", help="the job's uuid")
    add_client_options(end)
    end.set_defaults(run=_run_end)


def _positive_int(text: str) -> int:
    if not text.strip().isascii() or not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number above 0, got {text!r}")
    return int(text)


def _run_create(args: argparse.Namespace) -> int:
    name = args.name.strip()
    if not name or len(name) > MAX_NAME_CHARS or not name.isprintable():
        raise CommandError(f"--name must be 1 to {MAX_NAME_CHARS} printable characters")
    if args.status not in JOB_STATUSES:
        raise CommandError(f"--status must be one of {', '.join(JOB_STATUSES)}, got {args.status!r}")
    config = client_config(args)
    owner_id = None
    if args.owner is not None:
        if not config.is_service:
            raise CommandError(
                "--owner needs a service key (pass --key with it while signed in); a user creates jobs for themself"
            )
        owner_id = find_user_id(config.url, config.key, args.owner)
    elif config.access_token is None:
        raise CommandError(
            "who owns the job? sign in ($LIVEPARAMS_USER_TOKEN, from `liveparams user create`) "
            "or pass --owner EMAIL with a service key"
        )
    job = call_once(config, create_job, name, args.status, owner_id)
    if args.json:
        print(json.dumps(job))
    else:
        owner = args.owner or config.acting_as.removeprefix("as ")
        print(f"created job {job['id']} ({name!r}, {job['status']}), owned by {owner}", file=sys.stderr)
        print(job["id"])
    return 0


def _run_list(args: argparse.Namespace) -> int:
    config = client_config(args)
    jobs = call_once(config, list_jobs, args.limit)
    if args.json:
        print(json.dumps(jobs))
    elif not jobs:
        print(f"no jobs visible {config.acting_as}; create one with `liveparams job create --name NAME`")
    else:
        Console().print(jobs_table(jobs, title=f"jobs {config.acting_as}, newest first"))
    return 0


def _run_show(args: argparse.Namespace) -> int:
    job_id = check_job_id(args.job_id)
    config = client_config(args)
    view = asyncio.run(_show(config, job_id))
    requests = summarize(view)[-SHOWN_OUTCOMES:]
    job = view.job
    trainer = trainer_attachment(job, present=view.present)
    if args.json:
        print(json.dumps({"job": job, "trainer": trainer.detail, "requests": [r.__dict__ for r in requests]}))
        return 0
    console = Console()
    console.print(f"job {job_id} ({job.get('name') or 'no name'}), owner {job.get('user_id') or 'none'}")
    console.print(f"status: {job.get('status')} (the platform's column; requests are accepted while running)")
    console.print(f"trainer: {trainer.detail}")
    if restarted := restart_text(job):
        console.print(f"last restart: {restarted}")
    console.print(in_force_text(job) or "in force: the training's own settings (nothing changed yet)")
    if requests:
        console.print(requests_table(requests, title=f"last {len(requests)} requests"))
    else:
        console.print("no requests yet: `liveparams set JOB NAME=VALUE` makes one")
    return 0


async def _show(config: ClientConfig, job_id: str) -> JobView:
    async with connect(config) as client:
        view = await fetch_view(client, job_id, latest=SHOWN_OUTCOMES)
        if trainer_attachment(view.job).attached:  # the row says attached: is it on the job's topic right now?
            view.present = await trainer_present(client, job_id)
    return view


def _run_wait(args: argparse.Namespace) -> int:
    job_id = check_job_id(args.job_id)
    attachment = asyncio.run(_wait_attached(client_config(args), job_id, args.timeout))
    if not attachment.attached:
        raise CommandError(f"no trainer attached to job {job_id} within {args.timeout} s: {attachment.detail}")
    print(f"trainer: {attachment.detail}")
    return 0


async def _wait_attached(config: ClientConfig, job_id: str, timeout: float) -> Attachment:
    """The job's attachment once a trainer is attached, or the last one seen when ``timeout`` runs out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with connect(config) as client:
        while True:
            attachment = await attachment_now(client, job_id)
            if attachment.attached:
                return attachment
            if loop.time() >= deadline:
                return attachment
            await asyncio.sleep(min(WAIT_POLL_S, max(0.0, deadline - loop.time())))


def _run_end(args: argparse.Namespace) -> int:
    job_id = check_job_id(args.job_id)
    ended = call_once(client_config(args), end_run, job_id)
    if args.json:
        print(json.dumps(ended))
    else:
        step = ended.get("step")
        where = f" at step {step}" if step is not None else ""
        count = ended.get("cancelled", 0)
        print(
            f"the run of job {job_id} ended{where}; {count} pending request{'s' if count != 1 else ''} "
            "not applied. The next run starts when a trainer attaches."
        )
    return 0
