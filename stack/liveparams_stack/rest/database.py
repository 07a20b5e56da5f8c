"""Running a request's SQL: the transaction that runs as the caller, the catalog, and JSON rendered by PostgreSQL.

Every request runs in one transaction that does what PostgREST does: ``set local role`` to
the caller's role and ``request.jwt.claims`` to its claims, so grants and Row Level Security
decide, not this code. JSON is produced by PostgreSQL (``json_agg``/``to_json``), as PostgREST
does, so values are rendered identically.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from aiohttp import web
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from liveparams_stack.identity import Identity
from liveparams_stack.rest.reading import SCHEMA

__all__ = ["Database", "json_rows", "scalar", "written_rows"]

EXTRA_SEARCH_PATH = "public, extensions"


class Database:
    """The pool of connections logged in as ``authenticator``, and what the REST routes run on it."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    @asynccontextmanager
    async def transaction(
        self, request: web.Request, identity: Identity, path: str
    ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection in a transaction that runs as the caller, set up as PostgREST does it."""
        headers = {key.lower(): value for key, value in request.headers.items()}
        settings = [EXTRA_SEARCH_PATH, json.dumps(identity.claims), request.method, f"/{path}", json.dumps(headers)]
        async with self.pool.connection() as conn, conn.transaction():
            # One round trip; set_config('role', ...) is SET LOCAL ROLE with the name as a bound value.
            await conn.execute(
                "select set_config('search_path', %s, true), set_config('request.jwt.claims', %s, true),"
                " set_config('request.method', %s, true), set_config('request.path', %s, true),"
                " set_config('request.headers', %s, true), set_config('role', %s, true)",
                [*settings, identity.role],
            )
            yield conn

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


async def json_rows(conn: psycopg.AsyncConnection[Any], query: sql.Composable, params: list[Any]) -> list[Any]:
    """Run ``query`` and return its rows as a JSON array rendered by PostgreSQL."""
    wrapped = sql.SQL("select coalesce(json_agg(_row), '[]'::json)::text from ({}) _row").format(query)
    rows = json.loads(await scalar(conn, wrapped, params))
    assert isinstance(rows, list)
    return rows


async def written_rows(
    conn: psycopg.AsyncConnection[Any], statement: sql.Composable, params: list[Any], select_list: sql.Composable
) -> tuple[list[Any], int, int]:
    """Run a write on ``_target``; return the written rows (``select_list`` of them), how many, how many inserted."""
    query = sql.SQL(
        "with _raw as ({statement} returning (_target.xmax = 0) as _inserted, _target as _record),"
        " _written as (select (_record).* from _raw)"
        " select (select coalesce(json_agg(_row), '[]'::json)::text from (select {cols} from _written) _row),"
        " (select count(*) from _raw), (select count(*) from _raw where _inserted)"
    ).format(statement=statement, cols=select_list)
    cursor = await conn.execute(query, params)
    row = await cursor.fetchone()
    assert row is not None
    return json.loads(row[0]), int(row[1]), int(row[2])


async def scalar(conn: psycopg.AsyncConnection[Any], query: sql.Composable, params: list[Any]) -> Any:
    cursor = await conn.execute(sql.Composed([query]), params)
    row = await cursor.fetchone()
    return row[0] if row else None
