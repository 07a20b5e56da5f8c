"""The agent is an UpdateSource: the callback's only dependency on it is this protocol."""

from __future__ import annotations

import inspect

from liveparams.agent import UpdateAgent
from liveparams.contract import UpdateSource


def test_update_agent_has_every_method_of_the_protocol_with_the_same_parameters() -> None:
    assert isinstance(UpdateSource.job_id, property) and isinstance(UpdateAgent.job_id, property)
    for name in ("start", "wait_initial_read", "record_end", "close", "drain", "report"):
        expected = list(inspect.signature(getattr(UpdateSource, name)).parameters)
        actual = list(inspect.signature(getattr(UpdateAgent, name)).parameters)
        assert actual == expected, name
