"""A joined channel: its topic, join ref, identity and join config."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from liveparams_stack.realtime.auth import Identity
from liveparams_stack.realtime.bindings import Binding
from liveparams_stack.realtime.policies import ReadPolicies
from liveparams_stack.realtime.serializers import Message


class Outbox(Protocol):
    """Where a channel's frames go (the socket connection)."""

    def send(self, message: Message) -> None: ...


@dataclass(eq=False)
class Channel:
    """One ``phx_join`` that succeeded; identity-compared, so it can key dicts and sets."""

    topic: str
    join_ref: str | None
    outbox: Outbox
    identity: Identity
    bindings: tuple[Binding, ...] = ()
    private: bool = False
    """Joined with ``config.private``: authorized by RLS on ``realtime.messages``; a room apart from the public one."""
    read: ReadPolicies | None = None
    """A private channel's read policies under its current token."""
    broadcast_write: bool | None = None
    """A private channel's broadcast write policy, checked at its first broadcast (None: not yet)."""
    presence_write: bool | None = None
    """A private channel's presence write policy, checked at its first track (None: not yet)."""
    broadcast_self: bool = False
    broadcast_ack: bool = False
    presence_enabled: bool = False
    presence_key: str = field(default_factory=lambda: str(uuid.uuid4()))
    subscribed: bool = False
    """True once "Subscribed to PostgreSQL" went out: only then does it receive changes."""
    expiry: asyncio.TimerHandle | None = None
    """Ends the channel when its token expires; cancelled when the channel goes."""
    superseded_join_ref: str | None = None
    """The join ref of the join this one replaced on the same socket (for a stale ``phx_close``)."""

    @property
    def room(self) -> tuple[bool, str]:
        """Who hears this channel's broadcasts and presence: the same topic *and* the same privacy."""
        return (self.private, self.topic)

    @property
    def reads_presence(self) -> bool:
        """Whether presence state and diffs reach this channel: always on a public one, by policy on a private one."""
        return not self.private or (self.read is not None and self.read.presence)

    @property
    def name(self) -> str:
        """The sub-topic, as the ``system`` message's ``channel`` field carries it."""
        return self.topic.removeprefix("realtime:")

    def push(self, event: str, payload: dict[str, Any]) -> None:
        """A server push tied to this join (system, presence, close, error)."""
        self.outbox.send(Message(self.topic, event, payload, ref=None, join_ref=self.join_ref))

    def fanout(self, event: str, payload: dict[str, Any]) -> None:
        """A fan-out message (broadcast, postgres_changes): no ref, no join ref."""
        self.outbox.send(Message(self.topic, event, payload))

    def reply(self, ref: str | None, status: str, response: dict[str, Any]) -> None:
        self.outbox.send(
            Message(self.topic, "phx_reply", {"status": status, "response": response}, ref=ref, join_ref=self.join_ref)
        )

    def close(self, stale: bool = False) -> None:
        """``phx_close`` with ``ref`` = the join ref, as Phoenix sends when a channel stops.

        ``stale`` sends it for the join this one superseded instead (a "0" ref if none):
        what Phoenix emits after a duplicate join. JS drops it; Python 2.34 closes the channel.
        """
        ref = (self.superseded_join_ref or "0") if stale else self.join_ref
        self.outbox.send(Message(self.topic, "phx_close", {}, ref=ref, join_ref=ref))

    def error(self, payload: dict[str, Any]) -> None:
        """``phx_error`` (a channel crash), ``ref`` = the join ref."""
        self.outbox.send(Message(self.topic, "phx_error", payload, ref=self.join_ref, join_ref=self.join_ref))

    def system(self, extension: str, status: str, message: str) -> None:
        self.push("system", {"channel": self.name, "extension": extension, "message": message, "status": status})
