"""The one exception the local stack raises for conditions a user can fix; like every liveparams error it
derives from `liveparams.LiveparamsError` (the stack already depends on liveparams, so this adds nothing)."""

from __future__ import annotations

from liveparams import LiveparamsError


class StackError(LiveparamsError, RuntimeError):
    """The local stack cannot start or stop; the message says why and what to do."""
