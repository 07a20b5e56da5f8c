"""``liveparams request cancel JOB SEQ``: the owner takes back a request the trainer has not decided yet.

An owner-only RPC (``cancel_parameter_update``; a service key may too); anyone else is told the job
was not found, as for every other RPC.
"""

from __future__ import annotations

import argparse
import json

from liveparams._api import call_once, cancel_request
from liveparams._client_config import check_job_id
from liveparams._options import add_client_options, client_config

__all__ = ["add_request_group"]


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


def _request_number(text: str) -> int:
    digits = text.strip().lstrip("#")
    if not digits.isascii() or not digits.isdigit() or int(digits) < 1:
        raise argparse.ArgumentTypeError(f"expected a request number such as 3 (the # column of watch), got {text!r}")
    return int(digits)


def _run_cancel(args: argparse.Namespace) -> int:
    job_id = check_job_id(args.job_id)
    row = call_once(client_config(args), cancel_request, job_id, args.seq)
    print(json.dumps(row) if args.json else f"cancelled #{args.seq} ({row.get('id')}) of job {job_id}")
    return 0
