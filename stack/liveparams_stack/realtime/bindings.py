"""The ``postgres_changes`` bindings of a channel join, with the ids the server echoes."""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Any

from liveparams_stack.realtime.filters import Filter, FilterError, parse_filter

EVENTS = ("*", "INSERT", "UPDATE", "DELETE")
_ID_SPACE = 2**27


class BindingError(ValueError):
    """A binding the server refuses; the message goes into the ``system`` error."""


def binding_id(entry: dict[str, Any]) -> int:
    """Stable id for an entry, like ``:erlang.phash2/1``: deterministic, 1 ≤ id < 2^27.

    Never 0: the Python client's dispatch tests ``if self.id`` and would drop it.
    """
    digest = zlib.crc32(json.dumps(entry, sort_keys=True, separators=(",", ":")).encode())
    return digest % _ID_SPACE or 1


@dataclass(frozen=True)
class Binding:
    """One ``postgres_changes`` entry: what it asks for and the id it is answered with."""

    entry: dict[str, Any]
    id: int
    event: str
    schema: str
    table: str
    filter: Filter | None

    @classmethod
    def from_entry(cls, entry: dict[str, Any]) -> Binding:
        event = entry.get("event")
        if event not in EVENTS:
            raise BindingError(f"Unable to subscribe: event must be one of {', '.join(EVENTS)}, got {event!r}")
        try:
            parsed_filter = parse_filter(entry.get("filter"))
        except FilterError as exc:
            raise BindingError(str(exc)) from exc
        return cls(
            entry=entry,
            id=binding_id(entry),
            event=event,
            schema=entry.get("schema") or "public",
            table=entry.get("table") or "*",
            filter=parsed_filter,
        )

    def reply_entry(self) -> dict[str, Any]:
        """The entry echoed in the join reply: every key as received, plus ``id``."""
        return {**self.entry, "id": self.id}

    def covers(self, schema: str, table: str) -> bool:
        return self.schema in ("*", schema) and self.table in ("*", table)

    def wants(self, change_type: str) -> bool:
        return self.event in ("*", change_type)

    def describe(self) -> str:
        """Parameters as the real server lists them in its "Unable to subscribe" message."""
        filters = f'["{self.entry["filter"]}"]' if self.entry.get("filter") else "[]"
        return f"[event: {self.event}, schema: {self.schema}, table: {self.table}, filters: {filters}]"
