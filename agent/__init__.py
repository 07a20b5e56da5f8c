"""liveparams agent: delivers a training job's parameter-update requests from Supabase to the training thread.

It runs a daemon thread with its own asyncio loop, subscribed to Supabase
Realtime changes of the job's row, re-reading the row over REST whenever push
may have missed something, and writing outcomes back. ``agent`` does not import
torch or transformers; ``trainer_hooks`` applies what it delivers.
"""

import logging

from agent._agent import AgentStatus, UpdateAgent
from agent._config import AgentConfig
from agent._exceptions import AgentClosedError, AgentError, ConfigError, RestError, SubscriptionError
from agent._models import Change, OutcomeStatus, UpdateOutcome, UpdateRequest
from agent._parameters import METADATA_KEYS, PARAMETERS, InvalidParameter, ParameterSpec, ParamType, validate_parameter
from agent._requests import request_identity

logging.getLogger(__name__).addHandler(logging.NullHandler())

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
