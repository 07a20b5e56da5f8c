"""The one exception the local stack raises for conditions a user can fix."""

from __future__ import annotations

from liveparams._exceptions import LiveparamsError


class StackError(LiveparamsError, RuntimeError):
    """The local stack cannot start or stop; the message says why and what to do."""
