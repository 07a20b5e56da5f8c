"""Asking before a destructive command: say what it will do, then [y/N] on a terminal; without one, only ``--yes``.

One helper for every command that deletes or revokes (``credential revoke | rotate``, ``stack reset``),
so that they all ask, and refuse, the same way.
"""

from __future__ import annotations

import argparse
import sys

from liveparams._exceptions import CommandError

__all__ = ["add_yes_option", "confirmed"]


def add_yes_option(parser: argparse.ArgumentParser, doing: str) -> None:
    """``-y/--yes``: do it without asking (what a script passes)."""
    parser.add_argument("-y", "--yes", action="store_true", help=f"{doing} without asking (scripts)")


def confirmed(*, warning: str, question: str, refusal: str, declined: str) -> bool:
    """Whether the person agrees: asked ``warning`` and ``question`` [y/N] on stderr, only y (or yes) agrees, else
    ``declined`` is said there. Without a terminal nobody can answer: a `CommandError` says ``refusal`` and that
    ``--yes`` goes on. Callers ask only without ``--yes``: ``args.yes or confirmed(...)``."""
    if not sys.stdin.isatty():
        raise CommandError(f"{refusal} without a confirmation: rerun with --yes")
    print(f"{warning}\n{question} [y/N] ", end="", file=sys.stderr, flush=True)
    if sys.stdin.readline().strip().lower() in ("y", "yes"):
        return True
    print(declined, file=sys.stderr)
    return False
