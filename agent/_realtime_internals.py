"""The four private internals of the ``realtime`` client the agent relies on, in one place.

The client fails silently in ways the supervisor must see (docs/internals.md, "Agent and
database"): its listen task can die while ``is_connected`` stays true, and closing a client
whose peer stalled must cut the socket and stop the channel's rejoin timer. The public API
exposes none of this, so ``_subscription.py`` reads it through these functions only, and
``tests/agent/test_realtime_internals.py`` fails loudly when an upgrade of the client
removes or renames one of them (:func:`missing`).

An installed client that lacks one (a version newer than the suite was run on) does not stop
the agent: :class:`Internals` looks once per agent, says once which are missing, and from then
on the supervisor does without them, with what the public API gives (docs/internals.md):

- no listen task: a dead listener is found by the channel probe (no reply), not on the next
  tick, and the heartbeat's answer (the job's newest request) has what push dropped meanwhile
  read at the next heartbeat;
- no websocket or rejoin timer: a client being thrown away is closed through its public
  ``close()`` only (bounded by a timeout), so a stalled peer's socket may linger until collected.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
from typing import Any

from realtime import AsyncRealtimeChannel, AsyncRealtimeClient

from liveparams.agent._config import AgentConfig

__all__ = [
    "JOIN_PUSH",
    "LISTEN_TASK",
    "REJOIN_TIMER",
    "REJOIN_TIMER_RESET",
    "WEBSOCKET",
    "Internals",
    "abort_socket",
    "listen_task",
    "missing",
    "stop_rejoining",
    "websocket",
]

logger = logging.getLogger(__name__)

LISTEN_TASK = "AsyncRealtimeClient._listen_task"
WEBSOCKET = "AsyncRealtimeClient._ws_connection"
REJOIN_TIMER = "AsyncRealtimeChannel.rejoin_timer"
REJOIN_TIMER_RESET = "AsyncRealtimeChannel.rejoin_timer.reset"
JOIN_PUSH = "AsyncRealtimeChannel.join_push"


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
    wanted: list[tuple[object, str, str]] = [
        (client, "_listen_task", LISTEN_TASK),
        (client, "_ws_connection", WEBSOCKET),
    ]
    wanted += [(channel, "rejoin_timer", REJOIN_TIMER), (channel, "join_push", JOIN_PUSH)]
    gone = [name for owner, attribute, name in wanted if not hasattr(owner, attribute)]
    timer = getattr(channel, "rejoin_timer", None)
    if timer is not None and not callable(getattr(timer, "reset", None)):
        gone.append(REJOIN_TIMER_RESET)
    return gone


class Internals:
    """Which of the internals above the supervisor may read, found on the first client and said once.

    One per agent: every subscription the supervisor builds shares it, so a client that lacks
    something is reported once, not on every rebuild.

    Args:
        config (`AgentConfig`): the re-read interval the warning names.
    """

    def __init__(self, config: AgentConfig) -> None:
        self._config = config
        self._gone: frozenset[str] | None = None  # None: not looked yet

    def inspect(self, client: AsyncRealtimeClient, channel: AsyncRealtimeChannel) -> None:
        """Look at the first client (later calls do nothing), and warn if it lacks something."""
        if self._gone is not None:
            return
        self._gone = frozenset(missing(client, channel))
        if self._gone:
            logger.warning(
                "The installed realtime client (%s) lacks %s, which the agent reads to watch its connection; "
                "going on with its public API: a dead listener is found by the channel probe, and what push "
                "drops is read at the next heartbeat (every %gs)",
                _installed_version(),
                ", ".join(sorted(self._gone)),
                self._config.heartbeat_interval,
            )

    def sees(self, *names: str) -> bool:
        """Whether every one of ``names`` may be read (after :meth:`inspect`)."""
        return self._gone is not None and not self._gone.intersection(names)


def _installed_version() -> str:
    try:
        return importlib.metadata.version("realtime")
    except importlib.metadata.PackageNotFoundError:
        return "version unknown"
