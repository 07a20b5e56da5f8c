"""The contract between the two halves of liveparams.

``liveparams.agent`` (network side: Supabase Realtime and REST) and
``liveparams.trainer_hooks`` (training side: a ``transformers`` callback) share
nothing but what is defined here:

- the parameter table (:data:`PARAMETERS`): what may change live and how each
  value is validated; the database spec, the docs and the CLI derive from it;
- the messages that cross the queue: :class:`UpdateRequest` in,
  :class:`UpdateOutcome` (with its :class:`Change` list and :class:`OutcomeStatus`) out,
  and :class:`RestartRecord` (an in-process restart done, for the job row);
- :class:`UpdateSource`, the protocol the callback drains, and :data:`DRAIN_MAX_ITEMS`;
- :func:`format_value`, how a value is printed for people (logs, outcomes, the CLI).

It imports nothing beyond the standard library, so every DDP rank can import it
without pulling in torch, transformers or any network client.
"""

from liveparams.contract._format import format_value
from liveparams.contract._messages import (
    Change,
    OutcomeStatus,
    RestartRecord,
    UpdateOutcome,
    UpdateRequest,
    utc_now_iso,
)
from liveparams.contract._parameters import (
    METADATA_KEYS,
    PARAMETERS,
    InvalidParameter,
    ParameterSpec,
    ParamType,
    ParamValue,
    validate_parameter,
)
from liveparams.contract._source import DRAIN_MAX_ITEMS, END_REASONS, TRACKER_PREFIX, UpdateSource

__all__ = [
    "DRAIN_MAX_ITEMS",
    "END_REASONS",
    "METADATA_KEYS",
    "PARAMETERS",
    "TRACKER_PREFIX",
    "Change",
    "InvalidParameter",
    "OutcomeStatus",
    "ParamType",
    "ParamValue",
    "ParameterSpec",
    "RestartRecord",
    "UpdateOutcome",
    "UpdateRequest",
    "UpdateSource",
    "format_value",
    "utc_now_iso",
    "validate_parameter",
]
