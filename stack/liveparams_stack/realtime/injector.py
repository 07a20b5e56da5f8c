"""The realtime side of fault injection (`liveparams_stack.faults.RealtimeFaults`), over live sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from liveparams_stack.faults import ChangesMode
from liveparams_stack.realtime.channel import Channel
from liveparams_stack.realtime.connection import Connection
from liveparams_stack.realtime.hub import Hub


class SocketFaults:
    """Each fault acts as the real server would when the matching failure happens."""

    def __init__(self, hub: Hub, connections: set[Connection]) -> None:
        self._hub = hub
        self._connections = connections
        self._tasks: set[asyncio.Task[None]] = set()

    def _sockets(self, topic: str | None) -> list[Connection]:
        return [c for c in self._connections if topic is None or topic in c.channels]

    def _channels(self, topic: str | None) -> Iterator[tuple[Connection, Channel]]:
        for conn in self._sockets(topic):
            for channel in list(conn.channels.values()):
                if topic is None or channel.topic == topic:
                    yield conn, channel

    def close_sockets(self, code: int, topic: str | None) -> int:
        sockets = self._sockets(topic)
        for conn in sockets:
            task = asyncio.ensure_future(conn.close(code, "fault injection"))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(sockets)

    def stall_sockets(self, topic: str | None) -> int:
        sockets = self._sockets(topic)
        for conn in sockets:
            conn.stall()
        return len(sockets)

    def unstall_sockets(self, topic: str | None) -> int:
        sockets = self._sockets(topic)
        for conn in sockets:
            conn.unstall()
        return len(sockets)

    def phx_error(self, topic: str | None) -> int:
        """A channel crash: ``phx_error`` (ref = join ref) and the channel is gone server-side."""
        hit = list(self._channels(topic))
        for conn, channel in hit:
            channel.error({"reason": "channel_crash"})
            conn.drop_channel(channel)
        return len(hit)

    def system_error(self, message: str, topic: str | None) -> int:
        """A ``system`` error push; like the real server, the channel stays joined."""
        hit = list(self._channels(topic))
        for _, channel in hit:
            channel.system("system", "error", message)
        return len(hit)

    def stale_phx_close(self, topic: str | None) -> int:
        """The ``phx_close`` Phoenix sends for a superseded join (the Python client does not check its ref)."""
        hit = list(self._channels(topic))
        for _, channel in hit:
            channel.close(stale=True)
        return len(hit)

    def expire_token(self, topic: str | None) -> int:
        """What the real server does when a channel's token expires: system error, then ``phx_close``."""
        hit = list(self._channels(topic))
        for conn, channel in hit:
            conn.end_channel(channel, "Token has expired 0 seconds ago")
        return len(hit)

    def set_changes_mode(self, mode: ChangesMode, topic: str | None) -> int:
        self._hub.set_changes_mode(mode, topic)
        return len(self._hub.channels(topic))

    def set_private_only(self, enabled: bool) -> int:
        """Refuse public joins from now on (joined channels stay, as when the setting changes on a live project)."""
        self._hub.private_only = enabled
        return 0

    def reset(self) -> None:
        self.unstall_sockets(None)
        self._hub.set_changes_mode("normal", None)
        self._hub.private_only = False
