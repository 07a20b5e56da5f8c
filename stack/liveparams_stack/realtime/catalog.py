"""Join-time checks of ``postgres_changes`` bindings against the database catalog.

The real server answers the join first and then inserts one subscription row
per binding and published table; its check trigger refuses a filter or ``select``
column the subscriber's role may not read, a value that does not cast to the
column's type, more than 100 ``in`` values, a bad ``is`` keyword, ``like``/``match``
on a type without that operator, and an invalid regular expression. Any of these
ends in a ``system`` error instead of "Subscribed to PostgreSQL" (docs/internals.md,
"Realtime: filters"). Checking here also guarantees the per-change filter SQL cannot fail.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg import sql

from liveparams_stack.realtime.bindings import Binding
from liveparams_stack.realtime.cdc import read_publication
from liveparams_stack.realtime.filters import IS_KEYWORDS, MAX_IN_VALUES, Condition

UNABLE = (
    "Unable to subscribe to changes with given parameters. "
    "Please check Realtime is enabled for the given connect parameters: "
)
EXCEPTION = (
    "Unable to subscribe to changes with given parameters. "
    "An exception happened so please check your connect parameters: {params}. Exception: {error}"
)


class _Refused(Exception):
    """What the real check trigger raises; ``str()`` is PostgreSQL's error as the real server quotes it."""


def _quote_pg_error(exc: psycopg.Error) -> str:
    """``ERROR 22P02 (invalid_text_representation) …``: how the real server words a database error."""
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()
    message = exc.diag.message_primary or str(exc).strip()
    return f"ERROR {exc.sqlstate} ({name}) {message}"


def _raise(message: str) -> _Refused:
    return _Refused(f"ERROR P0001 (raise_exception) {message}")


class BindingChecker:
    """Uses its own connection, so joins never interleave with the poller's transactions."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._conn = conn

    async def check(self, bindings: tuple[Binding, ...], role: str) -> str | None:
        for binding in bindings:  # every binding is parsed before any is subscribed
            if binding.problem is not None:
                return binding.problem
        publication = await read_publication(self._conn)
        for binding in bindings:
            tables = publication.matching(binding.schema, binding.table)
            if not tables:
                return UNABLE + binding.describe()
            for schema, table in tables:
                try:
                    await self._check_table(binding, schema, table, role)
                except _Refused as exc:
                    return EXCEPTION.format(params=binding.describe(), error=exc)
        return None

    async def _check_table(self, binding: Binding, schema: str, table: str, role: str) -> None:
        regclass = sql.Identifier(schema, table).as_string(self._conn)
        try:
            cur = await self._conn.execute(
                "select attname::text, atttypid::regtype::text from pg_attribute"
                " where attrelid = %s::regclass and attnum > 0 and not attisdropped"
                " and has_column_privilege(%s, attrelid, attnum, 'SELECT')",
                (regclass, role),
            )
        except psycopg.Error as exc:
            raise _Refused(_quote_pg_error(exc)) from exc
        readable = dict(await cur.fetchall())
        for condition in binding.filter.conditions if binding.filter is not None else ():
            if condition.column not in readable:
                raise _raise(f"invalid column for filter {condition.column}")
            await self._check_condition(condition, readable[condition.column])
        for column in binding.select or ():
            if column not in readable:
                raise _raise(f"invalid column for select {column}")

    async def _check_condition(self, condition: Condition, col_type: str) -> None:
        op = condition.op
        if op == "is":
            if condition.value not in IS_KEYWORDS:
                raise _raise("invalid value for is filter: must be null, true, false, or unknown")
            if condition.value != "null" and col_type != "boolean":
                raise _raise(f"is {condition.value} filter requires a boolean column, got {col_type}")
        elif op in ("like", "ilike", "match", "imatch"):
            operator = {"like": "~~", "ilike": "~~", "match": "~", "imatch": "~*"}[op]
            cur = await self._conn.execute(
                "select exists(select 1 from pg_operator where oprname = %s and oprleft = %s::regtype"
                " and (%s or (oprright = %s::regtype and oprresult = 'boolean'::regtype)))",
                (operator, col_type, op in ("like", "ilike"), col_type),
            )
            row = await cur.fetchone()
            if not (row and row[0]):
                raise _raise(f"operator {op} requires a text-compatible column type, got {col_type}")
            if op in ("match", "imatch"):
                try:
                    await self._conn.execute("select '' ~ %s::text", (condition.value,))
                except psycopg.Error as exc:
                    message = exc.diag.message_primary or str(exc)
                    raise _raise(f"invalid regular expression for {op} filter: {message}") from exc
        elif op == "in":
            if await self._cast(condition.value, f"{col_type}[]") > MAX_IN_VALUES:
                raise _raise(f"too many values for `in` filter. Maximum {MAX_IN_VALUES}")
        else:
            await self._cast(condition.value, col_type)

    async def _cast(self, value: str, type_name: str) -> int:
        """Cast ``value`` to the type or refuse as PostgreSQL words it; answers the length of an array."""
        is_array = type_name.endswith("[]")
        query = sql.SQL("select coalesce(cardinality({}), 0)" if is_array else "select 0 where {} is null")
        typed = sql.SQL("%s::text::{}").format(sql.SQL(type_name))
        try:
            cur = await self._conn.execute(query.format(typed), (value,))
        except psycopg.Error as exc:
            raise _Refused(_quote_pg_error(exc)) from exc
        row = await cur.fetchone()
        return int(row[0]) if row else 0
