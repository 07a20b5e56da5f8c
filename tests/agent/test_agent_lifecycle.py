"""Start/close semantics, without a server: the agent must never get in training's way."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest

from liveparams.agent import AgentClosedError, AgentConfig, AgentStatus, UpdateAgent
from liveparams.contract import OutcomeStatus, UpdateOutcome

JOB = "0b6c1a57-6e4f-4a53-9d2c-5f1f0b1e2a3c"
JOIN_S = 20.0


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def agent() -> UpdateAgent:
    config = AgentConfig(job_id=JOB, url=f"http://127.0.0.1:{closed_port()}", key="not-a-real-key-123")
    return UpdateAgent(config)


def agent_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "liveparams.agent"]


def no_agent_thread_remains() -> bool:
    """Whether every agent thread ends; waits generously, since how fast is the benchmarks' business."""
    for thread in agent_threads():
        thread.join(JOIN_S)
    return agent_threads() == []


def test_start_and_close_are_idempotent_and_leave_no_thread(agent: UpdateAgent) -> None:
    assert agent.status is AgentStatus.NOT_STARTED
    agent.start()
    agent.start()
    assert len(agent_threads()) == 1
    agent.close()
    agent.close()
    assert agent.status is AgentStatus.CLOSED
    assert no_agent_thread_remains()


def test_restart_after_close_is_refused(agent: UpdateAgent) -> None:
    agent.start()
    agent.close()
    with pytest.raises(AgentClosedError):
        agent.start()
    assert issubclass(AgentClosedError, RuntimeError)


def test_close_without_start(agent: UpdateAgent) -> None:
    agent.close()
    assert agent.status is AgentStatus.CLOSED
    with pytest.raises(AgentClosedError):
        agent.start()


def test_context_manager(agent: UpdateAgent) -> None:
    with agent as running:
        assert running is agent and agent.status is not AgentStatus.NOT_STARTED
    assert agent.status is AgentStatus.CLOSED and no_agent_thread_remains()


def test_an_outage_does_not_stop_the_agent_receiving_but_closing_does(agent: UpdateAgent) -> None:
    """What a paused run reads every round: an unreachable server may come back with a `resume`; a closed agent not."""
    assert not agent.receiving  # not started: nothing is read
    with agent:
        deadline = time.monotonic() + JOIN_S
        while agent.status is not AgentStatus.DEGRADED and time.monotonic() < deadline:
            time.sleep(0.05)
        assert agent.status is AgentStatus.DEGRADED and agent.receiving
    assert not agent.receiving


def test_unreachable_server_degrades_quietly(agent: UpdateAgent) -> None:
    """No server: nothing raises into the caller, drain() is empty, and the agent says it is degraded."""
    with agent:
        assert not agent.wait_ready(timeout=1.0)
        assert agent.drain() == []
        agent.report([UpdateOutcome("3f6c1a57-6e4f-4a53-9d2c-5f1f0b1e2a3c", OutcomeStatus.APPLIED, step=1)])
        deadline = time.monotonic() + JOIN_S
        while agent.status is not AgentStatus.DEGRADED and time.monotonic() < deadline:
            time.sleep(0.05)
        assert agent.status is AgentStatus.DEGRADED
        assert agent.drain() == []


def test_unwritable_outcomes_are_reported_at_close_with_a_warning(
    agent: UpdateAgent, caplog: pytest.LogCaptureFixture
) -> None:
    agent.start()
    agent.report([UpdateOutcome("3f6c1a57-6e4f-4a53-9d2c-5f1f0b1e2a3c", OutcomeStatus.APPLIED, step=1)])
    with caplog.at_level(logging.WARNING):
        agent.close(timeout=0.5)
    assert "1 outcomes could not be recorded" in caplog.text
    assert no_agent_thread_remains()


def test_from_env_without_job_id_disables(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("JOB_ID", raising=False)
    with caplog.at_level(logging.WARNING):
        assert UpdateAgent.from_env() is None
    assert caplog.messages == ["No JOB_ID found, runtime parameter updates disabled"]


def test_repr_hides_the_key(agent: UpdateAgent) -> None:
    assert "not-a-real-key" not in repr(agent) + repr(agent.config)
