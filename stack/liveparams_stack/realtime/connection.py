"""One WebSocket connection speaking the Phoenix channel protocol (the ``UserSocket`` side)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from liveparams_stack.realtime.auth import AuthError, Identity, is_opaque_key, verify
from liveparams_stack.realtime.bindings import Binding, BindingError
from liveparams_stack.realtime.channel import Channel
from liveparams_stack.realtime.hub import Hub
from liveparams_stack.realtime.policies import ChannelAuthorizer, ReadPolicies, revoked, unauthorized
from liveparams_stack.realtime.serializers import FrameError, Message, Serializer

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 1024 * 1024 - 1024
"""Frames stay under the Python client's 1 MiB ``max_size`` (a larger one kills its socket with 1009)."""
OUTBOX_LIMIT = 4096


@dataclass(frozen=True)
class SocketContext:
    """What every connection shares: the hub, the JWT secret and the subscription checks."""

    hub: Hub
    jwt_secret: str
    check_bindings: Callable[[tuple[Binding, ...], str], Awaitable[str | None]]
    """Returns the ``system`` error for bindings a role cannot subscribe with, or None."""
    sync_poller: Callable[[], Awaitable[None]]
    """Returns once the change poller decodes every table published now."""
    authorizer: ChannelAuthorizer


class Connection:
    """Reads frames, dispatches them per event, and writes replies and pushes through one ordered outbox."""

    def __init__(self, ws: web.WebSocketResponse, serializer: Serializer, ctx: SocketContext, apikey: Identity) -> None:
        self.ws = ws
        self.channels: dict[str, Channel] = {}
        self._serializer = serializer
        self._ctx = ctx
        self._apikey = apikey
        self._outbox: asyncio.Queue[Message] = asyncio.Queue(OUTBOX_LIMIT)
        self._running = asyncio.Event()
        self._running.set()
        self._tasks: set[asyncio.Task[None]] = set()

    # Outbox --------------------------------------------------------------------------------------------------

    def send(self, message: Message) -> None:
        """Queue a frame; dropped while stalled (a stalled peer sees nothing, like a dead network)."""
        if not self._running.is_set() or self.ws.closed:
            return
        try:
            self._outbox.put_nowait(message)
        except asyncio.QueueFull:
            log.warning("realtime: client too slow, closing its socket")
            self._spawn(self.close(1011))

    async def _write(self) -> None:
        while True:
            message = await self._outbox.get()
            frame = self._serializer.encode(message)
            if len(frame) > MAX_FRAME_BYTES:
                log.warning("realtime: %s frame on %s is %d bytes; not sent", message.event, message.topic, len(frame))
                continue
            if isinstance(frame, bytes):
                await self.ws.send_bytes(frame)
            else:
                await self.ws.send_str(frame)

    # Lifecycle -----------------------------------------------------------------------------------------------

    async def serve(self) -> None:
        writer = asyncio.create_task(self._write())
        try:
            while not self.ws.closed:
                await self._running.wait()
                frame = await self.ws.receive()
                if frame.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                    break
                await self._running.wait()  # a frame that arrived as the socket stalled waits, as unread ones do
                try:
                    if frame.type == WSMsgType.TEXT:
                        message = self._serializer.decode_text(frame.data)
                    elif frame.type == WSMsgType.BINARY:
                        message = self._serializer.decode_binary(frame.data)
                    else:
                        continue
                except FrameError as exc:
                    log.info("realtime: dropped a client frame: %s", exc)
                    continue
                await self._dispatch(message)
        finally:
            writer.cancel()
            for task in self._tasks:
                task.cancel()
            for channel in self.channels.values():
                self._ctx.hub.remove(channel)
            self.channels.clear()

    async def close(self, code: int, reason: str = "") -> None:
        self._running.set()  # a stalled socket must still be closable
        await self.ws.close(code=code, message=reason.encode())

    def stall(self) -> None:
        """Stop reading and writing without closing: pings go unanswered, pushes are lost, what comes in waits."""
        self._running.clear()
        while not self._outbox.empty():
            self._outbox.get_nowait()

    def unstall(self) -> None:
        self._running.set()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # Dispatch ------------------------------------------------------------------------------------------------

    async def _dispatch(self, msg: Message) -> None:
        if msg.topic == "phoenix" and msg.event == "heartbeat":
            self._reply(msg, "ok", {})
        elif msg.event == "phx_join":
            await self._join(msg)
        elif msg.event == "phx_leave":
            self._leave(msg)
        elif msg.topic not in self.channels:
            self._reply(msg, "error", {"reason": "unmatched topic"})
        elif msg.event == "access_token":
            await self._access_token(self.channels[msg.topic], msg)
        elif msg.event == "broadcast":
            await self._broadcast(self.channels[msg.topic], msg)
        elif msg.event == "presence":
            await self._presence(self.channels[msg.topic], msg)
        else:
            log.info("realtime: ignored event %r on %s", msg.event, msg.topic)

    def _reply(self, msg: Message, status: str, response: dict[str, Any]) -> None:
        payload = {"status": status, "response": response}
        self.send(Message(msg.topic, "phx_reply", payload, ref=msg.ref, join_ref=msg.join_ref))

    def _identity_for(self, token: Any) -> Identity:
        """The join's ``access_token``; absent or an ``sb_`` key means the socket's apikey."""
        if not isinstance(token, str) or not token or is_opaque_key(token):
            return self._apikey
        return verify(token, self._ctx.jwt_secret)

    async def _join(self, msg: Message) -> None:
        if not msg.topic.startswith("realtime:") or msg.topic == "realtime:":
            self._reply(msg, "error", {"reason": "TopicNameRequired: You must provide a topic name"})
            return
        config = msg.payload.get("config") or {}
        if not config.get("private") and self._ctx.hub.private_only:  # realtime_channel.ex only_private?, first
            self._reply(msg, "error", {"reason": "PrivateOnly: This project only allows private channels"})
            return
        try:
            identity = self._identity_for(msg.payload.get("access_token") or msg.payload.get("user_token"))
            bindings = tuple(Binding.from_entry(e) for e in config.get("postgres_changes") or ())
        except (AuthError, BindingError) as exc:
            self._reply(msg, "error", {"reason": str(exc)})
            return
        broadcast = config.get("broadcast") or {}
        presence = config.get("presence") or {}
        private = bool(config.get("private"))
        sub_topic = msg.topic.removeprefix("realtime:")
        read: ReadPolicies | None = None
        if private:  # never joined unchecked: RLS on realtime.messages decides, before anything else
            read = await self._ctx.authorizer.can_read(sub_topic, identity, bool(presence.get("enabled")))
            if not read.any:
                log.info("realtime: private join of %r refused by its policies", sub_topic)
                self._reply(msg, "error", {"reason": f"Unauthorized: {unauthorized(sub_topic)}"})
                return
        previous = self.channels.get(msg.topic)
        if previous is not None:  # a rejoin of a topic still joined: the old join is shut down silently
            self._ctx.hub.remove(previous)
        channel = Channel(
            topic=msg.topic,
            join_ref=msg.join_ref or msg.ref,
            outbox=self,
            identity=identity,
            bindings=bindings,
            private=private,
            read=read,
            broadcast_self=bool(broadcast.get("self")),
            broadcast_ack=bool(broadcast.get("ack")),
            presence_enabled=bool(presence.get("enabled")),
            superseded_join_ref=previous.join_ref if previous else None,
        )
        if presence.get("key"):
            channel.presence_key = str(presence["key"])
        self.channels[msg.topic] = channel
        self._ctx.hub.add(channel)
        self._watch_expiry(channel)
        channel.reply(msg.ref, "ok", {"postgres_changes": [b.reply_entry() for b in bindings]})
        if channel.presence_enabled and channel.reads_presence:
            channel.push("presence_state", self._ctx.hub.presence_state(channel))
        if bindings:
            self._spawn(self._subscribe(channel))

    async def _subscribe(self, channel: Channel) -> None:
        """After the reply, like the real server: check the bindings, then "Subscribed to PostgreSQL"."""
        error = await self._ctx.check_bindings(channel.bindings, channel.identity.role)
        if error is None:
            await self._ctx.sync_poller()
        if self.channels.get(channel.topic) is not channel:
            return
        if error is not None:
            channel.system("postgres_changes", "error", error)
            return
        channel.subscribed = True
        channel.system("postgres_changes", "ok", "Subscribed to PostgreSQL")

    def _leave(self, msg: Message) -> None:
        channel = self.channels.pop(msg.topic, None)
        self._reply(msg, "ok", {})
        if channel is not None:
            self._ctx.hub.remove(channel)
            channel.close()

    def drop_channel(self, channel: Channel) -> None:
        """Stop a channel server-side (crash, expired token) without a leave from the client."""
        if self.channels.get(channel.topic) is channel:
            del self.channels[channel.topic]
        self._ctx.hub.remove(channel)

    def end_channel(self, channel: Channel, message: str) -> None:
        """What the real server does when a channel's token is refused or expires: system error, ``phx_close``."""
        channel.system("system", "error", message)
        channel.close()
        self.drop_channel(channel)

    def _watch_expiry(self, channel: Channel) -> None:
        """End the channel when its token expires, as the real server's periodic check does."""
        if channel.expiry is not None:
            channel.expiry.cancel()
        seconds = channel.identity.seconds_until_expiry()
        if seconds is not None:
            channel.expiry = asyncio.get_running_loop().call_later(max(seconds, 0.0), self._expired, channel)

    def _expired(self, channel: Channel) -> None:
        if self.channels.get(channel.topic) is channel:
            self.end_channel(channel, "Token has expired 0 seconds ago")

    async def _access_token(self, channel: Channel, msg: Message) -> None:
        """No reply, like the real server; a bad token, or one that loses read on a private channel, ends it."""
        token = msg.payload.get("access_token")
        if not isinstance(token, str) or not token or is_opaque_key(token):
            return
        try:
            channel.identity = verify(token, self._ctx.jwt_secret)
        except AuthError as exc:
            self.end_channel(channel, exc.message)
            return
        channel.broadcast_write = channel.presence_write = None  # policies are evaluated again for the new claims
        if channel.private and channel.read is not None:
            read = await self._ctx.authorizer.can_read(channel.name, channel.identity, channel.presence_enabled)
            if not read.any or channel.read.lost_by(read):
                self.end_channel(channel, unauthorized(channel.name) if not read.any else revoked(channel.name))
                return
            channel.read = read
        self._watch_expiry(channel)

    async def _broadcast(self, channel: Channel, msg: Message) -> None:
        """A private channel broadcasts only with its write policy; refused, or not checked, nothing is sent and
        nothing replied. A refusal is kept for the channel's life; a check that could not run is made again."""
        if channel.private:
            if channel.broadcast_write is None:
                authorizer = self._ctx.authorizer
                channel.broadcast_write = await authorizer.can_write(channel.name, channel.identity, "broadcast")
            if not channel.broadcast_write:
                return
        self._ctx.hub.broadcast(channel, msg.payload)
        if channel.broadcast_ack:
            self._reply(msg, "ok", {})

    async def _may_track(self, channel: Channel) -> bool:
        """A private channel tracks presence only with its presence write policy (read is evaluated too, if not yet)."""
        authorizer = self._ctx.authorizer
        if channel.read is not None and not channel.presence_enabled and not channel.read.presence:
            read = await authorizer.can_read(channel.name, channel.identity, presence=True)
            channel.read = ReadPolicies(broadcast=channel.read.broadcast, presence=read.presence)
        if channel.presence_write is None:
            channel.presence_write = await authorizer.can_write(channel.name, channel.identity, "presence")
        return bool(channel.presence_write)

    async def _presence(self, channel: Channel, msg: Message) -> None:
        event = msg.payload.get("event")
        if event == "track" and channel.private and not await self._may_track(channel):
            self._reply(msg, "error", {})
            return
        if event == "track":
            payload = msg.payload.get("payload")
            if not isinstance(payload, dict):
                self._reply(msg, "error", {"reason": "Presence track payload must be a map"})
                return
            self._ctx.hub.track(channel, payload)
        elif event == "untrack":
            self._ctx.hub.untrack(channel)
        self._reply(msg, "ok", {})
