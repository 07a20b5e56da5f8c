"""The private parts of the ``realtime`` client the agent reads are still there (no server needed).

If an upgrade of the client renames or removes one of them, this fails loudly here instead of the
supervisor going blind to a dead listener or a stalled socket in production.
"""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest
from realtime import AsyncRealtimeClient

from liveparams._supabase import quiet_client_task_failures
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


def test_a_client_task_failing_unretrieved_is_logged_at_debug_and_any_other_as_asyncio_does(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A listen task the client starts on a socket that just closed fails at once and is never awaited; asyncio
    printed "Task exception was never retrieved" with a traceback into the training's output (seen at 1,000 jobs
    after a frozen front). The agent's loop logs it at DEBUG of the client's logger; a task of ours still gets
    asyncio's ERROR."""
    caplog.set_level(logging.DEBUG)
    loop = asyncio.new_event_loop()
    quiet_client_task_failures(loop)

    async def ours() -> None:
        raise RuntimeError("a task of ours")

    async def fail_unretrieved() -> None:
        client = AsyncRealtimeClient("ws://127.0.0.1:9/realtime/v1", "key", auto_reconnect=False)
        tasks = [asyncio.ensure_future(client._listen()), asyncio.ensure_future(ours())]
        await asyncio.sleep(0.01)
        assert all(task.done() for task in tasks)
        del tasks
        gc.collect()  # a task's unretrieved failure is reported when it is collected

    try:
        loop.run_until_complete(fail_unretrieved())
    finally:
        loop.close()
    client_lines = [r for r in caplog.records if r.name == "realtime"]
    assert [r.levelno for r in client_lines] == [logging.DEBUG]
    assert "NotConnectedError" in client_lines[0].getMessage()
    ours_logged = [r for r in caplog.records if r.name == "asyncio" and r.levelno == logging.ERROR and r.exc_info]
    assert [type(r.exc_info[1]) for r in ours_logged if r.exc_info] == [RuntimeError]
