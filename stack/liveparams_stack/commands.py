"""``liveparams stack up | down | status``: the local stack from the command line.

``up`` returns once the stack answers and leaves it running in the background
(PostgreSQL and the front are detached processes); ``down`` stops it from any
shell. The state directory is ``./.stack`` unless ``--state-dir`` or
``$LIVEPARAMS_STACK_DIR`` says otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

DEFAULT_STATE_DIR = ".stack"
PORT_VARS = {"api_port": "LIVEPARAMS_STACK_API_PORT", "db_port": "LIVEPARAMS_STACK_DB_PORT"}
_NOTICE = "For development and tests only: well-known keys, no durability. Stop it with `liveparams stack down`."
# The one line that puts the variables into a shell, exported (plain `eval` would not export them to commands).
LOAD_LINE = 'set -a; eval "$(liveparams stack status -o env)"; set +a'
_LOAD_HINT = f"Load these variables into your shell with: {LOAD_LINE}"


def add_stack_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``stack up|down|status`` on the CLI's subparsers."""
    stack = subparsers.add_parser("stack", help="run a local Supabase-compatible stack (development and tests only)")
    actions = stack.add_subparsers(dest="stack_command", required=True, metavar="ACTION")

    up = actions.add_parser("up", help="start the stack in the background and print its variables")
    _state_dir_option(up)
    up.add_argument("--api-port", type=int, help="default: $LIVEPARAMS_STACK_API_PORT or 54321, as supabase start")
    up.add_argument("--db-port", type=int, help="default: $LIVEPARAMS_STACK_DB_PORT or 54322, as supabase start")
    up.add_argument("--enable-faults", action="store_true", help="mount the test-only fault injection routes")
    up.add_argument(
        "--realtime-poll-ms",
        type=int,
        metavar="MS",
        help="poll the WAL every MS ms and back off to 5×MS when idle, as hosted Realtime does (e.g. 100);"
        " default: poll fast, for tests",
    )
    up.set_defaults(run=_run_up)

    down = actions.add_parser("down", help="stop the stack and delete its data")
    _state_dir_option(down)
    down.set_defaults(run=_run_down)

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
        default=os.environ.get("LIVEPARAMS_STACK_DIR", DEFAULT_STATE_DIR),
        help="where the stack keeps its database and marker (default: $LIVEPARAMS_STACK_DIR or ./.stack)",
    )


def _run_up(args: argparse.Namespace) -> int:
    from liveparams_stack import LocalStack, StackError
    from liveparams_stack.local import DEFAULT_API_PORT, DEFAULT_DB_PORT

    defaults = {"api_port": DEFAULT_API_PORT, "db_port": DEFAULT_DB_PORT}
    ports = {}
    for name, var in PORT_VARS.items():
        given = getattr(args, name) or os.environ.get(var) or defaults[name]
        try:
            ports[name] = int(given)
        except ValueError:
            return _fail(StackError(f"${var} must be a port number, got {given!r}"))
    stack = LocalStack(
        args.state_dir,
        ports["api_port"],
        ports["db_port"],
        enable_faults=args.enable_faults,
        realtime_poll_ms=args.realtime_poll_ms,
    )
    try:
        stack.start()
    except StackError as exc:
        return _fail(exc)
    print(f"Started the liveparams local stack in {stack.state_dir}.\n{_NOTICE}\n{_LOAD_HINT}\n", file=sys.stderr)
    print(format_env(stack.env()), end="")
    return 0


def _run_down(args: argparse.Namespace) -> int:
    from liveparams_stack import LocalStack, StackError

    stack = LocalStack.attach(args.state_dir)
    if stack is None:
        print(f"No liveparams stack in {args.state_dir}; nothing to stop.", file=sys.stderr)
        return 0
    try:
        stack.stop()
    except StackError as exc:
        return _fail(exc)
    print(f"Stopped the liveparams local stack in {stack.state_dir}.", file=sys.stderr)
    return 0


def _run_status(args: argparse.Namespace) -> int:
    from liveparams_stack import LocalStack

    stack = LocalStack.attach(args.state_dir)
    if stack is None or not stack.is_running():
        print(f"No liveparams stack runs in {args.state_dir}; start it with `liveparams stack up`.", file=sys.stderr)
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
