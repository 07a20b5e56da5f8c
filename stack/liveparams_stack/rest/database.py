"""Running a request's SQL: the transaction that runs as the caller, the catalog, and JSON rendered by PostgreSQL.

Every request runs in one transaction that does what PostgREST does: ``set local role`` to
the caller's role and ``request.jwt.claims`` to its claims, so grants and Row Level Security
decide, not this code. JSON is produced by PostgreSQL (``json_agg``/``to_json``), as PostgREST
does, so values are rendered identically.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from aiohttp import web
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from liveparams_stack.identity import Identity
from liveparams_stack.rest.reading import SCHEMA

__all__ = ["Database", "Statement", "json_rows", "rows_statement", "written_rows", "written_statement"]

EXTRA_SEARCH_PATH = "public, extensions"
# set_config('role', ...) is SET LOCAL ROLE with the name as a bound value; last, after the claims.
SETTINGS = sql.SQL(
    "select set_config('search_path', %s, true), set_config('request.jwt.claims', %s, true),"
    " set_config('request.method', %s, true), set_config('request.path', %s, true),"
    " set_config('request.headers', %s, true), set_config('role', %s, true)"
)

# A statement of a request and its values.
Statement = tuple[sql.Composable, list[Any]]


class Database:
    """The pool of connections logged in as ``authenticator``, and what the REST routes run on it."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def run_as_caller(
        self, request: web.Request, identity: Identity, path: str, statements: list[Statement]
    ) -> list[tuple[Any, ...] | None]:
        """Run ``statements`` in one transaction as the caller, set up as PostgREST does it; each one's first row.

        One round trip: the settings and the statements travel as one query string (the simple
        protocol), which PostgreSQL runs as one transaction, rolled back whole on any error. It
        analyses and plans each statement only after the ones before it ran, so the role and the
        claims are in force when Row Level Security is applied to the statements that follow.
        Values are bound client-side (psycopg quotes them as literals). Why: each round trip of a
        request waits a turn of the front's one event loop; five of them per call (pool check,
        ``BEGIN``, settings, the call, ``COMMIT``) held connections for seconds at 1,000 jobs.
        """
        headers = {key.lower(): value for key, value in request.headers.items()}
        settings = [EXTRA_SEARCH_PATH, json.dumps(identity.claims), request.method, f"/{path}", json.dumps(headers)]
        query = sql.SQL("; ").join([SETTINGS, *(statement for statement, _ in statements)])
        params = [*settings, identity.role, *(value for _, values in statements for value in values)]
        async with self.pool.connection() as conn:
            cursor = psycopg.AsyncClientCursor(conn)
            await cursor.execute(query, params)
            rows: list[tuple[Any, ...] | None] = []
            while cursor.nextset():
                rows.append(await cursor.fetchone())
        return rows

    async def catalog(self, query: str, params: list[Any]) -> list[tuple[Any, ...]]:
        """Rows of a catalog query, outside the caller's transaction (as PostgREST's schema cache is)."""
        async with self.pool.connection() as conn:
            cursor = await conn.execute(query, params)
            return await cursor.fetchall()

    async def column_defaults(self, table_name: str, names: list[str]) -> list[tuple[str, str]]:
        """``(column, default expression)`` for the named columns that have a default, from the catalog."""
        rows = await self.catalog(
            "select a.attname, pg_get_expr(d.adbin, d.adrelid) from pg_attribute a"
            " join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum"
            " where a.attrelid = (quote_ident(%s) || '.' || quote_ident(%s))::regclass"
            " and a.attname = any(%s) and a.attgenerated = ''",
            [SCHEMA, table_name, names],
        )
        return [(name, expression) for name, expression in rows]

    async def primary_key(self, table_name: str) -> list[str]:
        rows = await self.catalog(
            "select a.attname from pg_index i"
            " join pg_class c on c.oid = i.indrelid join pg_namespace n on n.oid = c.relnamespace"
            " join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)"
            " where i.indisprimary and n.nspname = %s and c.relname = %s",
            [SCHEMA, table_name],
        )
        return [row[0] for row in rows]


def rows_statement(query: sql.Composable) -> sql.Composed:
    """``query`` wrapped to return its rows as one JSON array rendered by PostgreSQL (``json_rows`` reads it)."""
    return sql.SQL("select coalesce(json_agg(_row), '[]'::json)::text from ({}) _row").format(query)


def json_rows(row: tuple[Any, ...] | None) -> list[Any]:
    """The rows a ``rows_statement`` returned."""
    assert row is not None
    rows = json.loads(row[0])
    assert isinstance(rows, list)
    return rows


def written_statement(statement: sql.Composable, select_list: sql.Composable) -> sql.Composed:
    """A write on ``_target`` returning the written rows (``select_list`` of them), how many, how many inserted."""
    return sql.SQL(
        "with _raw as ({statement} returning (_target.xmax = 0) as _inserted, _target as _record),"
        " _written as (select (_record).* from _raw)"
        " select (select coalesce(json_agg(_row), '[]'::json)::text from (select {cols} from _written) _row),"
        " (select count(*) from _raw), (select count(*) from _raw where _inserted)"
    ).format(statement=statement, cols=select_list)


def written_rows(row: tuple[Any, ...] | None) -> tuple[list[Any], int, int]:
    """What a ``written_statement`` returned: the written rows, how many, how many inserted."""
    assert row is not None
    return json.loads(row[0]), int(row[1]), int(row[2])
