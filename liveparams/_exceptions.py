"""The package's one exception tree: everything liveparams raises on purpose derives from `LiveparamsError`.

The tree (each subpackage defines its own branch, this module only the root and the CLI's)::

    LiveparamsError
    ├── CommandError                       a refusal the CLI prints as one line ("liveparams: error: ...")
    │   ├── Unreachable                    the server could not be reached, or the live connection was lost
    │   ├── CredentialError                a trainer credential could not be issued, listed or revoked
    │   └── SignInError                    the kept sign-in cannot be used (ended, or Auth unreachable)
    ├── InvalidParameter (also ValueError) liveparams.contract: a value no parameter accepts
    ├── AgentError                         liveparams.agent: its own tree in ``agent/_exceptions.py``
    ├── NotSent                            liveparams.trainer_hooks: a request batch did not reach every rank
    └── StackError (also RuntimeError)     liveparams_stack: the local stack cannot start or stop

This module imports nothing, so the agent (no transformers, no torch), the contract and the
trainer hooks (no network client) can all derive from it.
"""

from __future__ import annotations

__all__ = ["CommandError", "CredentialError", "LiveparamsError", "SignInError", "Unreachable"]


class LiveparamsError(Exception):
    """Base class of every error liveparams raises on purpose."""


class CommandError(LiveparamsError):
    """A failure to show a user as one sentence, without a traceback or a secret."""


class Unreachable(CommandError):
    """The server could not be reached, or the live connection to it was lost: worth retrying."""


class CredentialError(CommandError):
    """A credential could not be issued, listed or revoked; the message is one sentence without secrets."""


class SignInError(CommandError):
    """The stored sign-in cannot be used (ended, or Auth unreachable); one sentence, no secret."""
