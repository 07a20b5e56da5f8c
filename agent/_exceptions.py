"""Errors raised by the agent.

Only misuse and configuration errors ever reach the caller; network failures
stay on the agent thread, where they are logged and retried. The tree (its root derives
from the package's, ``liveparams._exceptions.LiveparamsError``)::

    AgentError
    ├── AgentClosedError (also RuntimeError)   start() after close()
    ├── ConfigError (also ValueError)          an AgentConfig that cannot work
    ├── RestError                              a REST/RPC call failed (``transient`` says whether to retry)
    └── SubscriptionError                      the Realtime subscription could not be established
"""

from __future__ import annotations

from liveparams._exceptions import LiveparamsError

__all__ = ["AgentClosedError", "AgentError", "ConfigError", "RestError", "SubscriptionError"]


class AgentError(LiveparamsError):
    """Base class of every error raised by :mod:`agent`."""


class AgentClosedError(AgentError, RuntimeError):
    """Raised by ``start()`` on an agent that was closed: an agent runs once; make a new one."""


class ConfigError(AgentError, ValueError):
    """Raised when an :class:`~agent.AgentConfig` is invalid (empty URL, job id that is not a UUID, ...)."""


class RestError(AgentError):
    """Raised on the agent thread when a REST or RPC call fails.

    Args:
        message (`str`): what failed, without keys or tokens.
        transient (`bool`): whether retrying later can succeed (5xx, network
            errors) as opposed to a refusal that will not change (4xx).
    """

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class SubscriptionError(AgentError):
    """Raised on the agent thread when a Realtime subscription is refused, times out or closes while joining."""
