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

    async def render_batch(
        self, batch: Sequence[tuple[WalChange, Sequence[Subscriber[K]]]]
    ) -> list[list[Delivery[K]] | psycopg.Error]:
        """Render a poll's changes in two round trips, like the real server's one ``list_changes`` query per poll.

        Rendering one change at a time made each wait two round trips on the event loop behind every change
        before it in the poll: at 300 jobs and hosted Realtime's cadence a poll held up to 100 changes, and
        the last request of one waited 240 ms for its turn (docs/benchmarks.md). Now every change's records,
        filters and privileges are one query, and every row visibility check the results call for is a
        second. Where one change fails its statement (a filter value its column type cannot read), that
        query is rerun one change or one check at a time, so a failure costs only its own change, as before.
        An entry is a change's deliveries, or the error that kept it from being delivered.
        """
        plans = [_plan(change, subscribers) for change, subscribers in batch]
        todo = [p for p in plans if p is not None]
        evaluated = await self._evaluate_all(todo)
        checks = [
            (plan, claims_json)
            for plan in todo
            if not isinstance(found := evaluated[id(plan)], psycopg.Error)
            for claims_json in plan.groups
            if self._needs_row_check(plan.change, found, json.loads(claims_json))
        ]
        visible = await self._rows_visible([(plan.change, json.loads(claims_json)) for plan, claims_json in checks])
        seen = {(id(plan), claims_json): v for (plan, claims_json), v in zip(checks, visible, strict=True)}
        results: list[list[Delivery[K]] | psycopg.Error] = []
        for plan in plans:
            if plan is None:
                results.append([])
                continue
            found = evaluated[id(plan)]
            if isinstance(found, psycopg.Error):
                results.append(found)
                continue
            results.append(self._deliveries(plan, found, seen))
        return results

    def _deliveries(
        self, plan: _Plan[K], evaluated: _Evaluated, visible: dict[tuple[int, str], bool]
    ) -> list[Delivery[K]]:
        """What each interested subscriber receives, once the records and row checks are known."""
        change = plan.change
        deliveries: list[Delivery[K]] = []
        for claims_json, members in plan.groups.items():
            claims = json.loads(claims_json)
            if not self._may_read_key(change, evaluated, claims):
                continue
            if self._needs_row_check(change, evaluated, claims) and not visible[(id(plan), claims_json)]:
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

    def _evaluate_sql(self, plan: _Plan[K]) -> str:
        """Record, old record, RLS flag, columns, each role's column privileges and filter results: one ``select``.

        A condition on a column the row does not carry fails (for DELETE: one outside the old identity).
        """
        change = plan.change
        new_columns = change.columns if change.type != "DELETE" else ()
        record_sql = _object_sql(new_columns)
        old_sql = _object_sql(change.identity)
        by_name = {c.name: c for c in self._shown(change)}
        predicates: list[sql.Composable] = []
        for condition in plan.ordered:
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
            for role in plan.roles
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
        return query.as_string(self._conn)

    @staticmethod
    def _evaluated(plan: _Plan[K], row: tuple[Any, ...]) -> _Evaluated:
        change, roles = plan.change, plan.roles
        granted = row[4 : 4 + len(roles)]
        return _Evaluated(
            record=row[0] if change.type != "DELETE" else None,
            old_record=row[1] if change.type != "INSERT" else None,
            rls_enabled=bool(row[2]),
            passes=dict(zip(plan.ordered, row[4 + len(roles) :], strict=True)),
            privileges={r: None if g is None else frozenset(g) for r, g in zip(roles, granted, strict=True)},
            columns=[(name, typname) for name, typname in row[3] or ()],
        )

    async def _evaluate_all(self, plans: Sequence[_Plan[K]]) -> dict[int, _Evaluated | psycopg.Error]:
        """Each plan's `_Evaluated` (by ``id``), all in one simple query; one by one if that query fails."""
        if not plans:
            return {}
        try:
            cur = await self._conn.execute("; ".join(self._evaluate_sql(plan) for plan in plans))
            found: dict[int, _Evaluated | psycopg.Error] = {}
            for plan in plans:
                row = await cur.fetchone()
                assert row is not None
                found[id(plan)] = self._evaluated(plan, row)
                cur.nextset()
            return found
        except psycopg.OperationalError:
            raise
        except psycopg.Error:
            if len(plans) == 1:
                raise
        found = {}
        for plan in plans:
            try:
                found.update(await self._evaluate_all([plan]))
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:
                found[id(plan)] = exc
        return found

    @staticmethod
    def _may_read_key(change: WalChange, evaluated: _Evaluated, claims: dict[str, Any]) -> bool:
        """The role exists and may read the primary key.

        Otherwise the real server sends a 401 error payload, which the Python client drops.
        """
        allowed = evaluated.privileges.get(str(claims.get("role", "")))
        return allowed is not None and set(change.pk) <= allowed

    @classmethod
    def _needs_row_check(cls, change: WalChange, evaluated: _Evaluated, claims: dict[str, Any]) -> bool:
        """Whether RLS decides: an INSERT or UPDATE, on a table with RLS enabled, for a role that may read the key."""
        return change.type != "DELETE" and evaluated.rls_enabled and cls._may_read_key(change, evaluated, claims)

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

    def _visibility_sql(self, change: WalChange, claims: dict[str, Any]) -> str:
        """Become the subscriber's role with its claims; select the row by primary key (its SELECT policies apply)."""
        key = {c.name: c for c in change.columns}
        condition = sql.SQL(" and ").join(
            sql.SQL("{} = {}::{}").format(sql.Identifier(name), sql.Literal(key[name].value), sql.SQL(key[name].type))
            for name in change.pk
        )
        return (
            sql.SQL(
                "select set_config('role', {}, true), set_config('request.jwt.claims', {}, true);"
                " select exists(select 1 from {} where {})"
            )
            .format(
                sql.Literal(str(claims.get("role", ""))),
                sql.Literal(json.dumps(claims)),
                sql.Identifier(change.schema, change.table),
                condition,
            )
            .as_string(self._conn)
        )

    async def _rows_visible(self, checks: Sequence[tuple[WalChange, dict[str, Any]]]) -> list[bool]:
        """Every check in one transaction sent as one simple query (values inlined as literals).

        Each check sets the role and claims anew (``set_config(..., true)`` lasts until the commit, and the
        server's own session user may become any role). A check that fails aborts the transaction: then each
        is run alone, and a failing one reads as not visible.
        """
        if not checks:
            return []
        body = "; ".join(self._visibility_sql(change, claims) for change, claims in checks)
        try:
            cur = await self._conn.execute(f"begin; {body}; commit")
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:
            await self._conn.execute("rollback")
            if len(checks) == 1:
                log.debug(
                    "realtime: visibility check on %s.%s failed: %s", checks[0][0].schema, checks[0][0].table, exc
                )
                return [False]
            return [(await self._rows_visible([check]))[0] for check in checks]
        visible: list[bool] = []
        cur.nextset()  # BEGIN
        for _ in checks:
            cur.nextset()  # set_config
            row = await cur.fetchone()
            visible.append(bool(row and row[0]))
            cur.nextset()
        return visible


@dataclass(frozen=True)
class _Plan(Generic[K]):
    """A change with the subscribers whose bindings want it, grouped by claims, and what to evaluate."""

    change: WalChange
    groups: dict[str, list[tuple[Subscriber[K], list[Binding]]]]
    ordered: list[Condition]
    roles: list[str]


def _plan(change: WalChange, subscribers: Sequence[Subscriber[K]]) -> _Plan[K] | None:
    """None when no subscriber's binding wants the change (or it has no primary key): nothing to render."""
    interested = [
        (s, [b for b in s.bindings if b.covers(change.schema, change.table) and b.wants(change.type)])
        for s in subscribers
    ]
    interested = [(s, bs) for s, bs in interested if bs]
    if not interested or not change.pk:
        return None
    conditions = {c for _, bs in interested for b in bs if b.filter is not None for c in b.filter.conditions}
    groups: dict[str, list[tuple[Subscriber[K], list[Binding]]]] = {}
    for s, bs in interested:
        groups.setdefault(json.dumps(s.claims, sort_keys=True), []).append((s, bs))
    roles = sorted({str(s.claims.get("role", "")) for s, _ in interested})
    return _Plan(change, groups, sorted(conditions, key=repr), roles)
