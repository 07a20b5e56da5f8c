"""``/rest/v1``: the subset of PostgREST that supabase-py and supabase-js use here.

Tables: ``GET`` (``select``, filters ``eq neq gt gte lt lte like ilike in is`` with
``not.``, ``order``, ``limit``, ``offset``, single object via ``Accept:
application/vnd.pgrst.object+json``, ``Prefer: count=exact``), ``POST`` (insert;
upsert with ``Prefer: resolution=merge-duplicates|ignore-duplicates`` and
``on_conflict``), ``PATCH`` (update) and ``DELETE``, each honouring ``Prefer:
return=representation``. Functions: ``POST``/``GET /rpc/<name>`` with named
arguments.

Every request runs in one transaction that does what PostgREST does: ``set
local role`` to the caller's role and ``request.jwt.claims`` to its claims, so
grants and Row Level Security decide, not this code. JSON is produced by
PostgreSQL (``json_agg``/``to_json``), as PostgREST does, so values are rendered
identically. Identifiers from the URL only ever reach SQL through
``psycopg.sql.Identifier``; values only as bound parameters.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from aiohttp import web
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from liveparams_stack.faults import Faults
from liveparams_stack.identity import ANON_ROLE, AuthError, Identity, identify

SCHEMA = "public"
EXPOSED_SCHEMAS = ("public", "graphql_public")
EXTRA_SEARCH_PATH = "public, extensions"
SINGLE_OBJECT = "application/vnd.pgrst.object+json"
_RESERVED_PARAMS = frozenset({"select", "order", "limit", "offset", "on_conflict", "columns"})
_COMPARISONS = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "like": "like",
                "ilike": "ilike"}  # fmt: skip
_ORDER_MODIFIERS = {"asc": "asc", "desc": "desc", "nullsfirst": "nulls first", "nullslast": "nulls last"}
_IS_VALUES = {"null": "null", "true": "true", "false": "false", "unknown": "unknown"}

# PostgREST's SQLSTATE -> HTTP status table (docs/references/errors.rst); anything else is 400.
_STATUS_BY_CODE = {"23503": 409, "23505": 409, "25006": 405, "53400": 500, "P0001": 400, "42883": 404, "42P01": 404,
                   "42P17": 500}  # fmt: skip
_STATUS_BY_CLASS = {"08": 503, "09": 500, "0L": 403, "0P": 403, "25": 500, "28": 403, "2D": 500, "38": 500, "39": 500,
                    "3B": 500, "40": 500, "53": 503, "54": 500, "55": 500, "57": 500, "58": 500, "F0": 500, "HV": 500,
                    "P0": 500, "XX": 500}  # fmt: skip


class PostgrestError(Exception):
    """An error answered in PostgREST's shape: ``{code, details, hint, message}`` with its status."""

    def __init__(self, status: int, code: str, message: str, details: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.status = status
        self.body = {"code": code, "details": details, "hint": hint, "message": message}

    @classmethod
    def from_database(cls, exc: psycopg.Error, role: str) -> PostgrestError:
        diag = exc.diag
        code = diag.sqlstate
        if code is None:  # no answer from the server at all: the connection or the pool failed
            return cls(503, "PGRST001", f"Database client error: {exc}")
        return cls(status_for_sqlstate(code, role), code, diag.message_primary or str(exc), diag.message_detail,
                   diag.message_hint)  # fmt: skip


def status_for_sqlstate(code: str, role: str) -> int:
    """The HTTP status PostgREST answers a database error with."""
    if code == "42501":
        return 401 if role == ANON_ROLE else 403
    if code.startswith("PT") and code[2:].isdigit():
        return int(code[2:])
    return _STATUS_BY_CODE.get(code) or _STATUS_BY_CLASS.get(code[:2], 400)


@dataclass(frozen=True)
class _Function:
    """A function callable through ``/rpc``: its input argument names and types, and how it returns."""

    name: str
    arg_names: tuple[str, ...]
    arg_types: tuple[str, ...]
    required: int
    returns_set: bool
    returns_void: bool


class RestApi:
    """The ``/rest/v1`` routes over a pool of connections logged in as ``authenticator``."""

    def __init__(self, pool: AsyncConnectionPool, jwt_secret: str, faults: Faults | None) -> None:
        self._pool = pool
        self._jwt_secret = jwt_secret
        self._faults = faults

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/rest/v1/{path:.*}", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        role = ANON_ROLE
        try:
            if self._faults is not None and (status := self._faults.take_rest_failure()) is not None:
                raise PostgrestError(status, "PGRST000", "fault injected by the local stack (rest_errors)")
            identity = identify(request.headers, self._jwt_secret)
            role = identity.role
            _check_schema(request)
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

    # -- tables ----------------------------------------------------------------------------------

    async def _table(self, request: web.Request, identity: Identity, table_name: str) -> web.StreamResponse:
        table = sql.Identifier(SCHEMA, table_name)
        query = request.rel_url.query
        where, params = _where(query)
        prefer = _prefer(request)
        select_list = _select_list(query.get("select", "*"))
        if request.method in ("GET", "HEAD"):
            order = _order_by(query.get("order"))
            page = _limit_offset(query)
            body_sql = sql.SQL("select {cols} from {table}{where}{order}{page}").format(
                cols=select_list, table=table, where=where, order=order, page=page
            )
            count_sql = sql.SQL("select count(*) from {table}{where}").format(table=table, where=where)
            async with self._transaction(request, identity, table_name) as conn:
                rows = await _json_rows(conn, body_sql, params)
                total = await _scalar(conn, count_sql, params) if prefer.get("count") == "exact" else None
            return _rows_response(request, rows, 200, total=total, head=request.method == "HEAD")

        payload = await _json_body(request)
        if request.method == "POST":
            statement, statement_params = await self._insert_sql(table, table_name, query, prefer, payload)
            status = 201
        elif request.method == "PATCH":
            if not isinstance(payload, dict) or not payload:
                raise PostgrestError(400, "PGRST102", "Empty or invalid json")
            columns = sql.SQL(", ").join(map(sql.Identifier, payload))
            statement = sql.SQL(
                "update {table} set ({cols}) = (select {cols} from json_populate_record(null::{table}, %s::json))"
                "{where} returning *"
            ).format(table=table, cols=columns, where=where)
            statement_params, status = [json.dumps(payload), *params], 200
        elif request.method == "DELETE":
            statement = sql.SQL("delete from {table}{where} returning *").format(table=table, where=where)
            statement_params, status = params, 200
        else:
            raise PostgrestError(405, "PGRST117", f"Unsupported HTTP method: {request.method}")

        returned = sql.SQL("select {cols} from _written").format(cols=select_list)
        async with self._transaction(request, identity, table_name) as conn:
            rows = await _json_rows(conn, returned, statement_params, written=statement)
        if prefer.get("return") != "representation":
            return web.Response(status=201 if status == 201 else 204, headers=_content_range(len(rows), None))
        return _rows_response(request, rows, status, total=None)

    async def _insert_sql(
        self, table: sql.Composable, table_name: str, query: Any, prefer: dict[str, str], payload: Any
    ) -> tuple[sql.Composable, list[Any]]:
        rows = payload if isinstance(payload, list) else [payload]
        if not rows or not all(isinstance(row, dict) for row in rows):
            raise PostgrestError(400, "PGRST102", "Empty or invalid json")
        names = _parse_list(query["columns"]) if "columns" in query else list(rows[0])
        if "columns" not in query and any(set(row) != set(names) for row in rows):
            raise PostgrestError(400, "PGRST102", "All object keys must match")
        columns = sql.SQL(", ").join(map(sql.Identifier, names))
        statement = sql.SQL(
            "insert into {table} ({cols}) select {cols} from json_populate_recordset(null::{table}, %s::json)"
        ).format(table=table, cols=columns)
        resolution = prefer.get("resolution")
        if resolution in ("merge-duplicates", "ignore-duplicates"):
            conflict = (
                _parse_list(query["on_conflict"]) if "on_conflict" in query else await self._primary_key(table_name)
            )
            target = sql.SQL(", ").join(map(sql.Identifier, conflict))
            if resolution == "ignore-duplicates":
                action: sql.Composable = sql.SQL("do nothing")
            else:
                action = sql.SQL("do update set ") + sql.SQL(", ").join(
                    sql.SQL("{c} = excluded.{c}").format(c=sql.Identifier(name)) for name in names
                )
            statement += sql.SQL(" on conflict ({target}) {action}").format(target=target, action=action)
        return statement + sql.SQL(" returning *"), [json.dumps(rows)]

    async def _primary_key(self, table_name: str) -> list[str]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "select a.attname from pg_index i"
                " join pg_class c on c.oid = i.indrelid join pg_namespace n on n.oid = c.relnamespace"
                " join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)"
                " where i.indisprimary and n.nspname = %s and c.relname = %s",
                [SCHEMA, table_name],
            )
            return [row[0] for row in await cursor.fetchall()]

    # -- functions -------------------------------------------------------------------------------

    async def _rpc(self, request: web.Request, identity: Identity, name: str) -> web.StreamResponse:
        if request.method == "POST":
            raw = await request.text()
            args = _parse_json(raw) if raw.strip() else {}
            if not isinstance(args, dict):
                raise PostgrestError(400, "PGRST102", "Empty or invalid json")
        elif request.method in ("GET", "HEAD"):
            args = dict(request.rel_url.query)
            raw = json.dumps(args)
        else:
            raise PostgrestError(405, "PGRST101", "Only GET and POST are allowed for functions")
        function = await self._find_function(name, set(args))
        given = [(n, t) for n, t in zip(function.arg_names, function.arg_types, strict=True) if n in args]
        call = sql.SQL("{fn}({args})").format(
            fn=sql.Identifier(SCHEMA, name),
            args=sql.SQL(", ").join(sql.SQL("{n} => _args.{n}").format(n=sql.Identifier(n)) for n, _ in given),
        )
        record = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in given)
        source = sql.SQL(" from json_to_record(%s::json) as _args({})").format(record) if given else sql.SQL("")
        if function.returns_set:
            source = source + (sql.SQL(", lateral ") if given else sql.SQL(" from ")) + call + sql.SQL(" _r")
            statement = sql.SQL("select coalesce(json_agg(_r), '[]'::json)::text") + source
        else:
            statement = sql.SQL("select to_json({call})::text").format(call=call) + source
        async with self._transaction(request, identity, f"rpc/{name}") as conn:
            result = await _scalar(conn, statement, [raw] if given else [])
        if function.returns_void:
            return web.Response(status=204)
        return web.Response(text=result, content_type="application/json", charset="utf-8")

    async def _find_function(self, name: str, given: set[str]) -> _Function:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "select coalesce(p.proargnames[1:p.pronargs], '{}'), "
                "array(select format_type(t, null) from unnest(p.proargtypes) t), "
                "p.pronargs - p.pronargdefaults, p.proretset, p.prorettype = 'void'::regtype "
                "from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
                "where n.nspname = %s and p.proname = %s and p.prokind = 'f' and p.proargmodes is null",
                [SCHEMA, name],
            )
            candidates = [
                _Function(name, tuple(names), tuple(types), required, returns_set, returns_void)
                for names, types, required, returns_set, returns_void in await cursor.fetchall()
            ]
        for function in candidates:
            if given <= set(function.arg_names) and set(function.arg_names[: function.required]) <= given:
                return function
        listed = ", ".join(sorted(given))
        raise PostgrestError(
            404,
            "PGRST202",
            f"Could not find the function {SCHEMA}.{name}({listed}) in the schema cache",
            f"Searched for the function {SCHEMA}.{name} with parameters {listed} or with a single unnamed json/jsonb "
            "parameter, but no matches were found in the schema cache.",
        )

    # -- plumbing --------------------------------------------------------------------------------

    @asynccontextmanager
    async def _transaction(
        self, request: web.Request, identity: Identity, path: str
    ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection in a transaction that runs as the caller, set up as PostgREST does it."""
        headers = {key.lower(): value for key, value in request.headers.items()}
        settings = [EXTRA_SEARCH_PATH, json.dumps(identity.claims), request.method, f"/{path}", json.dumps(headers)]
        async with self._pool.connection() as conn, conn.transaction():
            # One round trip; set_config('role', ...) is SET LOCAL ROLE with the name as a bound value.
            await conn.execute(
                "select set_config('search_path', %s, true), set_config('request.jwt.claims', %s, true),"
                " set_config('request.method', %s, true), set_config('request.path', %s, true),"
                " set_config('request.headers', %s, true), set_config('role', %s, true)",
                [*settings, identity.role],
            )
            yield conn


def _check_schema(request: web.Request) -> None:
    header = "Accept-Profile" if request.method in ("GET", "HEAD") else "Content-Profile"
    schema = request.headers.get(header, SCHEMA)
    if schema != SCHEMA:
        raise PostgrestError(
            406, "PGRST106", f"Invalid schema: {schema}",
            hint=f"Only the following schemas are exposed: {', '.join(EXPOSED_SCHEMAS)} (the local stack: {SCHEMA})",
        )  # fmt: skip


def _select_list(select: str) -> sql.Composable:
    """``*`` or ``col``/``alias:col`` items; embedding and casts are not part of the subset."""
    items: list[sql.Composable] = []
    for item in filter(None, (part.strip() for part in select.split(","))):
        if item == "*":
            items.append(sql.SQL("*"))
            continue
        alias, colon, column = item.partition(":")
        if not colon:
            alias, column = "", item
        if "::" in item or not column.replace("_", "").isalnum():
            raise PostgrestError(400, "PGRST100", f'"failed to parse select parameter ({select})"',
                                 "the local stack supports plain columns and aliases only")  # fmt: skip
        identifier = sql.Identifier(column)
        items.append(sql.SQL("{} as {}").format(identifier, sql.Identifier(alias)) if alias else identifier)
    return sql.SQL(", ").join(items) if items else sql.SQL("*")


def _where(query: Any) -> tuple[sql.Composable, list[Any]]:
    conditions: list[sql.Composable] = []
    params: list[Any] = []
    for column, expression in query.items():
        if column in _RESERVED_PARAMS:
            continue
        negate, operator, value = _split_filter(column, expression)
        target = sql.Identifier(column)
        if operator in _COMPARISONS:
            if operator in ("like", "ilike"):
                value = value.replace("*", "%")
            condition: sql.Composable = sql.SQL("{} {} %s").format(target, sql.SQL(_COMPARISONS[operator]))
            params.append(value)
        elif operator == "is" and value in _IS_VALUES:
            condition = sql.SQL("{} is {}").format(target, sql.SQL(_IS_VALUES[value]))
        elif operator == "in" and value.startswith("(") and value.endswith(")"):
            values = _parse_list(value[1:-1])
            placeholders = sql.SQL(", ").join(sql.Placeholder() * len(values)) if values else sql.SQL("null")
            condition = sql.SQL("{} in ({})").format(target, placeholders)
            params.extend(values)
        else:
            raise PostgrestError(400, "PGRST100", f'"failed to parse filter ({expression})" (line 1, column 1)')
        conditions.append(sql.SQL("not ({})").format(condition) if negate else condition)
    if not conditions:
        return sql.SQL(""), params
    return sql.SQL(" where ") + sql.SQL(" and ").join(conditions), params


def _split_filter(column: str, expression: str) -> tuple[bool, str, str]:
    negate = expression.startswith("not.")
    if negate:
        expression = expression[4:]
    operator, dot, value = expression.partition(".")
    if not dot:
        raise PostgrestError(400, "PGRST100", f'"failed to parse filter ({expression})" (line 1, column 1)')
    return negate, operator, value


def _parse_list(text: str) -> list[str]:
    """PostgREST's lists (``in.(a,"b,c",d)``, ``columns="a","b"``): commas separate, double quotes protect."""
    values: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            values.append("".join(current))
            current = []
        else:
            current.append(char)
    values.append("".join(current))
    return values if text else []


def _order_by(order: str | None) -> sql.Composable:
    if not order:
        return sql.SQL("")
    terms: list[sql.Composable] = []
    for term in order.split(","):
        column, *modifiers = term.strip().split(".")
        parts: list[sql.Composable] = [sql.Identifier(column)]
        for modifier in modifiers:
            keyword = _ORDER_MODIFIERS.get(modifier)
            if keyword is None:
                raise PostgrestError(400, "PGRST100", f'"failed to parse order ({order})" (line 1, column 1)')
            parts.append(sql.SQL(keyword))
        terms.append(sql.SQL(" ").join(parts))
    return sql.SQL(" order by ") + sql.SQL(", ").join(terms)


def _limit_offset(query: Any) -> sql.Composable:
    clause: sql.Composable = sql.SQL("")
    for name in ("limit", "offset"):
        if name in query:
            try:
                number = int(query[name])
            except ValueError:
                raise PostgrestError(400, "PGRST100", f'"failed to parse {name} parameter ({query[name]})"') from None
            clause += sql.SQL(f" {name} ") + sql.Literal(number)
    return clause


def _prefer(request: web.Request) -> dict[str, str]:
    preferences: dict[str, str] = {}
    for header in request.headers.getall("Prefer", []):
        for item in header.split(","):
            key, _, value = item.strip().partition("=")
            preferences[key] = value
    return preferences


async def _json_body(request: web.Request) -> Any:
    return _parse_json(await request.text()) if request.method != "DELETE" else None


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise PostgrestError(400, "PGRST102", "Empty or invalid json") from None


async def _json_rows(
    conn: psycopg.AsyncConnection[Any], query: sql.Composable, params: list[Any], written: sql.Composable | None = None
) -> list[Any]:
    """Run ``query`` (reading ``_written``, the rows the ``written`` statement returned, if given) as a JSON array."""
    wrapped = sql.SQL("select coalesce(json_agg(_row), '[]'::json)::text from ({}) _row").format(query)
    if written is not None:  # a data-modifying WITH must be at the top level
        wrapped = sql.SQL("with _written as ({}) ").format(written) + wrapped
    text = await _scalar(conn, wrapped, params)
    rows = json.loads(text)
    assert isinstance(rows, list)
    return rows


async def _scalar(conn: psycopg.AsyncConnection[Any], query: sql.Composable, params: list[Any]) -> Any:
    cursor = await conn.execute(sql.Composed([query]), params)
    row = await cursor.fetchone()
    return row[0] if row else None


def _content_range(count: int, total: int | None) -> dict[str, str]:
    span = f"0-{count - 1}" if count else "*"
    return {"Content-Range": f"{span}/{'*' if total is None else total}"}


def _rows_response(
    request: web.Request, rows: list[Any], status: int, *, total: int | None, head: bool = False
) -> web.Response:
    headers = _content_range(len(rows), total)
    if SINGLE_OBJECT in request.headers.get("Accept", ""):
        if len(rows) != 1:
            raise PostgrestError(406, "PGRST116", "Cannot coerce the result to a single JSON object",
                                 f"The result contains {len(rows)} rows")  # fmt: skip
        return web.json_response(rows[0], status=status, headers=headers, content_type=SINGLE_OBJECT)
    if head:
        return web.Response(status=status, headers=headers)
    return web.json_response(rows, status=status, headers=headers)


__all__ = ["PostgrestError", "RestApi", "status_for_sqlstate"]
