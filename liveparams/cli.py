"""The ``liveparams`` command (the console entry ``liveparams.cli:main``).

Each command, or group of subcommands, lives in its own ``_commands_<name>.py`` and registers
itself here; a refusal anywhere is a `CommandError` (``liveparams._exceptions``), printed as one line.
``liveparams run`` builds a parser of its own command only: registering the others imports the
Supabase client and the local stack (about a second), which a training's start need not wait for.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib.metadata import PackageNotFoundError, version

from liveparams._commands_run import add_run_command
from liveparams._exceptions import CommandError

__all__ = ["build_parser", "main"]

STACK_MISSING = (
    "liveparams stack: the local development stack is not installed. It is a separate distribution "
    "built from the liveparams repository: `pip install ./stack` in a checkout "
    "(or `pip install 'liveparams-stack @ git+<repository URL>#subdirectory=stack'`)"
)
DEBUG_VAR = "LIVEPARAMS_DEBUG"  # set to see the traceback of an unexpected error


def _add_stack_commands(commands: argparse._SubParsersAction) -> None:
    """``liveparams stack ...`` from the liveparams-stack distribution, or a pointer to it when it is missing."""
    try:
        from liveparams_stack.commands import add_stack_commands
    except ImportError:
        missing = commands.add_parser("stack", help="run a local Supabase-compatible stack (needs liveparams-stack)")
        missing.add_argument("rest", nargs=argparse.REMAINDER)
        missing.set_defaults(run=_stack_missing)
        return
    add_stack_commands(commands)


def _stack_missing(args: argparse.Namespace) -> int:
    print(STACK_MISSING, file=sys.stderr)
    return 2


def _version() -> str:
    """The installed distribution's version (a checkout run without installing has none)."""
    try:
        return version("liveparams")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser(only_run: bool = False) -> argparse.ArgumentParser:
    """The CLI's parser; with ``only_run``, one that knows ``run`` alone (see the module's docstring)."""
    parser = argparse.ArgumentParser(
        prog="liveparams", description="Change the hyperparameters of a running training through Supabase."
    )
    parser.add_argument("--version", action="version", version=f"liveparams {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    if only_run:
        add_run_command(commands)
        return parser
    from liveparams._commands_credential import add_credential_commands
    from liveparams._commands_job import add_job_group
    from liveparams._commands_panel import add_panel_command
    from liveparams._commands_request import add_request_group
    from liveparams._commands_set import add_set_command
    from liveparams._commands_user import add_user_group
    from liveparams._commands_watch import add_watch_command

    add_set_command(commands)
    add_watch_command(commands)
    add_credential_commands(commands)
    add_job_group(commands)
    add_request_group(commands)
    add_user_group(commands)
    add_run_command(commands)
    add_panel_command(commands)
    _add_stack_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; a refusal is one line on stderr (exit 1), never a traceback."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(only_run=argv[:1] == ["run"]).parse_args(argv)
    try:
        return int(args.run(args))
    except CommandError as exc:
        print(f"liveparams: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: still one line, with the way to the traceback
        if os.environ.get(DEBUG_VAR):
            raise
        print(
            f"liveparams: internal error: {type(exc).__name__}: {exc} (set {DEBUG_VAR}=1 for the traceback)",
            file=sys.stderr,
        )
        return 70


if __name__ == "__main__":
    sys.exit(main())
