"""The agent is an UpdateSource: the callback's only dependency on it is this protocol."""

from __future__ import annotations

import inspect

from liveparams.agent import UpdateAgent
from liveparams.contract import UpdateSource


def test_update_agent_has_every_method_of_the_protocol_with_the_same_parameters() -> None:
    for name in ("start", "wait_ready", "close", "drain", "report"):
        expected = list(inspect.signature(getattr(UpdateSource, name)).parameters)
        actual = list(inspect.signature(getattr(UpdateAgent, name)).parameters)
        assert actual == expected, name
