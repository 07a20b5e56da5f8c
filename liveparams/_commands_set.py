"""``liveparams set JOB NAME=VALUE...``: request a parameter update on a running job, in a straight line.

Its arguments are parsed and checked here (:func:`parse_assignments`), sent by one RPC
(``liveparams._api.request_update``), checked for a trainer to apply them as ``job show`` does
(``liveparams._live.attachment_now``), optionally followed until the outcome
(``liveparams._live.wait_for_outcome``), and the answer is printed here. Once the request is stored,
every later failure says so (its #seq and id): a person or a script that retried would queue it twice.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import uuid
from typing import Any

from liveparams._api import connect, request_update
from liveparams._client_config import ClientConfig, check_job_id
from liveparams._exceptions import CommandError
from liveparams._live import attachment_now, wait_for_outcome
from liveparams._options import add_client_options, client_config
from liveparams._param_names import LinesHelpFormatter, parameters_help, unknown_parameter_hint
from liveparams._render import outcome_text, params_text
from liveparams._views import RequestView
from liveparams.contract import PARAMETERS, ParamType

__all__ = ["add_set_command", "parse_assignments"]

# How long `set` waits for the job topic's Presence where the row says a trainer is attached: a join costs a
# round trip or two; a Realtime that does not answer in time leaves the row's judgement (the heartbeat).
PRESENCE_WAIT_S = 2.0


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """``["learning_rate=5e-5", "command=stop"]`` → ``{"learning_rate": 5e-05, "command": "stop"}``.

    Values are read as JSON when they parse (numbers, true/false), else kept as
    strings, so ``command=stop`` needs no quoting; a numeric parameter's value is also read
    as Python reads a number (``.5e-4``, ``1.``, ``1_000``, ``+1e-8``). Validation is the server's
    job, except for what JSON cannot carry (NaN, infinities, numbers beyond a double).
    """
    params: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise CommandError(f"expected NAME=VALUE, got {item!r}")
        if name in params:
            raise CommandError(f"{name!r} given twice")
        if (hint := unknown_parameter_hint(name)) is not None:
            raise CommandError(hint)
        try:
            value = json.loads(raw)
        except (json.JSONDecodeError, RecursionError):
            value = raw if PARAMETERS[name].type is ParamType.STRING else _number(raw)
        except ValueError:  # an integer longer than Python converts (4,300 digits)
            raise CommandError(
                f"{name}: a number of {len(raw)} digits cannot be sent (no parameter allows it)"
            ) from None
        if _not_json(value):
            raise CommandError(f"{name}={raw}: not a finite number (NaN and infinities cannot be sent)")
        params[name] = value
    return params


def _number(raw: str) -> int | float | str:
    """``raw`` as Python's ``int()`` or ``float()`` reads it, or as it is (the server then says what it must be)."""
    for parse in (int, float):
        try:
            return parse(raw)
        except ValueError:
            pass
    return raw


def _not_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return True
    return False


def _positive_seconds(text: str) -> float:
    """``--wait``: a finite number of seconds above zero (argparse's refusal otherwise)."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return seconds


def _request_id(text: str) -> str:
    """``--request-id``: a uuid, in canonical form (the RPC's ``p_request_id``)."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a uuid (`uuidgen` makes one), got {text!r}") from None


def add_set_command(subparsers: argparse._SubParsersAction) -> None:
    """Register ``set`` on the CLI's subparsers."""
    set_parser = subparsers.add_parser(
        "set",
        help="request a parameter update on a running job",
        description="Request a parameter update through the request_parameter_update RPC. The trainer "
        "attached to the job applies it at its next step boundary; with no trainer attached it waits for the "
        "next attach (a warning says so, judged as `job show` does); once the job's run has ended it is refused "
        "(docs/contracts.md). Numbers are read as JSON or as Python reads them (.5e-4, 1_000); NaN and "
        "infinities are refused. With --wait, stderr says the request is stored (#SEQ and id) before the wait: "
        "a wait that fails leaves it stored.",
        epilog=f"{parameters_help()}\n\nexample: liveparams set 3f0c…  learning_rate=5e-5 weight_decay=0.01",
        formatter_class=LinesHelpFormatter,
    )
    set_parser.add_argument("job_id", help="the job's uuid")
    set_parser.add_argument("assignments", nargs="+", metavar="NAME=VALUE", help="parameters to change")
    set_parser.add_argument(
        "--wait", type=_positive_seconds, metavar="SECONDS", help="wait up to SECONDS for the outcome"
    )
    set_parser.add_argument(
        "--request-id",
        type=_request_id,
        metavar="UUID",
        help="the request's id, chosen by the caller (e.g. `uuidgen`): a set retried with the same id stores "
        "nothing more and answers with the request stored the first time",
    )
    add_client_options(set_parser)
    set_parser.set_defaults(run=_run_set)


def _run_set(args: argparse.Namespace) -> int:
    job_id = check_job_id(args.job_id)
    params = parse_assignments(args.assignments)
    stored, outcome = asyncio.run(_set(client_config(args), job_id, params, args.wait, args.request_id))
    if args.wait is None:
        shown = f"requested #{stored['seq']} ({stored['id']}): {params_text(params)}"
        print(json.dumps(stored) if args.json else shown)
        return 0
    if args.json:
        print(outcome.to_json() if outcome else json.dumps({"id": stored["id"], "status": "pending"}))
    elif outcome is None:
        print(f"requested {stored['id']}: still pending after {args.wait:g} s")
    else:
        print(outcome_text(outcome))
    return 0 if outcome is not None and outcome.status == "applied" else 3


async def _set(
    config: ClientConfig, job_id: str, params: dict[str, Any], wait: float | None, request_id: str | None
) -> tuple[dict[str, Any], RequestView | None]:
    """The stored request, and with ``wait`` its outcome (``None``: still pending). Warns, while it
    waits, that no trainer is attached to apply it. A failure once it is stored says so."""
    async with connect(config) as client:
        stored = await request_update(client, job_id, params, request_id)
        stored_as = f"stored as #{stored['seq']} ({stored['id']})"
        if wait is not None:
            print(f"liveparams: {stored_as}; waiting up to {wait:g} s for its outcome", file=sys.stderr)
        try:
            trainer = await attachment_now(client, job_id, PRESENCE_WAIT_S)
            if not trainer.attached:
                print(f"liveparams: warning: {trainer.detail}; the request waits for the next attach", file=sys.stderr)
            outcome = None if wait is None else await wait_for_outcome(client, job_id, str(stored["id"]), wait)
        except CommandError as exc:
            raise CommandError(
                f"{stored_as}; could not follow its outcome: {exc}; see `liveparams watch {job_id}` "
                f"(a retry with --request-id {stored['id']} stores nothing more)"
            ) from None
        return stored, outcome
