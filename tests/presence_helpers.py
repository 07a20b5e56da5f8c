"""Presence on a job's Realtime topic (``liveparams-job-<id>``) as one user sees it, through the official client.

``presence_watch`` joins (privately or not) and keeps what Presence shows; ``tracked`` does the
same from a thread of its own and tracks a ``trainer``, for tests that drive a browser meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from realtime import AsyncRealtimeChannel, RealtimeSubscribeStates

from liveparams._supabase import create_client
from liveparams.agent._config import job_topic

WAIT_S = 20.0
TRAINER_PRESENCE = {"trainer": "attached", "since": "2026-12-07T15:00:00Z"}  # what an agent tracks

Present = dict[str, list[dict[str, Any]]]


@dataclass
class PresenceWatch:
    """A client on a job's topic, as one user: how its join ended, and the Presence it sees now."""

    channel: AsyncRealtimeChannel
    joined: tuple[RealtimeSubscribeStates, Exception | None]
    present: Present = field(default_factory=dict)

    async def wait_for(self, predicate: Callable[[Present], bool], timeout: float = WAIT_S) -> bool:
        for _ in range(int(timeout / 0.05)):
            if predicate(self.present):
                return True
            await asyncio.sleep(0.05)
        return predicate(self.present)


@contextlib.asynccontextmanager
async def presence_watch(
    stack_env: dict[str, str], bearer: str, job_id: str, *, private: bool, track: dict[str, Any] | None = None
) -> AsyncIterator[PresenceWatch]:
    """Join ``job_id``'s topic with ``bearer`` (the anon key: no user), privately or not, watching Presence;
    once joined, ``track`` (if given) under the key ``trainer``, as a trainer would."""
    client = await create_client(stack_env["API_URL"], stack_env["ANON_KEY"], bearer)
    config = {"private": private, "presence": {"key": "trainer", "enabled": True}}
    channel = client.channel(job_topic(job_id), {"config": config})  # type: ignore[typeddict-item]
    states: list[tuple[RealtimeSubscribeStates, Exception | None]] = []
    watch = PresenceWatch(channel, (RealtimeSubscribeStates.TIMED_OUT, None))

    def synced() -> None:
        watch.present = {key: list(metas) for key, metas in channel.presence.state.items()}

    channel.on_presence_sync(synced)
    await channel.subscribe(lambda state, error: states.append((state, error)))
    watch.joined = states[0] if states else watch.joined
    try:
        if track is not None and watch.joined[0] is RealtimeSubscribeStates.SUBSCRIBED:
            await channel.track(track)
        yield watch
    finally:
        await client.realtime.close()


@contextlib.contextmanager
def tracked(
    stack_env: dict[str, str], bearer: str, job_id: str, *, private: bool, track: dict[str, Any]
) -> Iterator[PresenceWatch]:
    """:func:`presence_watch` with ``track``, held by a thread of its own until the block ends."""
    joined = threading.Event()
    held: list[PresenceWatch] = []
    stop: list[Callable[[], None]] = []

    async def hold() -> None:
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        stop.append(lambda: loop.call_soon_threadsafe(done.set))
        async with presence_watch(stack_env, bearer, job_id, private=private, track=track) as watch:
            held.append(watch)
            joined.set()
            await done.wait()

    thread = threading.Thread(target=asyncio.run, args=(hold(),), daemon=True)
    thread.start()
    try:
        assert joined.wait(WAIT_S), "the join did not end"
        yield held[0]
    finally:
        if stop:
            stop[0]()
        thread.join(WAIT_S)


def sees_a_trainer(stack_env: dict[str, str], bearer: str, job_id: str, *, private: bool) -> bool:
    """Whether ``bearer`` joining the job's topic (privately or not) sees a ``trainer`` there within ``WAIT_S``."""

    async def watch() -> bool:
        async with presence_watch(stack_env, bearer, job_id, private=private) as watching:
            return await watching.wait_for(lambda present: "trainer" in present)

    return asyncio.run(watch())
