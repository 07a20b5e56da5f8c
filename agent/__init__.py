"""liveparams agent: delivers a training job's parameter-update requests from Supabase to the training thread.

It runs a daemon thread with its own asyncio loop, subscribed to Supabase
Realtime changes of the job's row, re-reading the row over REST whenever push
may have missed something, and writing outcomes back. ``agent`` does not import
torch or transformers, and imports the network clients only when ``UpdateAgent`` is
first used; ``trainer_hooks`` applies what it delivers.
"""

import importlib
import logging
import typing

from agent._config import AgentConfig
from agent._exceptions import AgentClosedError, AgentError, ConfigError, RestError, SubscriptionError
from agent._models import Change, OutcomeStatus, UpdateOutcome, UpdateRequest
from agent._parameters import METADATA_KEYS, PARAMETERS, InvalidParameter, ParameterSpec, ParamType, validate_parameter
from agent._requests import request_identity

if typing.TYPE_CHECKING:
    from agent._agent import AgentStatus, UpdateAgent

logging.getLogger(__name__).addHandler(logging.NullHandler())

# Imported on first use: they pull in supabase, realtime, websockets and httpx (about half a second),
# which ``trainer_hooks`` (importing ``agent._models`` on every DDP rank) must not pay for.
_LAZY = {"AgentStatus": "agent._agent", "UpdateAgent": "agent._agent"}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "METADATA_KEYS",
    "PARAMETERS",
    "AgentClosedError",
    "AgentConfig",
    "AgentError",
    "AgentStatus",
    "Change",
    "ConfigError",
    "InvalidParameter",
    "OutcomeStatus",
    "ParamType",
    "ParameterSpec",
    "RestError",
    "SubscriptionError",
    "UpdateAgent",
    "UpdateOutcome",
    "UpdateRequest",
    "request_identity",
    "validate_parameter",
]
