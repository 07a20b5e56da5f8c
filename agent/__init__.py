"""liveparams agent: delivers a training job's parameter-update requests from Supabase to the training thread.

It runs a daemon thread with its own asyncio loop, subscribed to Supabase
Realtime inserts of the job's rows in ``parameter_update_requests``, re-reading
what is newer than the last request it saw over REST whenever push may have
missed something, and writing outcomes and the trainer's attachment back. It does not import
torch or transformers, and imports the network clients only when ``UpdateAgent`` is
first used; ``liveparams.trainer_hooks`` applies what it delivers. What the two
halves exchange is defined in ``liveparams.contract``.
"""

import logging
import typing

from liveparams import _lazy
from liveparams.agent._config import AgentConfig, Transport
from liveparams.agent._exceptions import AgentClosedError, AgentError, ConfigError, RestError, SubscriptionError
from liveparams.agent._requests import decode_params, request_identity

if typing.TYPE_CHECKING:
    from liveparams.agent._agent import AgentStatus, UpdateAgent

logging.getLogger(__name__).addHandler(logging.NullHandler())

# Imported on first use: they pull in supabase, realtime, websockets and httpx (about half a second),
# which the training side (importing ``liveparams.contract`` on every DDP rank) must not pay for.
_LAZY = {"AgentStatus": "liveparams.agent._agent", "UpdateAgent": "liveparams.agent._agent"}

__getattr__, __dir__ = _lazy.lazy_exports(__name__, globals(), _LAZY)


__all__ = [
    "AgentClosedError",
    "AgentConfig",
    "AgentError",
    "AgentStatus",
    "ConfigError",
    "RestError",
    "SubscriptionError",
    "Transport",
    "UpdateAgent",
    "decode_params",
    "request_identity",
]
