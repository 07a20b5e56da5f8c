"""Turning a decoded change into what each subscriber may see, like ``realtime.apply_rls``.

For every change: one query (as the server's own role) builds ``record`` and
``old_record`` with real JSON types (``to_jsonb(text::type)``) and evaluates every
subscriber filter with PostgreSQL operators on the column type. Then, per
distinct set of claims: the role's column privileges, and for INSERT/UPDATE on a
table with RLS enabled, a select by primary key as that role with its
``request.jwt.claims``: only a visible row is delivered. DELETE is never RLS
checked, which is why its ``old_record`` is the primary key only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import psycopg
from psycopg import sql

from liveparams_stack.realtime.bindings import Binding
from liveparams_stack.realtime.cdc import WalChange, WalColumn
from liveparams_stack.realtime.filters import Condition

log = logging.getLogger(__name__)

K = TypeVar("K")
MAX_RECORD_BYTES = 1024 * 1024
KEPT_VALUE_BYTES = 64


@dataclass(frozen=True)
class Subscriber(Generic[K]):
    """A joined channel as the renderer sees it; ``key`` identifies it to the caller."""

    key: K
    claims: dict[str, Any]
    bindings: tuple[Binding, ...]


@dataclass(frozen=True)
class Delivery(Generic[K]):
    """The ``postgres_changes`` payload for one channel: ``{"ids": ids, "data": data}``."""

    key: K
    ids: list[int]
    data: dict[str, Any]


def _object_sql(columns: Sequence[WalColumn]) -> sql.Composable:
    """``jsonb`` object of the columns, each value cast from text to its type then ``to_jsonb``.

    Values are inlined as literals: the query runs without parameters, so a ``%`` in a value
    or a filter pattern is never taken for a placeholder.
    """
    if not columns:
        return sql.SQL("'{}'::jsonb")
    rows = sql.SQL(", ").join(
        sql.SQL("({}, to_jsonb({}::text::{}))").format(sql.Literal(c.name), sql.Literal(c.value), sql.SQL(c.type))
        for c in columns
    )
    return sql.SQL("(select jsonb_object_agg(k, v) from (values {}) as t(k, v))").format(rows)


def _trim_oversized(record: dict[str, Any]) -> tuple[dict[str, Any], list[str] | None]:
    """Past 1 MiB the real server keeps only values of 64 bytes or less and reports 413."""
    if len(json.dumps(record)) <= MAX_RECORD_BYTES:
        return record, None
    kept = {k: v for k, v in record.items() if len(json.dumps(v)) <= KEPT_VALUE_BYTES}
    return kept, ["Error 413: Payload Too Large"]


@dataclass(frozen=True)
class _Evaluated:
    record: dict[str, Any] | None
    old_record: dict[str, Any] | None
    rls_enabled: bool
    passes: dict[Condition, bool]
    privileges: dict[str, frozenset[str] | None]
    """Per role, the table's columns it may SELECT; None when the role does not exist."""
    columns: list[tuple[str, str]]
    """The table's columns and their ``pg_type.typname``, in attnum order (what ``columns`` lists)."""


class ChangeRenderer:
    """Renders changes for subscribers using one dedicated connection (superuser, autocommit)."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._conn = conn

    async def render(self, change: WalChange, subscribers: Sequence[Subscriber[K]]) -> list[Delivery[K]]:
        interested = [
            (s, [b for b in s.bindings if b.covers(change.schema, change.table) and b.wants(change.type)])
            for s in subscribers
        ]
        interested = [(s, bs) for s, bs in interested if bs]
        if not interested or not change.pk:
            return []
        conditions = {c for _, bs in interested for b in bs if b.filter is not None for c in b.filter.conditions}
        groups: dict[str, list[tuple[Subscriber[K], list[Binding]]]] = {}
        for s, bs in interested:
            groups.setdefault(json.dumps(s.claims, sort_keys=True), []).append((s, bs))
        roles = sorted({str(s.claims.get("role", "")) for s, _ in interested})
        evaluated = await self._evaluate(change, conditions, roles)
        deliveries: list[Delivery[K]] = []
        for claims_json, members in groups.items():
            claims = json.loads(claims_json)
            if not await self._may_see(change, evaluated, claims):
                continue
            # Like the real server: one payload per distinct `select` list, each with its own ids.
            for select in dict.fromkeys(b.select for _, bs in members for b in bs):
                data = self._data_for(change, evaluated, claims, select)
                for s, bs in members:
                    ids = [b.id for b in bs if b.select == select and self._passes(b, evaluated)]
                    if ids:
                        deliveries.append(Delivery(s.key, list(dict.fromkeys(ids)), data))
        return deliveries

    @staticmethod
    def _passes(binding: Binding, evaluated: _Evaluated) -> bool:
        """Every condition of the binding's filter holds (the AND of a comma-separated filter)."""
        return binding.filter is None or all(evaluated.passes[c] for c in binding.filter.conditions)

    def _shown(self, change: WalChange) -> tuple[WalColumn, ...]:
        """The columns a change shows: the new row, or for DELETE the old identity."""
        return change.identity if change.type == "DELETE" else change.columns

    async def _evaluate(self, change: WalChange, conditions: set[Condition], roles: list[str]) -> _Evaluated:
        """Record, old record, RLS flag, filter results and each role's column privileges, in one query.

        A condition on a column the row does not carry fails (for DELETE: one outside the old identity).
        """
        new_columns = change.columns if change.type != "DELETE" else ()
        record_sql = _object_sql(new_columns)
        old_sql = _object_sql(change.identity)
        by_name = {c.name: c for c in self._shown(change)}
        ordered = sorted(conditions, key=repr)
        predicates: list[sql.Composable] = []
        for condition in ordered:
            column = by_name.get(condition.column)
            if column is None:
                predicates.append(sql.SQL("false"))
            else:
                predicates.append(condition.predicate(sql.Literal(column.value), sql.SQL(column.type)))
        table = sql.Literal(sql.Identifier(change.schema, change.table).as_string(self._conn))
        attributes = sql.SQL(
            "from pg_attribute a join pg_type t on t.oid = a.atttypid"
            " where a.attrelid = {}::regclass and a.attnum > 0 and not a.attisdropped"
        ).format(table)
        # A role that does not exist reads as NULL instead of failing the whole query.
        privileges = [
            sql.SQL(
                "case when exists(select 1 from pg_roles where rolname = {role}) then array("
                "select a.attname::text {attributes} and has_column_privilege({role}, a.attrelid, a.attnum, 'SELECT')"
                ") end"
            ).format(role=sql.Literal(role), attributes=attributes)
            for role in roles
        ]
        query = sql.SQL(
            "select {}, {}, (select relrowsecurity from pg_class where oid = {}::regclass),"
            " (select jsonb_agg(jsonb_build_array(a.attname, t.typname) order by a.attnum) {}){}"
        ).format(
            record_sql,
            old_sql,
            table,
            attributes,
            sql.SQL("").join(sql.SQL(", {}").format(p) for p in [*privileges, *predicates]),
        )
        cur = await self._conn.execute(query.as_string(self._conn))
        row = await cur.fetchone()
        assert row is not None
        granted = row[4 : 4 + len(roles)]
        return _Evaluated(
            record=row[0] if change.type != "DELETE" else None,
            old_record=row[1] if change.type != "INSERT" else None,
            rls_enabled=bool(row[2]),
            passes=dict(zip(ordered, row[4 + len(roles) :], strict=True)),
            privileges={r: None if g is None else frozenset(g) for r, g in zip(roles, granted, strict=True)},
            columns=[(name, typname) for name, typname in row[3] or ()],
        )

    async def _may_see(self, change: WalChange, evaluated: _Evaluated, claims: dict[str, Any]) -> bool:
        """Whether a role with these claims may see the change: the primary key readable, and RLS."""
        allowed = evaluated.privileges.get(str(claims.get("role", "")))
        if allowed is None or not set(change.pk) <= allowed:
            return False  # the real server would send a 401 error payload, which the Python client drops
        return change.type == "DELETE" or not evaluated.rls_enabled or await self._row_visible(change, claims)

    @staticmethod
    def _data_for(
        change: WalChange, evaluated: _Evaluated, claims: dict[str, Any], select: tuple[str, ...] | None
    ) -> dict[str, Any]:
        """The ``data`` a role with these claims receives: columns it may read, cut to ``select`` plus the key."""
        allowed = evaluated.privileges.get(str(claims.get("role", ""))) or frozenset()
        if select is not None:
            allowed = allowed & (set(select) | set(change.pk))
        data: dict[str, Any] = {
            "schema": change.schema,
            "table": change.table,
            "commit_timestamp": change.commit_timestamp,
            "type": change.type,
            "columns": [{"name": name, "type": typname} for name, typname in evaluated.columns if name in allowed],
            "errors": None,
        }
        if evaluated.record is not None:
            record, errors = _trim_oversized({k: v for k, v in evaluated.record.items() if k in allowed})
            data["record"] = record
            data["errors"] = errors
        if evaluated.old_record is not None:
            # DELETE is not RLS checked, so with REPLICA IDENTITY FULL the real server still cuts it to the key.
            kept = set(change.pk) if change.type == "DELETE" and evaluated.rls_enabled else allowed
            old_record, errors = _trim_oversized({k: v for k, v in evaluated.old_record.items() if k in kept})
            data["old_record"] = old_record
            data["errors"] = data["errors"] or errors
        return data

    async def _row_visible(self, change: WalChange, claims: dict[str, Any]) -> bool:
        """Select the row by primary key as the subscriber's role with its claims (its SELECT policies apply).

        One round trip: the statements go as a single simple query, values inlined as literals.
        """
        key = {c.name: c for c in change.columns}
        condition = sql.SQL(" and ").join(
            sql.SQL("{} = {}::{}").format(sql.Identifier(name), sql.Literal(key[name].value), sql.SQL(key[name].type))
            for name in change.pk
        )
        query = sql.SQL(
            "begin; select set_config('role', {}, true), set_config('request.jwt.claims', {}, true);"
            " select exists(select 1 from {} where {}); commit"
        ).format(
            sql.Literal(str(claims.get("role", ""))),
            sql.Literal(json.dumps(claims)),
            sql.Identifier(change.schema, change.table),
            condition,
        )
        try:
            cur = await self._conn.execute(query.as_string(self._conn))
        except psycopg.Error as exc:
            log.debug("realtime: visibility check on %s.%s failed: %s", change.schema, change.table, exc)
            await self._conn.execute("rollback")
            return False
        cur.nextset()
        cur.nextset()  # skip BEGIN and set_config
        row = await cur.fetchone()
        return bool(row and row[0])
