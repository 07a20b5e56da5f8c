"""``liveparams request cancel JOB SEQ`` and ``liveparams job end JOB``: the owner's say over a job's run.

Both are owner-only RPCs (``cancel_parameter_update``, ``end_training_run``; a service key may
too); anyone else is told the job was not found, as for every other RPC.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from liveparams.cli_options import add_client_options, client_config
from liveparams.jobs import ClientConfig, check_job_id, connect
from liveparams.runs import cancel_request, end_run

__all__ = ["add_end_command", "add_request_group"]


def add_request_group(subparsers: argparse._SubParsersAction) -> None:
    """Register ``request cancel`` on the CLI's subparsers."""
    group = subparsers.add_parser("request", help="act on one request of a job")
    actions = group.add_subparsers(dest="request_command", required=True, metavar="ACTION")
    cancel = actions.add_parser(
        "cancel",
        help="cancel a pending request (by its # in `watch`)",
        description="Cancel a request the trainer has not decided yet; its row says 'cancelled by its owner'. "
        "If the trainer had already taken it, the trainer's outcome replaces the cancellation (the row always "
        "says what the run did).",
    )
    cancel.add_argument("job_id", help="the job's uuid")
    cancel.add_argument("seq", type=_request_number, help="the request's number on the job (the # column of watch)")
    add_client_options(cancel)
    cancel.set_defaults(run=_run_cancel)


def add_end_command(actions: argparse._SubParsersAction) -> None:
    """Register ``job end`` on the ``job`` group's actions."""
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


def _request_number(text: str) -> int:
    digits = text.strip().lstrip("#")
    if not digits.isascii() or not digits.isdigit() or int(digits) < 1:
        raise argparse.ArgumentTypeError(f"expected a request number such as 3 (the # column of watch), got {text!r}")
    return int(digits)


def _run_cancel(args: argparse.Namespace) -> int:
    job_id = check_job_id(args.job_id)
    row = asyncio.run(_call(client_config(args), cancel_request, job_id, args.seq))
    print(json.dumps(row) if args.json else f"cancelled #{args.seq} ({row.get('id')}) of job {job_id}")
    return 0


def _run_end(args: argparse.Namespace) -> int:
    job_id = check_job_id(args.job_id)
    ended = asyncio.run(_call(client_config(args), end_run, job_id))
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


async def _call(config: ClientConfig, action: Any, *args: Any) -> dict[str, Any]:
    async with connect(config) as client:
        result: dict[str, Any] = await action(client, *args)
        return result
