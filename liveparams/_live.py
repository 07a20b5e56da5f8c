"""A job followed live over Supabase Realtime: its changes (``watch``, ``set --wait``) and who is on its topic.

One channel on the job's topic carries the job row's updates, its requests' inserts and updates,
and the trainer's Presence (the agent tracks the key ``trainer`` there: a killed trainer's socket
closes and it leaves at once, long before its heartbeat on the job row goes stale). The channel is
private, public where the database lacks its policies, as the agent's is (``agent._job_channel``).
:func:`follow_job` reconnects after outages; the REST reads it starts from are ``liveparams._api``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from realtime import AsyncRealtimeChannel, RealtimePostgresChangesListenEvent, RealtimeSubscribeStates
from supabase import AsyncClient

from liveparams._api import (
    REQUESTS,
    RETRY_INITIAL_S,
    RETRY_MAX_S,
    TABLE,
    connect,
    fetch_job,
    fetch_last_metrics,
    fetch_requests,
)
from liveparams._client_config import ClientConfig, check_job_id
from liveparams._exceptions import Unreachable
from liveparams._views import Attachment, JobView, RequestView, summarize, trainer_attachment, trainer_in
from liveparams.agent._config import job_topic
from liveparams.agent._job_channel import join_job_channel
from liveparams.contract import OutcomeStatus

__all__ = ["attachment_now", "follow_job", "trainer_present", "wait_for_outcome", "watch_job"]

SUBSCRIBE_TIMEOUT_S = 15
TERMINAL = {status.value for status in OutcomeStatus}  # the statuses a request ends in
PRESENCE_WAIT_S = 5.0  # how long `job show` waits for the topic's Presence state


async def watch_job(
    client: AsyncClient,
    job_id: str,
    on_view: Callable[[JobView], None],
    stop: asyncio.Event,
    until_lost: bool = False,
    on_subscribed: Callable[[], None] | None = None,
) -> None:
    """Call ``on_view`` with the job now and after every change, until ``stop`` is set.

    One channel carries the job row's updates and its requests' inserts and updates
    (each event is one small row, whatever the job's history). Both are read again
    after the subscription is confirmed, so a change made while subscribing is not missed.
    With ``until_lost``, a channel that errors or closes after it was subscribed raises
    `Unreachable` instead of being left to the client's own reconnection (:func:`follow_job`).
    ``on_subscribed`` is called once the subscription is confirmed and the job re-read: only
    from then on is no change missed, which is what `watch` calls "live".
    """
    ready, lost = asyncio.Event(), asyncio.Event()
    view = JobView(job={})
    job_id = check_job_id(job_id)

    def on_job(payload: Any) -> None:
        record = payload.get("data", {}).get("record")
        if record:
            view.job = record
            on_view(view)

    def on_request(payload: Any) -> None:
        record = payload.get("data", {}).get("record")
        if record:
            view.take(record)
            on_view(view)

    def on_state(state: RealtimeSubscribeStates, error: Exception | None) -> None:
        if state == RealtimeSubscribeStates.SUBSCRIBED:
            ready.set()
        elif ready.is_set():  # CHANNEL_ERROR, TIMED_OUT or CLOSED after it was live
            lost.set()

    def on_metrics(message: Any) -> None:
        view.take_metrics(message.get("payload", {}).get("points") or [])
        on_view(view)

    async def reread() -> None:
        view.job = await fetch_job(client, job_id)
        for row in await fetch_requests(client, job_id):
            view.take(row)
        view.take_metrics([await fetch_last_metrics(client, job_id)])
        on_view(view)

    def bind(channel: AsyncRealtimeChannel) -> None:
        def on_presence() -> None:
            view.present = trainer_in(channel.presence_state())
            if view.job:
                on_view(view)

        channel.on_presence_sync(on_presence)
        channel.on_postgres_changes(
            RealtimePostgresChangesListenEvent.Update, on_job, table=TABLE, schema="public", filter=f"id=eq.{job_id}"
        )
        channel.on_postgres_changes(
            RealtimePostgresChangesListenEvent.All,
            on_request,
            table=REQUESTS,
            schema="public",
            filter=f"job_id=eq.{job_id}",
        )

    # The trainer's live metrics (docs/contracts.md): the owner's private topic; not needed to be live.
    metrics_channel = client.channel(f"job-metrics:{job_id}", {"config": {"private": True}})  # type: ignore[arg-type]
    metrics_channel.on_broadcast("metrics", on_metrics)
    await reread()
    # The job's topic, private where the database allows (the trainer's Presence is there).
    channel, _ = await join_job_channel(client.realtime, job_topic(job_id), {}, bind, on_state)
    await metrics_channel.subscribe()
    try:
        await asyncio.wait_for(ready.wait(), timeout=SUBSCRIBE_TIMEOUT_S)
    except asyncio.TimeoutError as exc:
        raise Unreachable("could not subscribe to the job's changes over Realtime") from exc
    await reread()
    if on_subscribed is not None:
        on_subscribed()
    ended = [asyncio.ensure_future(stop.wait())] + ([asyncio.ensure_future(lost.wait())] if until_lost else [])
    try:
        await asyncio.wait(ended, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in ended:
            waiter.cancel()
    if lost.is_set() and not stop.is_set():
        raise Unreachable("the live connection was lost")
    await client.remove_channel(metrics_channel)
    await client.remove_channel(channel)


async def follow_job(
    config: ClientConfig,
    job_id: str,
    on_view: Callable[[JobView], None],
    on_connection: Callable[[str | None], None],
    stop: asyncio.Event,
) -> None:
    """:func:`watch_job` that outlives outages: a fresh client after each loss, with backoff, until ``stop``.

    ``on_connection`` gets ``None`` once the subscription is confirmed (live, first and again
    after each outage) and the reason when the connection is lost (``disconnected, retrying``).
    A failure before the first connection raises, so a bad job id or an unreachable URL is one
    error, not an endless retry.
    """
    live_once, failures = False, 0

    def on_live() -> None:
        nonlocal live_once, failures
        live_once, failures = True, 0
        on_connection(None)

    while not stop.is_set():
        try:
            async with connect(config) as client:
                await watch_job(client, job_id, on_view, stop, until_lost=True, on_subscribed=on_live)
            return
        except Unreachable as exc:
            if not live_once:
                raise
            failures += 1
            on_connection(str(exc))
        delay = min(RETRY_INITIAL_S * 2 ** (failures - 1), RETRY_MAX_S)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)


async def trainer_present(client: AsyncClient, job_id: str, timeout: float = PRESENCE_WAIT_S) -> bool | None:
    """Whether a trainer is on the job's topic now; ``None`` when the topic's Presence did not arrive within
    ``timeout`` s, joining included."""
    synced = asyncio.Event()
    joined: list[AsyncRealtimeChannel] = []

    def bind(channel: AsyncRealtimeChannel) -> None:
        joined.append(channel)
        channel.on_presence_sync(synced.set)

    async def join_and_sync() -> None:
        await join_job_channel(client.realtime, job_topic(check_job_id(job_id)), {}, bind)
        await synced.wait()

    try:
        await asyncio.wait_for(join_and_sync(), timeout)
    except Exception:  # Presence is a refinement of the row's heartbeat: without it, the row answers
        return None
    finally:
        with contextlib.suppress(Exception):
            await client.remove_channel(joined[-1])
    return trainer_in(joined[-1].presence_state())


async def attachment_now(client: AsyncClient, job_id: str, presence_wait: float = PRESENCE_WAIT_S) -> Attachment:
    """Whether a trainer is attached right now, as ``job show`` tells: the job row and, where the row says attached,
    the trainer's Presence on the job's topic (a killed trainer is gone from it at once, while its heartbeat on the
    row stays recent for up to ``HEARTBEAT_STALE_S``). Presence that does not arrive within ``presence_wait`` s
    leaves the row's judgement."""
    job = await fetch_job(client, job_id)
    attachment = trainer_attachment(job)
    if not attachment.attached:
        return attachment
    return trainer_attachment(job, present=await trainer_present(client, job_id, presence_wait))


async def wait_for_outcome(client: AsyncClient, job_id: str, request_id: str, timeout: float) -> RequestView | None:
    """The request's view once it has an outcome (applied, rejected, ...), or ``None`` after ``timeout`` s."""
    found: list[RequestView] = []
    stop = asyncio.Event()

    def on_view(job: JobView) -> None:
        for view in summarize(job):
            if view.id == request_id and view.status in TERMINAL:
                found.append(view)
                stop.set()

    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(watch_job(client, job_id, on_view, stop), timeout)
    return found[0] if found else None
