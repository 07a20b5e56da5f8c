"""The private parts of the ``realtime`` client the agent reads are still there (no server needed).

If an upgrade of the client renames or removes one of them, this fails loudly here instead of the
supervisor going blind to a dead listener or a stalled socket in production.
"""

from __future__ import annotations

import asyncio

from realtime import AsyncRealtimeClient

from liveparams.agent import _realtime_internals as internals


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
