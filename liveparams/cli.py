"""The ``liveparams`` command. Each group of subcommands lives in its own module and registers itself here."""

from __future__ import annotations

import argparse
import os
import sys
from importlib.metadata import PackageNotFoundError, version

from liveparams import credential_commands
from liveparams.credentials import CredentialError
from liveparams.job_commands import add_job_commands
from liveparams.job_group import add_job_group
from liveparams.jobs import JobError
from liveparams.launch_command import add_run_command
from liveparams.panel_command import add_panel_command
from liveparams.run_commands import add_request_group
from liveparams.user_group import add_user_group

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="liveparams", description="Change the hyperparameters of a running training through Supabase."
    )
    parser.add_argument("--version", action="version", version=f"liveparams {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_job_commands(commands)
    credential_commands.add_credential_commands(commands)
    add_job_group(commands)
    add_request_group(commands)
    add_user_group(commands)
    add_run_command(commands)
    add_panel_command(commands)
    _add_stack_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; a refusal is one line on stderr (exit 1), never a traceback."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (JobError, CredentialError) as exc:
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
