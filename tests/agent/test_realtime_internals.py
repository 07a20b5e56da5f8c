"""The private parts of the ``realtime`` client the agent reads are still there (no server needed).

If an upgrade of the client renames or removes one of them, this fails loudly here instead of the
supervisor going blind to a dead listener or a stalled socket in production.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from realtime import AsyncRealtimeClient

from liveparams.agent import AgentConfig
from liveparams.agent import _realtime_internals as internals

JOB = "0b6c1a57-6e4f-4a53-9d2c-5f1f0b1e2a3c"


def test_the_installed_client_has_every_internal_the_agent_reads() -> None:
    async def check() -> list[str]:
        client = AsyncRealtimeClient("ws://127.0.0.1:9/realtime/v1", "key", auto_reconnect=False)
        channel = client.channel("liveparams-job-x")
        assert internals.listen_task(client) is None and internals.websocket(client) is None  # not connected
        internals.stop_rejoining(channel)
        internals.abort_socket(None)
        return internals.missing(client, channel)

    assert asyncio.run(check()) == []


def test_missing_names_what_an_upgrade_took_away() -> None:
    class Bare:
        pass

    assert internals.missing(Bare(), Bare()) == [  # type: ignore[arg-type]
        "AsyncRealtimeClient._listen_task",
        "AsyncRealtimeClient._ws_connection",
        "AsyncRealtimeChannel.rejoin_timer",
        "AsyncRealtimeChannel.join_push",
    ]


def test_a_client_lacking_an_internal_is_said_once_and_that_internal_is_left_alone(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = AgentConfig(job_id=JOB, url="http://127.0.0.1:9", key="not-a-real-key-123")
    monkeypatch.setattr(internals, "missing", lambda client, channel: [internals.LISTEN_TASK])
    seen = internals.Internals(config)
    caplog.set_level(logging.WARNING, logger="liveparams.agent")

    async def look_twice() -> None:
        for _ in range(2):  # two subscriptions of one agent
            client = AsyncRealtimeClient("ws://127.0.0.1:9/realtime/v1", "key", auto_reconnect=False)
            seen.inspect(client, client.channel("liveparams-job-x"))

    asyncio.run(look_twice())
    assert [record.getMessage().split(" lacks ")[1].split(",")[0] for record in caplog.records] == [
        "AsyncRealtimeClient._listen_task"
    ]
    assert not seen.sees(internals.LISTEN_TASK) and seen.sees(internals.WEBSOCKET, internals.JOIN_PUSH)
