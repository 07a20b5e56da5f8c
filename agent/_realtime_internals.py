"""The four private internals of the ``realtime`` client the agent relies on, in one place.

The client fails silently in ways the supervisor must see (docs/internals.md, "Agent and
database"): its listen task can die while ``is_connected`` stays true, and closing a client
whose peer stalled must cut the socket and stop the channel's rejoin timer. The public API
exposes none of this, so ``_subscription.py`` reads it through these functions only, and
``tests/agent/test_realtime_internals.py`` fails loudly when an upgrade of the client
removes or renames one of them (:func:`missing`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from realtime import AsyncRealtimeChannel, AsyncRealtimeClient

__all__ = ["abort_socket", "listen_task", "missing", "stop_rejoining", "websocket"]


def listen_task(client: AsyncRealtimeClient) -> asyncio.Task[None] | None:
    """The task reading the socket (reconnects run inside it); ``None`` when there is none."""
    task: asyncio.Task[None] | None = client._listen_task
    return task


def websocket(client: AsyncRealtimeClient) -> Any:
    """The client's ``websockets`` connection, or ``None`` when not connected."""
    return client._ws_connection


def abort_socket(connection: Any) -> None:
    """Cut ``connection`` (from :func:`websocket`) at the TCP level; a no-op when already closed."""
    if connection is not None:
        connection.transport.abort()


def stop_rejoining(channel: AsyncRealtimeChannel) -> None:
    """Cancel the channel's pending rejoin and join push, so that nothing revives a client being closed."""
    channel.rejoin_timer.reset()
    channel.join_push.destroy()


def missing(client: AsyncRealtimeClient, channel: AsyncRealtimeChannel) -> list[str]:
    """The internals above that ``client``/``channel`` lack (empty when the installed client fits)."""
    wanted = [(client, "_listen_task"), (client, "_ws_connection"), (channel, "rejoin_timer"), (channel, "join_push")]
    gone = [f"{type(owner).__name__}.{name}" for owner, name in wanted if not hasattr(owner, name)]
    timer = getattr(channel, "rejoin_timer", None)
    if timer is not None and not callable(getattr(timer, "reset", None)):
        gone.append("rejoin_timer.reset")
    return gone
