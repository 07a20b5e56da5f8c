"""Which channels a change may concern, found without looking at every channel.

The real server checks every change against every subscriber; with one subscriber per
training job that is work proportional to all jobs for each job's change, which is where
the stack saturated at a few hundred jobs (issue 23). This index narrows a change to the
channels that can match it: those subscribed to its table, and among those whose binding
has an ``eq`` condition, only the ones whose value equals the change's. It is a pre-filter:
it may return a channel that does not match (PostgreSQL still evaluates every filter of the
candidates, with its operators on the column type), but it never leaves out one that does.

An ``eq`` value is keyed per column type family so that PostgreSQL's equality holds for the
key: exact text for ``text``/``varchar``, the 128-bit value for ``uuid`` (upper case, braces
and hyphens all read alike), the integer for ``smallint``/``integer``/``bigint``. A value the
family cannot read stays a candidate for every change of that family; for other types every
``eq`` binding on the column is a candidate.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field

from liveparams_stack.realtime.bindings import Binding
from liveparams_stack.realtime.cdc import WalChange
from liveparams_stack.realtime.channel import Channel

_Table = tuple[str, str]


def _uuid_key(value: str) -> Hashable:
    return uuid.UUID(value).int


def _integer_key(value: str) -> Hashable:
    return int(value)


def _text_key(value: str) -> Hashable:
    return value


_FAMILIES: dict[str, Callable[[str], Hashable]] = {"uuid": _uuid_key, "integer": _integer_key, "text": _text_key}
_FAMILY_OF_TYPE = {
    "uuid": "uuid",
    "smallint": "integer",
    "integer": "integer",
    "bigint": "integer",
    "text": "text",
    "character varying": "text",
}


def _family(column_type: str) -> str | None:
    """``character varying(20)`` → ``text``; None for a type whose equality is not one of the families'."""
    return _FAMILY_OF_TYPE.get(column_type.split("(", 1)[0])


@dataclass
class _EqColumn:
    """The channels whose binding has an ``eq`` condition on one column, by key per family."""

    every: set[Channel] = field(default_factory=set)
    keyed: dict[str, defaultdict[Hashable, set[Channel]]] = field(
        default_factory=lambda: {f: defaultdict(set) for f in _FAMILIES}
    )
    unkeyed: dict[str, set[Channel]] = field(default_factory=lambda: {f: set() for f in _FAMILIES})

    def add(self, channel: Channel, value: str) -> None:
        self.every.add(channel)
        for family, key_of in _FAMILIES.items():
            try:
                self.keyed[family][key_of(value)].add(channel)
            except ValueError:
                self.unkeyed[family].add(channel)

    def discard(self, channel: Channel, value: str) -> None:
        self.every.discard(channel)
        for family, key_of in _FAMILIES.items():
            self.unkeyed[family].discard(channel)
            try:
                key = key_of(value)
            except ValueError:
                continue
            bucket = self.keyed[family].get(key)
            if bucket is not None:
                bucket.discard(channel)
                if not bucket:
                    del self.keyed[family][key]

    def matching(self, value: str | None, column_type: str) -> Iterable[Channel]:
        if value is None:
            return ()  # NULL = anything is never true
        family = _family(column_type)
        if family is None:
            return self.every
        try:
            key = _FAMILIES[family](value)
        except ValueError:
            return self.every
        return (*self.keyed[family].get(key, ()), *self.unkeyed[family])


def _slot(binding: Binding) -> tuple[_Table | None, str | None, str | None]:
    """(table or None for a wildcard, ``eq`` column, its value) under which a binding is indexed."""
    if "*" in (binding.schema, binding.table):
        return None, None, None
    table = (binding.schema, binding.table)
    for condition in binding.filter.conditions if binding.filter is not None else ():
        if condition.op == "eq" and not condition.negate:
            return table, condition.column, condition.value
    return table, None, None


class RoutingIndex:
    """Channels with ``postgres_changes`` bindings, by table and by ``eq`` value."""

    def __init__(self) -> None:
        self._wildcard: set[Channel] = set()
        self._unfiltered: defaultdict[_Table, set[Channel]] = defaultdict(set)
        self._eq: defaultdict[_Table, dict[str, _EqColumn]] = defaultdict(dict)

    def add(self, channel: Channel) -> None:
        for binding in channel.bindings:
            table, column, value = _slot(binding)
            if table is None:
                self._wildcard.add(channel)
            elif column is None or value is None:
                self._unfiltered[table].add(channel)
            else:
                by_column = self._eq[table]
                if column not in by_column:
                    by_column[column] = _EqColumn()
                by_column[column].add(channel, value)

    def discard(self, channel: Channel) -> None:
        for binding in channel.bindings:
            table, column, value = _slot(binding)
            if table is None:
                self._wildcard.discard(channel)
            elif column is None or value is None:
                self._unfiltered.get(table, set()).discard(channel)
            elif (by_column := self._eq.get(table)) is not None and column in by_column:
                by_column[column].discard(channel, value)

    def candidates(self, change: WalChange) -> list[Channel]:
        """Every channel that may match ``change`` (in no particular order, each once)."""
        table = (change.schema, change.table)
        found: dict[Channel, None] = dict.fromkeys(self._wildcard)
        found.update(dict.fromkeys(self._unfiltered.get(table, ())))
        by_column = self._eq.get(table)
        if by_column:
            shown = {c.name: c for c in (change.identity if change.type == "DELETE" else change.columns)}
            for name, eq_column in by_column.items():
                column = shown.get(name)
                if column is not None:
                    found.update(dict.fromkeys(eq_column.matching(column.value, column.type)))
        return list(found)
