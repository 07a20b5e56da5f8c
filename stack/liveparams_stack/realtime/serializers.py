"""Phoenix frame (de)serialisation for the two socket versions the server speaks.

vsn 1.0.0 (the Python client): one JSON object per text frame; the server never
sends ``join_ref`` (Phoenix's V1 encoder drops it). vsn 2.0.0 (supabase-js):
JSON arrays ``[join_ref, ref, topic, event, payload]`` plus binary user
broadcasts, kind 3 from the client and kind 4 to it.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any, Protocol

# Binary frame kinds of the Realtime V2 codec.
USER_BROADCAST_PUSH = 3
USER_BROADCAST = 4
JSON_ENCODING = 1


class FrameError(ValueError):
    """A client frame that is not a valid Phoenix message."""


@dataclass(frozen=True)
class Message:
    """One Phoenix message, independent of how it travels."""

    topic: str
    event: str
    payload: dict[str, Any] = field(default_factory=dict)
    ref: str | None = None
    join_ref: str | None = None


class Serializer(Protocol):
    """Turns frames into messages and back for one socket version."""

    def decode_text(self, data: str) -> Message: ...

    def decode_binary(self, data: bytes) -> Message: ...

    def encode(self, message: Message) -> str | bytes: ...


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _as_ref(value: Any) -> str | None:
    """Refs are strings on the wire; JS may send numbers, Python sends null for heartbeats."""
    return None if value is None else str(value)


def _parse_json(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise FrameError(f"invalid JSON: {exc}") from exc


def _checked(topic: Any, event: Any, payload: Any, ref: Any, join_ref: Any) -> Message:
    if not isinstance(topic, str) or not isinstance(event, str):
        raise FrameError("topic and event must be strings")
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise FrameError("payload must be an object")
    return Message(topic=topic, event=event, payload=payload, ref=_as_ref(ref), join_ref=_as_ref(join_ref))


class V1Serializer:
    """``Phoenix.Socket.V1.JSONSerializer``: objects, no ``join_ref`` on output."""

    def decode_text(self, data: str) -> Message:
        obj = _parse_json(data)
        if not isinstance(obj, dict):
            raise FrameError("a vsn 1.0.0 frame must be a JSON object")
        return _checked(obj.get("topic"), obj.get("event"), obj.get("payload"), obj.get("ref"), obj.get("join_ref"))

    def decode_binary(self, data: bytes) -> Message:
        raise FrameError("vsn 1.0.0 sockets carry no binary frames")

    def encode(self, message: Message) -> str:
        return _dumps({"topic": message.topic, "event": message.event, "payload": message.payload, "ref": message.ref})


class V2Serializer:
    """``RealtimeWeb.Socket.V2Serializer``: arrays, and binary user broadcasts."""

    def decode_text(self, data: str) -> Message:
        arr = _parse_json(data)
        if not isinstance(arr, list) or len(arr) != 5:
            raise FrameError("a vsn 2.0.0 frame must be [join_ref, ref, topic, event, payload]")
        join_ref, ref, topic, event, payload = arr
        return _checked(topic, event, payload, ref, join_ref)

    def decode_binary(self, data: bytes) -> Message:
        """Decode kind 3 (USER_BROADCAST_PUSH) into the JSON broadcast message it stands for."""
        if len(data) < 7 or data[0] != USER_BROADCAST_PUSH:
            raise FrameError("only binary kind 3 (user broadcast push) is accepted")
        join_ref_len, ref_len, topic_len, event_len, meta_len, encoding = struct.unpack_from("6B", data, 1)
        pos = 7
        parts = []
        for length in (join_ref_len, ref_len, topic_len, event_len, meta_len):
            parts.append(data[pos : pos + length].decode())
            pos += length
        join_ref, ref, topic, user_event, _metadata = parts
        if encoding != JSON_ENCODING:
            raise FrameError("binary broadcast payloads are not supported by the local stack")
        try:
            user_payload = json.loads(data[pos:])
        except ValueError as exc:
            raise FrameError(f"invalid JSON broadcast payload: {exc}") from exc
        payload = {"type": "broadcast", "event": user_event, "payload": user_payload}
        return _checked(topic, "broadcast", payload, ref or None, join_ref or None)

    def encode(self, message: Message) -> str | bytes:
        if message.event == "broadcast" and message.ref is None and isinstance(message.payload.get("event"), str):
            return self._encode_user_broadcast(message)
        return _dumps([message.join_ref, message.ref, message.topic, message.event, message.payload])

    @staticmethod
    def _encode_user_broadcast(message: Message) -> bytes:
        """Kind 4, what the real server fans user broadcasts out as to V2 sockets."""
        topic = message.topic.encode()
        event = str(message.payload["event"]).encode()
        meta = message.payload.get("meta")
        metadata = _dumps(meta).encode() if meta else b""
        body = _dumps(message.payload.get("payload", {})).encode()
        header = struct.pack("5B", USER_BROADCAST, len(topic), len(event), len(metadata), JSON_ENCODING)
        return header + topic + event + metadata + body


def serializer_for(vsn: str | None) -> Serializer | None:
    """The serializer for a ``vsn`` query value (absent means 1.0.0), or None when unsupported."""
    if vsn is None or vsn.startswith("1."):
        return V1Serializer()
    if vsn.startswith("2."):
        return V2Serializer()
    return None
