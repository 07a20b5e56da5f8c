"""Interleavings on the agent thread that once went wrong, replayed step by step (no server)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from liveparams.agent import AgentConfig, AgentStatus, UpdateAgent
from liveparams.agent._worker import Worker

JOB = "0b6c1a57-6e4f-4a53-9d2c-5f1f0b1e2a3c"
DEADLINE_S = 20.0


def config(**overrides: Any) -> AgentConfig:
    return AgentConfig(job_id=JOB, url="http://127.0.0.1:9", key="not-a-real-key-123", **overrides)


def request_row(seq: int, **params: object) -> dict[str, object]:
    return {"id": str(uuid.uuid4()), "seq": seq, "params": params, "requested_at": "2026-11-24T04:55:39.748Z"}


def test_a_confirmation_read_that_straddles_push_going_down_does_not_claim_subscribed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Subscribed is "push is up and the requests were read after it came up": a read begun before a drop proves
    neither."""
    worker = Worker(config())
    worker.lifecycle.start()  # as start() does, without the thread: this test plays the thread's part

    async def scenario() -> None:
        reading, answer = asyncio.Event(), asyncio.Event()

        async def read_requests(*args: object) -> dict[str, Any]:
            reading.set()
            await answer.wait()
            return {"latest_seq": 0, "requests": []}

        monkeypatch.setattr(worker._rest, "read_requests", read_requests)
        worker.lifecycle.confirmed()  # "Subscribed to PostgreSQL": the next read makes the agent ready
        read = asyncio.create_task(worker._reread())
        await reading.wait()
        worker._degrade("the socket closed")  # push drops while the read is on the wire
        answer.set()
        await read

    asyncio.run(scenario())
    assert worker.lifecycle.status is AgentStatus.DEGRADED
    assert not worker.lifecycle.ready.is_set()


@pytest.fixture
def agent() -> Iterator[UpdateAgent]:
    agent = UpdateAgent(config(queue_size=1, poll_interval=60.0, resync_interval=60.0))
    yield agent
    agent.close()


def test_a_backlog_left_behind_an_emptied_queue_is_still_delivered(agent: UpdateAgent) -> None:
    """The trainer emptied the queue just before the agent found it full: the next drain() must fetch the rest.

    The server is unreachable and re-reads are a minute apart, so only drain() can trigger the retry.
    """
    intake = agent._worker.intake
    first, second = request_row(1, learning_rate=1e-4), request_row(2, weight_decay=0.1)
    agent.start()
    agent._worker.call_soon(lambda: intake.ingest([first, second]))  # the queue holds one: second waits
    deadline = time.monotonic() + DEADLINE_S
    while not intake.backlogged and time.monotonic() < deadline:
        time.sleep(0.01)
    assert intake.backlogged
    assert intake.queue.get_nowait().id == first["id"]  # taken before the agent had set the backlog

    delivered: list[str] = []
    while not delivered and time.monotonic() < deadline:
        delivered = [request.id for request in agent.drain()]
        time.sleep(0.01)
    assert delivered == [second["id"]]
