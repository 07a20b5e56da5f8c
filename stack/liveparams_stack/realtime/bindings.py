"""The ``postgres_changes`` bindings of a channel join, with the ids the server echoes.

A binding whose ``filter`` or ``select`` the server cannot parse still joins (the
reply echoes it) and ends in a ``system`` error instead of "Subscribed to
PostgreSQL", as on the real server; ``problem`` carries that message.
"""

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
    select: tuple[str, ...] | None = None
    """Columns asked for (the primary key always comes too); None means every column."""
    problem: str | None = None

    @classmethod
    def from_entry(cls, entry: dict[str, Any]) -> Binding:
        event = entry.get("event")
        if event not in EVENTS:
            raise BindingError(f"Unable to subscribe: event must be one of {', '.join(EVENTS)}, got {event!r}")
        schema = entry.get("schema") or "public"
        table = entry.get("table") or "*"
        parsed_filter: Filter | None = None
        select: tuple[str, ...] | None = None
        problem: str | None = None
        try:
            select = _parse_select(entry.get("select"), schema, table)
            parsed_filter = parse_filter(entry.get("filter"))
        except FilterError as exc:
            problem = str(exc)
        return cls(entry, binding_id(entry), event, schema, table, parsed_filter, select, problem)

    def reply_entry(self) -> dict[str, Any]:
        """The entry echoed in the join reply: every key as received, plus ``id``."""
        return {**self.entry, "id": self.id}

    def covers(self, schema: str, table: str) -> bool:
        return self.schema in ("*", schema) and self.table in ("*", table)

    def wants(self, change_type: str) -> bool:
        return self.event in ("*", change_type)

    def describe(self) -> str:
        """Parameters as the real server lists them in its "Unable to subscribe" message."""
        conditions = self.filter.conditions if self.filter is not None else ()
        filters = "[" + ", ".join(c.describe() for c in conditions) + "]"
        select = "nil" if self.select is None else "[" + ", ".join(f'"{c}"' for c in self.select) + "]"
        where = f"schema: {self.schema}, table: {self.table}"
        return f"[event: {self.event}, {where}, filters: {filters}, select: {select}]"


def _parse_select(value: Any, schema: str, table: str) -> tuple[str, ...] | None:
    """A list of column names (non-strings dropped; empty means all); a string is refused."""
    if isinstance(value, str):
        raise FilterError(
            'Error parsing `select` params: expected a list of column name strings, e.g. select: ["col1", "col2"]'
        )
    if not isinstance(value, list):
        return None
    columns = tuple(c for c in value if isinstance(c, str))
    if not columns:
        return None
    if "*" in (schema, table):
        raise FilterError(
            "Column selection is not supported for wildcard subscriptions. Provide an explicit schema and table name."
        )
    return columns
