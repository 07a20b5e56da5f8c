"""The ``/rest/v1`` routes: what each request is (table or function), in what order its stages run.

read the request (``reading``) → build its SQL (``tables`` / ``functions``) → run it as the
caller (``database``) → render the answer (``responses``); any stage may refuse with a
``PostgrestError`` (``errors``), which is answered in PostgREST's shape.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from aiohttp import web
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from liveparams_stack.faults import Faults
from liveparams_stack.identity import ANON_ROLE, AuthError, Identity, identify
from liveparams_stack.rest import tables
from liveparams_stack.rest.database import Database, json_rows, scalar, written_rows
from liveparams_stack.rest.errors import PostgrestError
from liveparams_stack.rest.functions import Function, FunctionCache, call_statement, find_function
from liveparams_stack.rest.reading import (
    SCHEMA,
    check_schema,
    check_supported,
    json_body,
    parse_json,
    parse_list,
    prefer,
)
from liveparams_stack.rest.responses import content_range, representation, rows_response

__all__ = ["RestApi"]


class RestApi:
    """The ``/rest/v1`` routes over a pool of connections logged in as ``authenticator`` (``conninfo``)."""

    def __init__(self, pool: AsyncConnectionPool, conninfo: str, jwt_secret: str, faults: Faults | None) -> None:
        self._database = Database(pool)
        self._functions = FunctionCache(conninfo)  # listens for schema reloads on a connection of its own
        self._jwt_secret = jwt_secret
        self._faults = faults

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/rest/v1/{path:.*}", self.handle)

        async def start_cache(_: web.Application) -> None:
            await self._functions.start()

        async def stop_cache(_: web.Application) -> None:
            await self._functions.stop()

        app.on_startup.append(start_cache)
        app.on_cleanup.append(stop_cache)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        role = ANON_ROLE
        try:
            if (
                self._faults is not None
                and (status := self._faults.take_rest_failure(request.match_info["path"])) is not None
            ):
                raise PostgrestError(status, "PGRST000", "fault injected by the local stack (rest_errors)")
            identity = identify(request.headers, self._jwt_secret)
            role = identity.role
            check_schema(request)
            check_supported(request)
            path = request.match_info["path"].strip("/")
            if path.startswith("rpc/"):
                return await self._rpc(request, identity, path[4:])
            if not path or "/" in path:
                raise PostgrestError(404, "PGRST125", f"Invalid path specified in request URL: /{path}")
            try:
                return await self._table(request, identity, path)
            except psycopg.errors.UndefinedTable:
                message = f"Could not find the table '{SCHEMA}.{path}' in the schema cache"
                raise PostgrestError(404, "PGRST205", message) from None
        except AuthError as exc:
            headers = {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{exc.message}"'}
            return web.json_response(exc.postgrest_body(), status=401, headers=headers)
        except PostgrestError as exc:
            return web.json_response(exc.body, status=exc.status)
        except psycopg.Error as exc:
            error = PostgrestError.from_database(exc, role)
            return web.json_response(error.body, status=error.status)

    async def _table(self, request: web.Request, identity: Identity, table_name: str) -> web.StreamResponse:
        table = sql.Identifier(SCHEMA, table_name)
        query = request.rel_url.query
        where, params = tables.where(query)
        preferences = prefer(request)
        select_list = tables.select_list(query.get("select", "*"))
        if request.method in ("GET", "HEAD"):
            order = tables.order_by(query.get("order"))
            page = tables.limit_offset(query)
            body_sql = sql.SQL("select {cols} from {table}{where}{order}{page}").format(
                cols=select_list, table=table, where=where, order=order, page=page
            )
            count_sql = sql.SQL("select count(*) from {table}{where}").format(table=table, where=where)
            async with self._database.transaction(request, identity, table_name) as conn:
                rows = await json_rows(conn, body_sql, params)
                total = await scalar(conn, count_sql, params) if preferences.get("count") == "exact" else None
            offset = int(query.get("offset", 0))
            return rows_response(request, rows, total=total, offset=offset, head=request.method == "HEAD")

        if any(name in query for name in ("order", "limit", "offset")):
            raise PostgrestError.not_supported(f"order, limit and offset on {request.method}")
        payload = await json_body(request)
        if request.method == "POST":
            statement, statement_params = await self._insert(table, table_name, query, preferences, payload)
        elif request.method == "PATCH":
            statement, values = tables.update_statement(table, payload, where)
            statement_params = [values, *params]
        elif request.method == "DELETE":
            statement = sql.SQL("delete from {table} as _target{where}").format(table=table, where=where)
            statement_params = params
        elif request.method == "PUT":
            raise PostgrestError.not_supported("PUT (single-row upsert); use POST with Prefer: resolution")
        else:
            raise PostgrestError(405, "PGRST117", f"Unsupported HTTP method: {request.method}")

        async with self._database.transaction(request, identity, table_name) as conn:
            rows, affected, inserted = await written_rows(conn, statement, statement_params, select_list)
        total = affected if preferences.get("count") == "exact" else None
        if request.method == "POST":
            # PostgREST: 201, or 200 when a merge-duplicates upsert inserted nothing (every row was an update).
            nothing_new = inserted == 0 and preferences.get("resolution") == "merge-duplicates"
            status, headers = (200 if nothing_new else 201), content_range(1, 0, total)
        else:
            status, headers = 200, content_range(0, affected - 1, total)
            if request.method == "DELETE":
                headers = content_range(1, 0, total)
        if preferences.get("return") != "representation":
            return web.Response(status=204 if status == 200 and request.method != "POST" else status,
                                headers=headers)  # fmt: skip
        return representation(request, rows, status, headers)

    async def _insert(
        self, table: sql.Composable, table_name: str, query: Any, preferences: dict[str, str], payload: Any
    ) -> tuple[sql.Composable, list[Any]]:
        """The insert (or upsert) statement, with what it needs from the catalog: defaults, the conflict target."""
        rows, names = tables.insert_columns(query, payload)
        defaults: list[tuple[str, str]] = []
        if preferences.get("missing") == "default":  # keys a row lacks take the column default, evaluated per row
            defaults = await self._database.column_defaults(table_name, names)
        resolution = preferences.get("resolution")
        conflict: list[str] = []
        if resolution in ("merge-duplicates", "ignore-duplicates"):
            conflict = (
                parse_list(query["on_conflict"])
                if "on_conflict" in query
                else await self._database.primary_key(table_name)
            )
        return tables.insert_statement(table, names, defaults, resolution, conflict), [json.dumps(rows)]

    async def _rpc(self, request: web.Request, identity: Identity, name: str) -> web.StreamResponse:
        preferences = prefer(request)
        query = request.rel_url.query
        if request.method == "POST":
            if query:
                raise PostgrestError.not_supported("filters, select, order and limit on /rpc results")
            raw = await request.text()
            body = parse_json(raw) if raw.strip() else {}
            args = body if isinstance(body, dict) else None
        elif request.method in ("GET", "HEAD"):
            if any(key in tables.RESERVED_PARAMS for key in query):
                raise PostgrestError.not_supported("select, order, limit and offset on /rpc results")
            args = dict(query)
            raw = json.dumps(args)
        else:
            raise PostgrestError(405, "PGRST101", "Only GET and POST are allowed for functions")
        whole_body_allowed = request.method == "POST"
        from_cache = self._functions.get(name) is not None
        function = await find_function(self._database, self._functions, name, args, whole_body_allowed)
        try:
            result, count = await self._call(request, identity, function, args, raw)
        except psycopg.errors.UndefinedFunction:
            if not from_cache:  # read from the catalog just now: the function's own error
                raise
            self._functions.forget(name)  # dropped or replaced since it was cached: resolve it again, once
            function = await find_function(self._database, self._functions, name, args, whole_body_allowed)
            result, count = await self._call(request, identity, function, args, raw)
        headers = content_range(0, count - 1, count if preferences.get("count") == "exact" else None)
        if function.returns_void:
            return web.Response(status=204, headers=headers)
        if request.method == "HEAD":
            return web.Response(status=200, headers=headers, content_type="application/json")
        return web.Response(text=result, content_type="application/json", charset="utf-8", headers=headers)

    async def _call(
        self, request: web.Request, identity: Identity, function: Function, args: dict[str, Any] | None, raw: str
    ) -> tuple[str | None, int]:
        """Run ``function`` as the caller: its result as JSON text, and its row count."""
        statement, uses_body = call_statement(function, args)
        async with self._database.transaction(request, identity, f"rpc/{function.name}") as conn:
            cursor = await conn.execute(statement, [raw] if uses_body else [])
            result, count = await cursor.fetchone() or (None, 0)
        return result, count
