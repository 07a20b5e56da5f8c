"""The job's Realtime channel ``liveparams-job-<id>``: private, or public where the database predates its policies.

Migration 20261207150000_private_job_channel.sql lets only the job's owner and its trainer join it
privately (RLS on ``realtime.messages``), and only the trainer track Presence and broadcast. A
database without it refuses that join ("Unauthorized: You do not have permissions to read from this
Channel topic"): there the agent and the CLI (and the panel, in JavaScript) join the public channel,
where earlier versions were, so that the database, the trainers and the UIs may be upgraded in any
order. Private and public channels of one topic are separate rooms; a trainer and a UI land in the
same one because the same database decides for both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

from realtime import AsyncRealtimeChannel, AsyncRealtimeClient, RealtimeSubscribeStates
from realtime.types import RealtimeChannelOptions

__all__ = ["POLICIES_MIGRATION", "join_job_channel"]

POLICIES_MIGRATION = "20261207150000_private_job_channel.sql"
REFUSED_JOIN = "Unauthorized"  # how Realtime's refusal of a private join for want of a read policy starts

OnState = Callable[[RealtimeSubscribeStates, Exception | None], None]


def _options(config: dict[str, Any], private: bool) -> RealtimeChannelOptions:
    return cast(RealtimeChannelOptions, {"config": {**config, "private": private}})


async def _subscribe(channel: AsyncRealtimeChannel, on_state: OnState) -> None:
    await channel.subscribe(on_state)


def _ignore(state: RealtimeSubscribeStates, error: Exception | None) -> None:
    """No state callback of the caller's own."""


async def join_job_channel(
    client: AsyncRealtimeClient,
    topic: str,
    config: dict[str, Any],
    bind: Callable[[AsyncRealtimeChannel], None],
    on_state: OnState = _ignore,
    subscribe: Callable[[AsyncRealtimeChannel, OnState], Awaitable[None]] = _subscribe,
) -> tuple[AsyncRealtimeChannel, bool]:
    """Join ``topic`` privately; where the join is refused for want of a policy, publicly.

    Args:
        client (`AsyncRealtimeClient`): the socket's client.
        topic (`str`): the job's topic (``job_topic``).
        config (`dict`): the channel's ``config`` but ``private``.
        bind (`Callable[[AsyncRealtimeChannel], None]`): registers the caller's callbacks on a new channel,
            before its join (again on the public one).
        on_state (`Callable`, *optional*): the state callback; a refused private join never reaches it, nor
            anything that channel says after (its close once left).
        subscribe (`Callable`, *optional*): how to subscribe (default: ``channel.subscribe(on_state)``).

    Returns:
        The channel, and whether it is private. How its join ended went to ``on_state``.
    """
    joining, refused = True, False

    def private_state(state: RealtimeSubscribeStates, error: Exception | None) -> None:
        nonlocal refused
        if refused:
            return
        refused = joining and state is RealtimeSubscribeStates.CHANNEL_ERROR and REFUSED_JOIN in str(error)
        if not refused:
            on_state(state, error)

    channel = client.channel(topic, _options(config, private=True))
    bind(channel)
    await subscribe(channel, private_state)
    joining = False
    if not refused:
        return channel, True
    await channel.unsubscribe()  # stops its rejoin timer; the client then makes a new channel for the topic
    public = client.channel(topic, _options(config, private=False))
    bind(public)
    await subscribe(public, on_state)
    return public, False
