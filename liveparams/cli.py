"""The ``liveparams`` command. Each group of subcommands lives in its own module and registers itself here."""

from __future__ import annotations

import argparse
import sys

from liveparams import credential_commands
from liveparams.job_commands import add_job_commands, run_job_command

STACK_MISSING = (
    "liveparams stack: the local development stack is not installed. It is a separate distribution "
    "built from the liveparams repository: `pip install ./stack` in a checkout "
    "(or `pip install 'liveparams-stack @ git+<repository URL>#subdirectory=stack'`)"
)


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="liveparams", description="Change the hyperparameters of a running training through Supabase."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_job_commands(commands)
    credential_commands.add_credential_commands(commands)
    _add_stack_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "stack":
        return int(args.run(args))
    if args.command in credential_commands.COMMANDS:
        return credential_commands.run_credential_command(args)
    return run_job_command(args)


if __name__ == "__main__":
    sys.exit(main())
