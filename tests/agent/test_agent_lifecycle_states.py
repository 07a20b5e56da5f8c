"""The agent's state machine: what ``UpdateAgent.status`` says after each event, and what the log says (no server)."""

from __future__ import annotations

import logging

import pytest

from liveparams.agent import AgentConfig, AgentStatus, RestError
from liveparams.agent._lifecycle import Lifecycle

JOB = "0b6c1a57-6e4f-4a53-9d2c-5f1f0b1e2a3c"


@pytest.fixture
def lifecycle() -> Lifecycle:
    machine = Lifecycle(AgentConfig(job_id=JOB, url="http://127.0.0.1:9", key="not-a-real-key-123"), lambda: None)
    machine.start()
    return machine


def confirm_and_read(lifecycle: Lifecycle) -> None:
    lifecycle.confirmed()
    lifecycle.read_done(lifecycle.begin_read(), complete=True)


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno == level]


def test_subscribed_once_a_read_follows_the_confirmation_and_said_once(
    lifecycle: Lifecycle, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="liveparams.agent")
    lifecycle.read_done(lifecycle.begin_read(), complete=True)  # the first read, before push is confirmed
    assert lifecycle.status is AgentStatus.STARTING and lifecycle.initial_read.is_set()
    confirm_and_read(lifecycle)
    confirm_and_read(lifecycle)  # a rejoin the supervisor did not see: no second line
    assert lifecycle.status is AgentStatus.SUBSCRIBED and lifecycle.ready.is_set()
    assert messages(caplog, logging.INFO) == [f"Listening for runtime parameter updates on job {JOB}"]


def test_push_down_degrades_with_one_warning_and_a_confirmed_read_restores(
    lifecycle: Lifecycle, caplog: pytest.LogCaptureFixture
) -> None:
    confirm_and_read(lifecycle)
    caplog.set_level(logging.INFO, logger="liveparams.agent")
    lifecycle.push_down("the socket closed")
    lifecycle.push_down("the client gave up reconnecting")  # the same outage
    assert lifecycle.status is AgentStatus.DEGRADED and not lifecycle.ready.is_set()
    (warning,) = messages(caplog, logging.WARNING)
    assert warning.startswith("Realtime push is down (the socket closed); degraded")
    confirm_and_read(lifecycle)
    assert lifecycle.status is AgentStatus.SUBSCRIBED
    assert messages(caplog, logging.INFO) == ["Realtime push restored"]


def test_a_failed_read_keeps_the_confirmation_for_the_next_read(lifecycle: Lifecycle) -> None:
    lifecycle.confirmed()
    lifecycle.read_failed(RestError("reading the job's requests: connection refused", transient=True))
    assert lifecycle.status is AgentStatus.STARTING
    assert not lifecycle.awaiting_confirmation  # the supervisor does not invent another one
    lifecycle.read_done(lifecycle.begin_read(), complete=True)
    assert lifecycle.status is AgentStatus.SUBSCRIBED


def test_a_confirmation_during_a_read_waits_for_the_next_read(lifecycle: Lifecycle) -> None:
    read = lifecycle.begin_read()
    lifecycle.confirmed()  # arrives while the read is on the wire: the read may have missed what it covers
    lifecycle.read_done(read, complete=True)
    assert lifecycle.status is AgentStatus.STARTING
    lifecycle.read_done(lifecycle.begin_read(), complete=True)
    assert lifecycle.status is AgentStatus.SUBSCRIBED


def test_read_failures_are_said_once_per_outage(lifecycle: Lifecycle, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="liveparams.agent")
    for _ in range(3):
        lifecycle.read_failed(RestError("reading the job's requests: 503", transient=True))
    lifecycle.read_done(lifecycle.begin_read(), complete=False)
    lifecycle.read_failed(RestError("reading the job's requests: 503", transient=True))
    said = "Could not read the job's requests: reading the job's requests: 503"
    assert messages(caplog, logging.WARNING) == [said] * 2


def test_a_missing_job_is_said_once_until_it_is_found(lifecycle: Lifecycle, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="liveparams.agent")
    lifecycle.read_found_no_job()
    lifecycle.read_found_no_job()
    assert not lifecycle.initial_read.is_set()
    lifecycle.read_done(lifecycle.begin_read(), complete=True)
    lifecycle.read_found_no_job()
    assert messages(caplog, logging.WARNING) == [f"Job {JOB} not found, or not readable with this key"] * 2


@pytest.mark.parametrize("end", ["revoke", "close"])
def test_revoked_and_closed_are_not_left_by_a_late_event(lifecycle: Lifecycle, end: str) -> None:
    lifecycle.confirmed()
    read = lifecycle.begin_read()
    getattr(lifecycle, end)()
    lifecycle.read_done(read, complete=True)  # a read that was on the wire
    lifecycle.push_down("the socket closed")
    assert lifecycle.status is (AgentStatus.REVOKED if end == "revoke" else AgentStatus.CLOSED)
    assert not lifecycle.ready.is_set()
    lifecycle.close()
    assert lifecycle.status is AgentStatus.CLOSED
