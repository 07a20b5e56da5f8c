"""The server-wide state: joined channels per topic, presence, and change delivery.

Sockets call into the hub; the change poller hands it decoded changes. Delivery
is at most once: a change goes to the channels subscribed when it is rendered,
and nothing is kept for a channel that is gone.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

import psycopg

from liveparams_stack.faults import ChangesMode
from liveparams_stack.realtime.cdc import MESSAGES_TABLE, WalChange
from liveparams_stack.realtime.channel import Channel
from liveparams_stack.realtime.db_broadcast import database_broadcast
from liveparams_stack.realtime.presence import TopicPresence
from liveparams_stack.realtime.rls import ChangeRenderer, Subscriber
from liveparams_stack.realtime.routing import RoutingIndex

log = logging.getLogger(__name__)


class Hub:
    def __init__(self) -> None:
        self._rooms: dict[tuple[bool, str], set[Channel]] = defaultdict(set)
        self._presence: dict[tuple[bool, str], TopicPresence[Channel]] = defaultdict(TopicPresence)
        self._changes_mode: dict[str | None, ChangesMode] = {None: "normal"}
        self._held: list[tuple[Channel, str, dict[str, Any]]] = []
        self._routing = RoutingIndex()
        self._with_bindings: dict[Channel, None] = {}
        self._private: dict[Channel, None] = {}  # they may receive Broadcast from Database
        self.renderer: ChangeRenderer | None = None
        self.private_only = False
        """The project allows private channels only (hosted Realtime's "Allow public access" off)."""

    # Channels ------------------------------------------------------------------------------------------------

    def add(self, channel: Channel) -> None:
        self._rooms[channel.room].add(channel)
        if channel.bindings:
            self._routing.add(channel)
            self._with_bindings[channel] = None
        if channel.private:
            self._private[channel] = None

    def remove(self, channel: Channel) -> None:
        """Forget a channel that left, closed or whose socket went away; tell presence peers."""
        channel.subscribed = False
        if channel.expiry is not None:
            channel.expiry.cancel()
        peers = self._rooms.get(channel.room)
        if peers is not None:
            peers.discard(channel)
            if not peers:
                del self._rooms[channel.room]
        self.untrack(channel)
        if channel in self._with_bindings:
            del self._with_bindings[channel]
            self._routing.discard(channel)
        self._private.pop(channel, None)

    def channels(self, topic: str | None = None) -> list[Channel]:
        """Every joined channel, or those of one topic (public and private alike)."""
        return [c for peers in self._rooms.values() for c in peers if topic is None or c.topic == topic]

    def has_subscribers(self) -> bool:
        """Whether a captured change may reach anyone (the poller polls fast only then)."""
        return bool(self._private) or any(c.subscribed for c in self._with_bindings)

    # Broadcast and presence ----------------------------------------------------------------------------------

    def broadcast(self, sender: Channel, payload: dict[str, Any]) -> None:
        for peer in self._rooms.get(sender.room, ()):
            if peer is not sender or sender.broadcast_self:
                peer.fanout("broadcast", payload)

    def broadcast_to(self, room: tuple[bool, str], payload: dict[str, Any]) -> int:
        """A broadcast from no channel (the REST endpoint) to every channel of ``room``; returns how many."""
        peers = list(self._rooms.get(room, ()))
        for peer in peers:
            peer.fanout("broadcast", payload)
        return len(peers)

    def presence_state(self, channel: Channel) -> dict[str, Any]:
        return self._presence[channel.room].state()

    def track(self, channel: Channel, payload: dict[str, Any]) -> None:
        diff = self._presence[channel.room].track(channel, channel.presence_key, payload)
        self._send_presence_diff(channel.room, diff)

    def untrack(self, channel: Channel) -> None:
        presence = self._presence.get(channel.room)
        diff = presence.untrack(channel) if presence is not None else None
        if diff is not None:
            self._send_presence_diff(channel.room, diff)

    def _send_presence_diff(self, room: tuple[bool, str], diff: dict[str, Any]) -> None:
        for peer in self._rooms.get(room, ()):
            if peer.presence_enabled and peer.reads_presence:
                peer.push("presence_diff", diff)

    # Changes -------------------------------------------------------------------------------------------------

    async def deliver(self, changes: list[WalChange]) -> None:
        """Render a poll's changes for the channels they may concern, push them in order (the poller's handler).

        Only the candidates the routing index finds are rendered (and RLS checked), so a change
        for one job costs the same whether 1 or 1,000 jobs are subscribed; and the whole poll is
        rendered at once, so a change does not wait for the ones before it to be rendered one by one.
        """
        renderer = self.renderer
        if renderer is None:
            return
        # Each change in commit order, with its place in the batch to render (None: a broadcast message).
        order: list[tuple[WalChange, int | None]] = []
        batch: list[tuple[WalChange, list[Subscriber[Channel]]]] = []
        for change in changes:
            if (change.schema, change.table) == MESSAGES_TABLE:
                order.append((change, None))
                continue
            candidates = self._routing.candidates(change)
            subscribers = [Subscriber(c, c.identity.claims, c.bindings) for c in candidates if c.subscribed]
            if subscribers:
                order.append((change, len(batch)))
                batch.append((change, subscribers))
        results = await renderer.render_batch(batch) if batch else []
        for change, place in order:
            if place is None:
                self._deliver_message(change)
                continue
            result = results[place]
            if isinstance(result, psycopg.Error):
                log.warning("realtime: %s on %s.%s not delivered: %s", change.type, change.schema, change.table, result)
                continue
            for delivery in result:
                self._push_change(delivery.key, "postgres_changes", {"ids": delivery.ids, "data": delivery.data})

    def _deliver_message(self, change: WalChange) -> None:
        """Broadcast from Database: to the topic's channels; a private one only if its policy let it read broadcast."""
        broadcast = database_broadcast(change)
        if broadcast is None:
            return
        for peer in list(self._rooms.get(broadcast.room, ())):
            if not peer.private or (peer.read is not None and peer.read.broadcast):
                self._push_change(peer, "broadcast", broadcast.message)

    def _push_change(self, channel: Channel, event: str, payload: dict[str, Any]) -> None:
        """Fan a database change out (postgres_changes, or broadcast from the database) as the fault mode says."""
        mode = self.changes_mode(channel.topic)
        if mode == "hold":
            self._held.append((channel, event, payload))
        elif mode == "normal":
            channel.fanout(event, payload)

    def changes_mode(self, topic: str) -> ChangesMode:
        return self._changes_mode.get(topic, self._changes_mode[None])

    def set_changes_mode(self, mode: ChangesMode, topic: str | None) -> None:
        """hold: keep changes until the mode is normal again; drop: lose them; normal: release what was held."""
        if topic is None:
            self._changes_mode = {None: mode}
        else:
            self._changes_mode[topic] = mode
        still_held: list[tuple[Channel, str, dict[str, Any]]] = []
        for channel, event, payload in self._held:
            if self.changes_mode(channel.topic) != "normal":
                still_held.append((channel, event, payload))
            elif channel.subscribed or (event == "broadcast" and channel in self._private):
                channel.fanout(event, payload)
        self._held = still_held
