"""While push is down the agent polls over REST, and polls less while the server fails or struggles (no server).

Push goes down for many trainers at once when the server stalls; polling each at its fixed
interval then multiplies the load on a server that is already behind (docs/benchmarks.md, "A frozen
API front"). These tests play the re-reader against a scripted ``read_requests``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from typing import Any

import pytest

from liveparams.agent import AgentConfig
from liveparams.agent._exceptions import RestError
from liveparams.agent._worker import Worker

JOB = "0b6c1a57-6e4f-4a53-9d2c-5f1f0b1e2a3c"
POLL_S = 0.5  # the re-reader's own rate limit is 2 reads a second: shorter intervals would not show
SLOW_S = 0.15


def reads_made(monkeypatch: pytest.MonkeyPatch, answers: list[str], **overrides: Any) -> list[float]:
    """When a degraded agent read, for reads that ``fail``, answer ``slow``ly or ``fast``, in that order."""
    worker = Worker(AgentConfig(job_id=JOB, url="http://127.0.0.1:9", key="not-a-real-key-123", **overrides))
    worker.lifecycle.start()  # not ready: the re-reader polls every poll_interval or longer
    began: list[float] = []

    async def read_requests(*args: object) -> dict[str, Any]:
        began.append(time.monotonic())
        answer = answers[len(began) - 1]
        if answer == "fail":
            raise RestError("the server answered 503", transient=True)
        await asyncio.sleep(SLOW_S if answer == "slow" else 0.0)
        return {"latest_seq": 0, "requests": []}

    monkeypatch.setattr(worker._rest, "read_requests", read_requests)

    async def scenario() -> None:
        polling = asyncio.create_task(worker._reread_loop())
        while len(began) < len(answers):
            await asyncio.sleep(0.01)
        polling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await polling

    asyncio.run(asyncio.wait_for(scenario(), 30))
    return began


def gaps(times: list[float]) -> list[float]:
    return [later - earlier for earlier, later in itertools.pairwise(times)]


def test_failed_reads_back_off_and_an_answer_brings_the_interval_back(monkeypatch: pytest.MonkeyPatch) -> None:
    reads = reads_made(monkeypatch, ["fail", "fail", "fail", "fast", "fast", "fast"], poll_interval=POLL_S)
    after_failures, after_answers = gaps(reads)[:3], gaps(reads)[3:]
    assert after_failures[2] >= 2 * POLL_S, after_failures  # doubled twice, jitter in [d/2, d]: 1 to 2 s here
    assert after_failures[0] < after_failures[2]
    assert all(gap < 2 * POLL_S for gap in after_answers), after_answers  # healthy again: every poll_interval


def test_a_slow_answer_is_followed_by_ten_times_as_long(monkeypatch: pytest.MonkeyPatch) -> None:
    reads = reads_made(monkeypatch, ["slow", "fast", "fast"], poll_interval=POLL_S)
    after_slow, after_fast = gaps(reads)
    assert after_slow >= 10 * SLOW_S, after_slow  # 1.5 s, not the 0.5 s poll_interval
    assert after_fast < 2 * POLL_S, after_fast
