"""The ``liveparams`` command. Each group of subcommands lives in its own module and registers itself here."""

from __future__ import annotations

import argparse
import sys

from liveparams.job_commands import add_job_commands, run_job_command
from liveparams.stack.commands import add_stack_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="liveparams", description="Change the hyperparameters of a running training through Supabase."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_job_commands(commands)
    add_stack_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "stack":
        return int(args.run(args))
    return run_job_command(args)


if __name__ == "__main__":
    sys.exit(main())
