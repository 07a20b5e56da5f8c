"""Join-time checks of ``postgres_changes`` bindings against the database catalog.

The real server answers the join first and then subscribes; a binding naming no
published table, or a filter on a missing column or with a value that does not
cast to the column type, ends in a ``system`` error instead of "Subscribed to
PostgreSQL". Checking here also guarantees the per-change filter SQL cannot fail.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from liveparams_stack.realtime.bindings import Binding
from liveparams_stack.realtime.cdc import read_publication

UNABLE = (
    "Unable to subscribe to changes with given parameters. "
    "Please check Realtime is enabled for the given connect parameters: "
)


class BindingChecker:
    """Uses its own connection, so joins never interleave with the poller's transactions."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._conn = conn

    async def check(self, bindings: tuple[Binding, ...]) -> str | None:
        publication = await read_publication(self._conn)
        for binding in bindings:
            tables = publication.matching(binding.schema, binding.table)
            if not tables:
                return UNABLE + binding.describe()
            if binding.filter is None:
                continue
            for schema, table in tables:
                problem = await self._check_filter(binding, schema, table)
                if problem is not None:
                    return problem
        return None

    async def _check_filter(self, binding: Binding, schema: str, table: str) -> str | None:
        assert binding.filter is not None
        cur = await self._conn.execute(
            "select format_type(atttypid, atttypmod) from pg_attribute"
            " where attrelid = %s::regclass and attname = %s and attnum > 0 and not attisdropped",
            (sql.Identifier(schema, table).as_string(self._conn), binding.filter.column),
        )
        row = await cur.fetchone()
        if row is None:
            return f"Error parsing `filter` params: column {binding.filter.column!r} does not exist on {schema}.{table}"
        for value in binding.filter.values:
            try:
                await self._conn.execute(sql.SQL("select %s::text::{}").format(sql.SQL(row[0])), (value,))
            except psycopg.DataError as exc:
                return f"Error parsing `filter` params: {str(exc).strip()}"
        return None
