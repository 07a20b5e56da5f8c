"""One Realtime subscription to the job's requests, the trainer's Presence, and an honest view of its health.

The only module that uses the ``realtime`` client (with ``_job_channel``, which joins
the job's channel). The client fails silently in ways the supervisor must see
(docs/architecture.md): it gives up after 5 reconnects, its listen task dies on a
callback exception while ``is_connected`` stays true, a stale ``phx_close`` closes a rejoined channel for good, and a
stalled socket goes unnoticed for ~40 s. :meth:`Subscription.health` reads the
client's state (private parts through ``_realtime_internals``, and does without
those an upgrade removed) and :meth:`probe` makes a round trip through the
channel, so that the supervisor can throw the whole client away and build a new
one. A ``Subscription`` is used once: open, watch, close.

The channel is the job's topic (``AgentConfig.topic``), private: only the job's owner
and its trainer may join it, and only the trainer track and broadcast; a database
without those policies refuses that join, and the agent joins the public channel
instead, as earlier versions did, and says so once (``_job_channel``). The agent tracks its
Presence there under the key ``trainer``, which is how a UI sees that a trainer
is attached right now. New requests come one of two ways (``AgentConfig.transport``):

- ``postgres_changes`` on that same channel: INSERTs of the job's rows in the requests
  table (filter ``job_id=eq.<id>``; the agent's own outcome writes are UPDATEs, so they
  never echo back), ready once the server says "Subscribed to PostgreSQL";
- ``broadcast``: a second channel, private, on ``job:<id>`` (``AgentConfig.requests_topic``),
  on the same socket, where the database broadcasts each new row as the event ``INSERT``;
  ready once that channel is joined (Realtime checked its read policy then).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from realtime import AsyncRealtimeChannel, RealtimeSubscribeStates
from realtime.types import (
    ChannelEvents,
    ChannelStates,
    RealtimeAcknowledgementStatus,
    RealtimeChannelOptions,
    RealtimePostgresChangesListenEvent,
)
from supabase import AsyncClient

from liveparams._supabase import create_client, http_client, quiet_client_logs
from liveparams.agent import _realtime_internals as internals
from liveparams.agent._config import AgentConfig, Transport
from liveparams.agent._credential import Credential
from liveparams.agent._exceptions import RestError, SubscriptionError
from liveparams.agent._job_channel import POLICIES_MIGRATION, join_job_channel
from liveparams.agent._realtime_internals import Internals
from liveparams.agent._waiting import wait_for_event
from liveparams.contract import utc_now_iso

__all__ = ["Health", "Probe", "Subscription"]

logger = logging.getLogger(__name__)

JOIN_TIMEOUT = 10  # the client's own join timeout (seconds)
CLOSE_TIMEOUT = 0.5  # a clean websocket close beyond this is cut short
# Broadcasts are acknowledged so that probe() gets a reply; nobody listens to the probe event.
# On a private channel an unauthorized broadcast gets no reply at all: the trainer's policy allows it.
PRESENCE_KEY = "trainer"
CHANNEL_CONFIG = {"broadcast": {"ack": True, "self": False}, "presence": {"key": PRESENCE_KEY, "enabled": True}}
_public_topics: set[tuple[str, str]] = set()
"""(url, topic) of the job channels this process joined publicly, so that the warning is said once."""
# Broadcast from Database on job:<id>: receive only (the topic has no send policy), no Presence.
REQUESTS_CHANNEL_OPTIONS: RealtimeChannelOptions = {
    "config": {"broadcast": {"ack": False, "self": False}, "presence": {"key": "", "enabled": False}, "private": True}
}
REQUEST_EVENT = "INSERT"  # the event realtime.broadcast_changes sends a new row as (TG_OP)
PROBE_PAYLOAD = {"type": "broadcast", "event": "liveparams-probe", "payload": {}}
OVERDUE_TICK = 0.25  # while a probe is overdue, how often the client's state is checked (seconds)
PROBE_PUSH_TIMEOUT = 3600  # the client's own timeout of a probe push: never first, probe() decides and destroys it
RECONNECT_RETRIES = 5  # the client's default; after that it gives up silently and health() says DEAD


class Health(enum.Enum):
    """What :meth:`Subscription.health` found."""

    READY = "ready"  # joined, and push delivers ("Subscribed to PostgreSQL", or the requests channel joined)
    JOINED = "joined"  # joined; waiting for "Subscribed to PostgreSQL" (or the requests channel)
    RECOVERING = "recovering"  # the client is reconnecting or rejoining on its own
    DEAD = "dead"  # the client will not recover: rebuild


class Probe(enum.Enum):
    """What became of a liveness probe (:meth:`Subscription.probe`)."""

    ANSWERED = "answered"  # within probe_timeout
    LATE = "late"  # after that: the server was behind, the channel is alive
    UNANSWERED = "unanswered"  # not recovery_grace after the server answered again, or the client died: rebuild
    SUPERSEDED = "superseded"  # the client rejoined on its own meanwhile: the reply cannot come, nor is it needed


class Subscription:
    """A fresh ``supabase`` client with one channel on the job's topic.

    Args:
        config (`AgentConfig`): the row and the key.
        on_change (`Callable[[Mapping[str, Any]], None]`): the ``postgres_changes`` callback; must never raise.
        on_broadcast (`Callable[[Mapping[str, Any]], None]`, *optional*): the callback of the requests
            broadcasts (``transport=broadcast``, where it is required); must never raise.
        on_joined (`Callable[[], None]`): called on every ``SUBSCRIBED`` (the channel is joined, push may
            still miss what is committed until the database confirms); the agent re-reads then.
        on_database_ready (`Callable[[], None]`): called on every "Subscribed to PostgreSQL", or every join of
            the requests channel (from now on push delivers); the agent re-reads, and that read makes it ready.
        credential (`Credential`, *optional*): the bearer to join with (default: ``config``'s key).
        internals (`Internals`, *optional*): which private parts of the client may be read, shared by the
            subscriptions of one agent (default: a fresh one).
        server_answered_at (`Callable[[], float | None]`, *optional*): when the server last answered one of
            the agent's REST calls (``time.monotonic()``); :meth:`probe` waits for it (see there). Without it,
            the server is taken to answer all along.
    """

    def __init__(
        self,
        config: AgentConfig,
        on_change: Callable[[Mapping[str, Any]], None],
        *,
        on_broadcast: Callable[[Mapping[str, Any]], None] | None = None,
        on_joined: Callable[[], None],
        on_database_ready: Callable[[], None],
        credential: Credential | None = None,
        internals: Internals | None = None,
        server_answered_at: Callable[[], float | None] | None = None,
    ) -> None:
        self._config = config
        self._credential = credential or Credential(config)
        self._internals = internals or Internals(config)
        self._on_change = on_change
        self._on_broadcast = on_broadcast
        self._on_joined = on_joined
        self._on_database_ready = on_database_ready
        self._server_answered_at = server_answered_at
        self._client: AsyncClient | None = None
        self._channel: AsyncRealtimeChannel | None = None
        self._requests: AsyncRealtimeChannel | None = None  # transport=broadcast only
        self._state: RealtimeSubscribeStates | None = None
        self._error: Exception | None = None
        self._confirmed = False
        self._joins = 0  # SUBSCRIBED states of the job's channel so far: a rejoin makes a pending probe moot
        self._unhealthy_since: float | None = None
        self.reason = ""  # why health() last said DEAD or RECOVERING, for the log
        self._tracking: asyncio.Task[None] | None = None
        self._attached_at = ""
        self._changed = asyncio.Event()
        """Set when the client's state may have changed: a state or system callback, its listen task ending."""
        self._watched_listener: asyncio.Task[Any] | None = None
        self._http = http_client()

    async def open(self) -> None:
        """Connect and join; raise :class:`SubscriptionError` if the join does not succeed."""
        quiet_client_logs()  # outages are the supervisor's to report, once each
        cfg = self._config
        try:
            bearer = await self._credential.bearer()
        except RestError as exc:
            raise SubscriptionError(f"no token to join with: {exc}") from exc
        self._client = await create_client(
            cfg.url,
            self._credential.api_key,
            bearer,
            schema=cfg.schema,
            realtime={"auto_reconnect": True, "max_retries": RECONNECT_RETRIES, "initial_backoff": 1.0},
            http_client=self._http,  # never used for a request: given so the client builds no TLS context of its own
        )
        realtime = self._client.realtime
        # The first connect fails fast (the supervisor owns that backoff); once connected, the client
        # may retry reconnects on its own, which rejoins quicker than a rebuild.
        realtime.max_retries = 1
        self._channel, private = await join_job_channel(
            realtime, cfg.topic, CHANNEL_CONFIG, self._bind, self._on_state, self._subscribe
        )
        if not private and (cfg.url, cfg.topic) not in _public_topics:
            _public_topics.add((cfg.url, cfg.topic))
            logger.warning(
                "Realtime refused the private job channel %s (the database lacks migration %s, or the trainer's "
                "credential was revoked): joining the public channel instead, which anyone with the project's "
                "publishable key and the job's id may join; apply the migration",
                cfg.topic,
                POLICIES_MIGRATION,
            )
        self._check_joined(self._channel)
        if cfg.transport is Transport.BROADCAST:
            assert self._on_broadcast is not None, "transport=broadcast needs on_broadcast"
            self._requests = self._client.channel(cfg.requests_topic, REQUESTS_CHANNEL_OPTIONS)
            self._requests.on_broadcast(REQUEST_EVENT, self._on_broadcast)
            await self._join(self._requests, self._on_requests_state)
        realtime.max_retries = RECONNECT_RETRIES

    def _bind(self, channel: AsyncRealtimeChannel) -> None:
        """Register the callbacks of the job's channel; the one :meth:`health` and :meth:`probe` watch from now on."""
        assert self._client is not None
        cfg = self._config
        if cfg.transport is Transport.POSTGRES_CHANGES:
            channel.on_postgres_changes(
                RealtimePostgresChangesListenEvent.Insert,
                callback=self._on_change,
                table=cfg.requests_table,
                schema=cfg.schema,
                filter=cfg.filter,
            )
        channel.on_system(self._on_system)
        self._channel = channel
        self._internals.inspect(self._client.realtime, channel)

    async def _join(
        self, channel: AsyncRealtimeChannel, on_state: Callable[[RealtimeSubscribeStates, Exception | None], None]
    ) -> None:
        """Join ``channel``; raise :class:`SubscriptionError` unless the server said yes."""
        await self._subscribe(channel, on_state)
        self._check_joined(channel)

    async def _subscribe(
        self, channel: AsyncRealtimeChannel, on_state: Callable[[RealtimeSubscribeStates, Exception | None], None]
    ) -> None:
        """Wait for the server's answer to ``channel``'s join; raise :class:`SubscriptionError` if none can come."""
        try:
            await asyncio.wait_for(channel.subscribe(on_state), JOIN_TIMEOUT + 2)
        except Exception as exc:  # connection refused, gave up, handshake timeout
            detail = self._credential.redact(f"{type(exc).__name__}: {exc}")
            raise SubscriptionError(f"could not connect to Realtime: {detail}") from exc

    def _check_joined(self, channel: AsyncRealtimeChannel) -> None:
        """Raise :class:`SubscriptionError` unless the server said yes to ``channel``'s join."""
        if self._state is not RealtimeSubscribeStates.SUBSCRIBED:
            state = self._state.value if self._state else "without a reply"
            raise SubscriptionError(self._credential.redact(f"join of {channel.topic} ended {state}: {self._error}"))

    async def set_auth(self, access_token: str) -> None:
        """Hand a refreshed token to the channel before the old one expires (the server ends it then)."""
        if self._client is not None:
            await self._client.realtime.set_auth(access_token)

    def _on_state(self, state: RealtimeSubscribeStates, error: Exception | None) -> None:
        try:
            self._changed.set()
            self._state, self._error = state, error
            if state is RealtimeSubscribeStates.SUBSCRIBED:
                self._joins += 1
                if self._config.transport is Transport.POSTGRES_CHANGES:
                    self._confirmed = False  # until "Subscribed to PostgreSQL" for this join
                self._on_joined()
                self._tracking = asyncio.get_running_loop().create_task(self._track())
            else:
                logger.debug("Realtime channel %s: %s", state.value, error)
        except Exception:  # never into the client's listen loop
            logger.exception("Realtime state callback failed")

    def _on_requests_state(self, state: RealtimeSubscribeStates, error: Exception | None) -> None:
        """The requests channel (transport=broadcast): once joined, the database's broadcasts reach it."""
        try:
            self._changed.set()
            self._state, self._error = state, error
            self._confirmed = state is RealtimeSubscribeStates.SUBSCRIBED
            if self._confirmed:
                self._on_database_ready()
            else:
                logger.debug("Realtime channel %s: %s (%s)", self._config.requests_topic, state.value, error)
        except Exception:  # never into the client's listen loop
            logger.exception("Realtime state callback failed")

    async def _track(self) -> None:
        """Announce the trainer on the job's topic (again after every join: Presence lives with the socket)."""
        channel = self._channel
        if channel is None:
            return
        self._attached_at = self._attached_at or utc_now_iso()
        try:
            await channel.track({"trainer": "attached", "since": self._attached_at})
        except Exception as exc:  # Presence is informative; push and delivery do not depend on it
            logger.debug("Could not track Presence on %s: %r", channel.topic, exc)

    def _on_system(self, payload: Any) -> None:
        try:
            self._changed.set()
            if getattr(payload, "extension", None) == "postgres_changes" and getattr(payload, "status", None) == "ok":
                self._confirmed = True
                self._on_database_ready()
        except Exception:
            logger.exception("Realtime system callback failed")

    async def wait_for_change(self, timeout: float) -> None:
        """Sleep until the client's state may have changed or ``timeout`` passes, so an idle agent does not wake.

        The client tells every channel of a dropped socket (``CHANNEL_ERROR``), a close and a rejoin
        through the state callback; a listen task that ends is watched here. A socket that goes
        silent without closing is the probe's to find.
        """
        if self._client is not None and self._internals.sees(internals.LISTEN_TASK):
            listener = internals.listen_task(self._client.realtime)
            if listener is not None and listener is not self._watched_listener:
                self._watched_listener = listener
                listener.add_done_callback(lambda _: self._changed.set())
        await wait_for_event(self._changed, max(timeout, 0.0))
        self._changed.clear()

    def health(self) -> Health:
        """Classify the client's state; cheap, called every supervisor tick."""
        assert self._client is not None and self._channel is not None, "open() first"
        realtime, channel = self._client.realtime, self._channel
        if self._internals.sees(internals.LISTEN_TASK):  # else a dead listener is left to probe()
            listen_task = internals.listen_task(realtime)
            if listen_task is None or listen_task.done():
                if realtime.is_connected:
                    return self._dead("the client stopped reading the socket (its listen task ended)")
                # Reconnects run inside the listen task; when it has ended unconnected, the client gave up.
                return self._dead("the client gave up reconnecting")
        channels = [channel] if self._requests is None else [channel, self._requests]
        for joined in channels:
            if joined.state is ChannelStates.CLOSED or realtime.channels.get(joined.topic) is not joined:
                return self._dead(
                    f"the channel {joined.topic} was closed ({self._state and self._state.value}: {self._error})"
                )
        unjoined = [joined for joined in channels if joined.state is not ChannelStates.JOINED]
        if realtime.is_connected and not unjoined:
            self._unhealthy_since = None
            return Health.READY if self._confirmed else Health.JOINED
        now = time.monotonic()
        if self._unhealthy_since is None:
            self._unhealthy_since = now
        what = "reconnecting" if not realtime.is_connected else f"channel {unjoined[0].state.value}"
        if now - self._unhealthy_since > self._config.recovery_grace:
            return self._dead(f"the client did not recover within {self._config.recovery_grace:g}s ({what})")
        self.reason = what
        return Health.RECOVERING

    def _server_answering(self, since: float) -> float | None:
        """When the server was first seen answering REST at or after ``since`` (``since`` where nothing says)."""
        if self._server_answered_at is None:
            return since
        at = self._server_answered_at()
        return at if at is not None and at >= since else None

    def _dead(self, reason: str) -> Health:
        self.reason = reason
        return Health.DEAD

    async def probe(self, on_overdue: Callable[[str], None]) -> Probe:
        """Round-trip a broadcast with ``ack`` through the channel, and say when (if ever) it was answered.

        A websocket ping is not enough: a server (or proxy) can answer pings while its channel
        process is wedged, and the client itself never checks heartbeat replies. A reply to an
        acknowledged broadcast proves the socket, the server and our channel are all alive.

        No reply within ``probe_timeout`` means push cannot be trusted: ``on_overdue`` is told
        why (the agent polls over REST from then on). The socket is kept for a late reply,
        because a server that was paused or is working through a backlog answers in the order
        it reads: every trainer on it sees its probe go unanswered at about the same time, and
        a rebuild from each would add a new socket, a join and a Presence track to the very
        backlog they wait on (docs/benchmarks.md, "a frozen front"). So the channel is given up
        only once the server is seen answering (``server_answered_at``: when one of the agent's
        REST calls last got a result or a refusal) and the probe is still unanswered
        ``recovery_grace`` after that: a server that answers nothing would not answer a new
        socket either. Once the server answers, a second probe goes out on the same socket: a
        server that dropped the first without a reply (Realtime does so when it cannot check the
        channel's write policy, e.g. with its database pool backlogged) answers the second, and
        push is back without a new socket, join and Presence track. The wait also ends when the
        client is found dead (``UNANSWERED``) or has rejoined on its own (``SUPERSEDED``: a socket
        whose pings go unanswered is closed by the client within 40 s, and the reply cannot come
        on the new one, whose join vouches for it).
        """
        cfg = self._config
        channel = self._channel
        if channel is None or not channel.is_joined:
            return Probe.ANSWERED  # not joined: health() covers it
        answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def settle(*_: object) -> None:
            if not answered.done():
                answered.set_result(None)

        async def send() -> None:
            push = await channel.push(ChannelEvents.broadcast, PROBE_PAYLOAD, timeout=PROBE_PUSH_TIMEOUT)
            push.receive(RealtimeAcknowledgementStatus.Ok, settle).receive(RealtimeAcknowledgementStatus.Error, settle)
            destroys.append(push.destroy)

        destroys: list[Callable[[], None]] = []
        sent, joins = time.monotonic(), self._joins
        await send()
        try:
            done, _ = await asyncio.wait({answered}, timeout=cfg.probe_timeout)
            if done:
                return Probe.ANSWERED
            self.reason = f"the socket stalled (no reply to a probe within {cfg.probe_timeout:g}s)"
            on_overdue(self.reason)
            overdue_at = time.monotonic()
            answering_since: float | None = None  # the server's first answer after the probe fell overdue
            while True:
                done, _ = await asyncio.wait({answered}, timeout=OVERDUE_TICK)
                if done:
                    return Probe.LATE
                if self.health() is Health.DEAD:
                    return Probe.UNANSWERED
                if self._joins != joins:
                    return Probe.SUPERSEDED
                if answering_since is None:
                    answering_since = self._server_answering(overdue_at)
                    if answering_since is not None:
                        await send()  # the server answers again: ask once more, in case it dropped the first
                now = time.monotonic()
                if answering_since is not None and now - answering_since > cfg.recovery_grace:
                    self.reason = (
                        f"the channel stalled (no reply to a probe in {now - sent:.0f}s, "
                        f"{cfg.recovery_grace:g}s of them while the server answered over REST)"
                    )
                    return Probe.UNANSWERED
        finally:
            for destroy in destroys:
                destroy()

    async def close(self) -> None:
        """Drop the client: stop its timers, close the socket, and cut it if the close handshake hangs."""
        await self._http.aclose()  # it never opened a connection: closing it waits on nothing
        client, self._client = self._client, None
        if client is None:
            return
        realtime = client.realtime
        ws = internals.websocket(realtime) if self._internals.sees(internals.WEBSOCKET) else None
        realtime.auto_reconnect = False
        if self._tracking is not None:
            self._tracking.cancel()
        if self._internals.sees(internals.REJOIN_TIMER, internals.REJOIN_TIMER_RESET, internals.JOIN_PUSH):
            for channel in list(realtime.channels.values()):
                internals.stop_rejoining(channel)
        try:
            await asyncio.wait_for(realtime.close(), CLOSE_TIMEOUT)
        except Exception as exc:
            logger.debug("Realtime close did not finish cleanly: %r", exc)
        finally:  # also when cancelled (close() at shutdown), else the socket outlives the agent
            internals.abort_socket(ws)  # no-op when already closed; frees the socket of a stalled peer
