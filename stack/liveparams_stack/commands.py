"""``liveparams stack up | down | reset | status``: the local stack from the command line.

``up`` returns once the stack answers and leaves it running in the background
(PostgreSQL and the front are detached processes); it also repairs a stack of
which a part has died. ``down`` stops it from any shell and keeps its data, as
``supabase stop`` does; ``reset`` deletes the data, after asking. Every folder
finds the same stack: ``location.py`` says where it lives.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from liveparams._confirm import add_yes_option, confirmed
from liveparams_stack.location import RULE, default_state_dir

if TYPE_CHECKING:  # imported when a command runs: the CLI starts fast
    from liveparams_stack.local import LocalStack

PORT_VARS = {"api_port": "LIVEPARAMS_STACK_API_PORT", "db_port": "LIVEPARAMS_STACK_DB_PORT"}
_NOTICE = (
    "For development and tests only: well-known keys. `liveparams stack down` stops it and keeps the data; "
    "`liveparams stack reset` deletes it."
)
# The one line that puts the variables into a shell, exported (plain `eval` would not export them to commands).
LOAD_LINE = 'set -a; eval "$(liveparams stack status -o env)"; set +a'
_LOAD_HINT = f"Load these variables into your shell with: {LOAD_LINE}"
_DATA = "every user, job, trainer credential and request history"


def add_stack_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``stack up|down|reset|status`` on the CLI's subparsers."""
    stack = subparsers.add_parser("stack", help="run a local Supabase-compatible stack (development and tests only)")
    actions = stack.add_subparsers(dest="stack_command", required=True, metavar="ACTION")

    up = actions.add_parser(
        "up", help="start the stack (or what of it is not running) in the background and print its variables"
    )
    _state_dir_option(up)
    up.add_argument("--api-port", type=int, help="default: $LIVEPARAMS_STACK_API_PORT or 54321, as supabase start")
    up.add_argument("--db-port", type=int, help="default: $LIVEPARAMS_STACK_DB_PORT or 54322, as supabase start")
    # Tests' fault injection routes; like the options below, kept as the stack has them when not given.
    up.add_argument("--enable-faults", action=argparse.BooleanOptionalAction, help=argparse.SUPPRESS)
    up.add_argument(
        "--realtime-poll-ms",
        type=int,
        metavar="MS",
        help="poll the WAL every MS ms and back off to 5×MS when idle, as hosted Realtime does (e.g. 100); 0: poll"
        " fast, for tests. Default: what the stack was started with (a new one polls fast). Another value than the"
        " running stack's restarts its API front: connected trainers reconnect",
    )
    up.set_defaults(run=_run_up)

    down = actions.add_parser("down", help="stop the stack and keep its data (`stack up` starts it again)")
    _state_dir_option(down)
    down.set_defaults(run=_run_down)

    reset = actions.add_parser("reset", help="stop the stack and delete its data (users, jobs, request history)")
    _state_dir_option(reset)
    add_yes_option(reset, "delete")
    reset.set_defaults(run=_run_reset)

    status = actions.add_parser("status", help="print the stack's URLs and keys")
    _state_dir_option(status)
    status.add_argument("-o", "--output", choices=("env", "json", "pretty"), default="pretty")
    status.set_defaults(run=_run_status)


def format_env(env: dict[str, str]) -> str:
    """``KEY="value"`` lines, as ``supabase status -o env`` prints them."""
    return "".join(f'{key}="{value}"\n' for key, value in env.items())


def _state_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        help=f"where the stack keeps its database and marker (default: {RULE})",
    )


def _state_dir(args: argparse.Namespace) -> Path:
    return Path(args.state_dir) if args.state_dir is not None else default_state_dir()


def _run_up(args: argparse.Namespace) -> int:
    from liveparams_stack import LocalStack, StackError
    from liveparams_stack.local import DEFAULT_API_PORT, DEFAULT_DB_PORT

    state_dir = _state_dir(args)
    existing = LocalStack.attach(state_dir)
    # A stack that exists keeps its ports unless others are asked for (which it then refuses).
    defaults = {
        "api_port": existing.api_port if existing else DEFAULT_API_PORT,
        "db_port": existing.db_port if existing else DEFAULT_DB_PORT,
    }
    ports = {}
    for name, var in PORT_VARS.items():
        given = getattr(args, name) or os.environ.get(var) or defaults[name]
        try:
            ports[name] = int(given)
        except ValueError:
            return _fail(StackError(f"${var} must be a port number, got {given!r}"))
    if args.realtime_poll_ms is not None and args.realtime_poll_ms < 0:
        return _fail(StackError(f"--realtime-poll-ms must be 0 (poll fast) or more, got {args.realtime_poll_ms}"))
    # Options not given stay as the stack has them: `up` on a running stack then restarts nothing.
    stored = (existing.enable_faults, existing.realtime_poll_ms) if existing else (False, None)
    faults = stored[0] if args.enable_faults is None else args.enable_faults
    poll_ms = stored[1] if args.realtime_poll_ms is None else (args.realtime_poll_ms or None)  # 0: fast
    stack = LocalStack(state_dir, ports["api_port"], ports["db_port"], enable_faults=faults, realtime_poll_ms=poll_ms)
    before = stack.state()
    restart = before is not None and before.running and (faults, poll_ms) != stored
    if restart:
        print(
            f"Restarting the API front with {_options_text(faults, poll_ms)} instead of {_options_text(*stored)}: "
            "connected trainers reconnect.",
            file=sys.stderr,
        )
    try:
        stack.start()
    except StackError as exc:
        return _fail(exc)
    if before is None:
        done = "Started a new liveparams local stack"
    elif restart:
        done = "Restarted the API front of the liveparams local stack"
    elif before.running:
        done = "The liveparams local stack runs already"
    elif before.problems():
        done = f"Repaired the liveparams local stack ({'; '.join(before.problems())})"
    else:
        done = "Started the liveparams local stack again, with its data,"
    print(f"{done} in {stack.state_dir}.\n{_NOTICE}\n{_LOAD_HINT}\n", file=sys.stderr)
    print(format_env(stack.env()), end="")
    return 0


def _options_text(enable_faults: bool, realtime_poll_ms: int | None) -> str:
    poll = (
        f"Realtime polling the WAL every {realtime_poll_ms} ms ({5 * realtime_poll_ms} ms when idle)"
        if realtime_poll_ms
        else "Realtime polling fast (the test cadence)"
    )
    return poll + (", fault routes on" if enable_faults else "")


def _attached(args: argparse.Namespace, otherwise: str) -> LocalStack | None:
    """The stack in the state folder, or None once it has said there is none (and ``otherwise``)."""
    from liveparams_stack import LocalStack

    state_dir = _state_dir(args)
    stack = LocalStack.attach(state_dir)
    if stack is None:
        print(f"No liveparams stack in {state_dir}; {otherwise}.", file=sys.stderr)
    return stack


def _run_down(args: argparse.Namespace) -> int:
    from liveparams_stack import StackError

    if (stack := _attached(args, "nothing to stop")) is None:
        return 0
    try:
        stack.stop()
    except StackError as exc:
        return _fail(exc)
    print(
        f"Stopped the liveparams local stack in {stack.state_dir}; its data ({_DATA}) is kept. "
        "`liveparams stack up` starts it again, `liveparams stack reset` deletes it.",
        file=sys.stderr,
    )
    return 0


def _run_reset(args: argparse.Namespace) -> int:
    from liveparams_stack import StackError

    if (stack := _attached(args, "nothing to delete")) is None:
        return 0
    what = f"the liveparams local stack in {stack.state_dir} with its data ({_DATA})"
    if not (
        args.yes
        or confirmed(
            warning=f"This stops and deletes {what}.",
            question="Delete it?",
            refusal=f"not deleting {what}",
            declined="Nothing deleted.",
        )
    ):
        return 1
    try:
        stack.delete()
    except StackError as exc:
        return _fail(exc)
    print(f"Deleted {what}. `liveparams stack up` starts a new, empty one.", file=sys.stderr)
    return 0


def _run_status(args: argparse.Namespace) -> int:
    if (stack := _attached(args, "start one with `liveparams stack up`")) is None:
        return 1
    if (state := stack.state()) is None:  # deleted meanwhile
        return _run_status(args)
    if not state.running:
        problems = state.problems()
        said = f"is not working: {'; '.join(problems)}" if problems else "is stopped (its data is kept)"
        print(
            f"The liveparams local stack in {stack.state_dir} {said}; `liveparams stack up` starts "
            f"{'what is missing' if problems else 'it again'}.",
            file=sys.stderr,
        )
        return 1
    env = stack.env()
    if args.output == "env":
        print(format_env(env), end="")
    elif args.output == "json":
        print(json.dumps(env, indent=2))
    else:
        width = max(map(len, env))
        print("".join(f"{key.ljust(width)}  {value}\n" for key, value in env.items()), end="")
        print(f"\n{_NOTICE}\n{_LOAD_HINT}", file=sys.stderr)
    return 0


def _fail(exc: Exception) -> int:
    print(f"liveparams: error: {exc}", file=sys.stderr)
    return 1
