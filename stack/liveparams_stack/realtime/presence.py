"""Presence per topic: who tracks what, and the ``presence_state``/``presence_diff`` payloads."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

K = TypeVar("K")
Diff = dict[str, dict[str, dict[str, list[dict[str, Any]]]]]


def _phx_ref() -> str:
    """Opaque per-meta reference; the Python client pops it from every meta and fails without it."""
    return secrets.token_urlsafe(12)


@dataclass
class _Entry:
    key: str
    meta: dict[str, Any]


@dataclass
class TopicPresence(Generic[K]):
    """The tracked metas of one topic, one per tracking channel (``K`` identifies a channel)."""

    entries: dict[K, _Entry] = field(default_factory=dict)

    def state(self) -> dict[str, dict[str, list[dict[str, Any]]]]:
        out: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for entry in self.entries.values():
            out.setdefault(entry.key, {"metas": []})["metas"].append(entry.meta)
        return out

    def track(self, channel: K, key: str, payload: dict[str, Any]) -> Diff:
        """Track (or update) ``channel``'s meta; returns the diff to broadcast."""
        previous = self.entries.get(channel)
        meta = {**payload, "phx_ref": _phx_ref()}
        if previous is not None:
            meta["phx_ref_prev"] = previous.meta["phx_ref"]
        self.entries[channel] = _Entry(key, meta)
        leaves = {previous.key: {"metas": [previous.meta]}} if previous is not None else {}
        return {"joins": {key: {"metas": [meta]}}, "leaves": leaves}

    def untrack(self, channel: K) -> Diff | None:
        """Forget ``channel``'s meta; returns the diff, or None when it tracked nothing."""
        previous = self.entries.pop(channel, None)
        if previous is None:
            return None
        return {"joins": {}, "leaves": {previous.key: {"metas": [previous.meta]}}}
