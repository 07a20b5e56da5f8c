"""``/rest/v1``: the subset of PostgREST that supabase-py and supabase-js use here.

Tables: ``GET`` (``select``, the filter operators in ``_COMPARISONS`` plus ``in``,
``is`` and full-text search, each with ``not.``, ``order``, ``limit``,
``offset``, single object via ``Accept: application/vnd.pgrst.object+json``),
``POST`` (insert; upsert with ``Prefer: resolution=merge-duplicates|ignore-duplicates``
and ``on_conflict``; ``Prefer: missing=default``), ``PATCH`` (update) and
``DELETE``, each honouring ``Prefer: return=representation`` and ``Prefer:
count=exact``. Functions: ``POST``/``GET /rpc/<name>`` with named arguments, or
one unnamed json/jsonb parameter that takes the whole body. Everything else
PostgREST offers (embedding, ``or``/``and``, ``Range``, CSV, …) is refused with
`not_supported`, never answered differently. ``Prefer: tx`` is accepted and
ignored, as on ``supabase start`` (its PostgREST runs with ``db-tx-end=commit``).

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
NOT_SUPPORTED = "not supported by the liveparams development stack: "
_RESERVED_PARAMS = frozenset({"select", "order", "limit", "offset", "on_conflict", "columns"})
_COMPARISONS = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "like": "like",
                "ilike": "ilike", "match": "~", "imatch": "~*", "isdistinct": "is distinct from", "cs": "@>",
                "cd": "<@", "ov": "&&", "sl": "<<", "sr": ">>", "nxr": "&<", "nxl": "&>", "adj": "-|-"}  # fmt: skip
_FULL_TEXT = {"fts": "to_tsquery", "plfts": "plainto_tsquery", "phfts": "phraseto_tsquery",
              "wfts": "websearch_to_tsquery"}  # fmt: skip
# Prefer values PostgREST accepts (any other is "invalid": ignored, or refused under handling=strict).
_PREFERENCES = {"resolution": {"merge-duplicates", "ignore-duplicates"}, "return": {"representation", "minimal",
                "headers-only"}, "count": {"exact", "planned", "estimated"}, "tx": {"commit", "rollback"},
                "missing": {"default", "null"}, "handling": {"strict", "lenient"}}  # fmt: skip
_UNSUPPORTED_PREFERENCES = {("count", "planned"), ("count", "estimated"), ("return", "headers-only")}
# Response media types PostgREST can produce that the stack does not.
_UNSUPPORTED_MEDIA = ("text/csv", "application/geo+json", "application/vnd.pgrst.plan", "application/octet-stream",
                      "text/plain", "text/xml", "nulls=stripped")  # fmt: skip
_ORDER_MODIFIERS = {"asc": "asc", "desc": "desc", "nullsfirst": "nulls first", "nullslast": "nulls last"}
_IS_VALUES = {"null": "null", "not_null": "not null", "true": "true", "false": "false", "unknown": "unknown"}

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
    def not_supported(cls, feature: str) -> PostgrestError:
        """What every PostgREST feature the stack lacks answers, instead of a different result."""
        return cls(501, "PGRST501", NOT_SUPPORTED + feature,
                   hint="Run this request against `supabase start`, or use the subset in docs/testing.md.")  # fmt: skip

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

    @property
    def takes_whole_body(self) -> bool:
        """One unnamed json/jsonb parameter: PostgREST passes it the request body as is."""
        return len(self.arg_types) == 1 and not self.arg_names[0] and self.arg_types[0] in ("json", "jsonb")

    def signature(self) -> str:
        params = ", ".join(f"{n} => {t}" for n, t in zip(self.arg_names, self.arg_types, strict=True))
        return f"{SCHEMA}.{self.name}({params})"


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
            _check_supported(request)
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
            offset = int(query.get("offset", 0))
            return _rows_response(request, rows, total=total, offset=offset, head=request.method == "HEAD")

        if any(name in query for name in ("order", "limit", "offset")):
            raise PostgrestError.not_supported(f"order, limit and offset on {request.method}")
        payload = await _json_body(request)
        if request.method == "POST":
            statement, statement_params = await self._insert_sql(table, table_name, query, prefer, payload)
        elif request.method == "PATCH":
            if not isinstance(payload, dict) or not payload:
                raise PostgrestError(400, "PGRST102", "Empty or invalid json")
            columns = sql.SQL(", ").join(map(sql.Identifier, payload))
            statement = sql.SQL(
                "update {table} as _target set ({cols}) = (select {cols} from json_populate_record(null::{table},"
                " %s::json)){where}"
            ).format(table=table, cols=columns, where=where)
            statement_params = [json.dumps(payload), *params]
        elif request.method == "DELETE":
            statement = sql.SQL("delete from {table} as _target{where}").format(table=table, where=where)
            statement_params = params
        elif request.method == "PUT":
            raise PostgrestError.not_supported("PUT (single-row upsert); use POST with Prefer: resolution")
        else:
            raise PostgrestError(405, "PGRST117", f"Unsupported HTTP method: {request.method}")

        async with self._transaction(request, identity, table_name) as conn:
            rows, affected, inserted = await _written_rows(conn, statement, statement_params, select_list)
        total = affected if prefer.get("count") == "exact" else None
        if request.method == "POST":
            # PostgREST: 201, or 200 when a merge-duplicates upsert inserted nothing (every row was an update).
            nothing_new = inserted == 0 and prefer.get("resolution") == "merge-duplicates"
            status, content_range = (200 if nothing_new else 201), _content_range(1, 0, total)
        else:
            status, content_range = 200, _content_range(0, affected - 1, total)
            if request.method == "DELETE":
                content_range = _content_range(1, 0, total)
        if prefer.get("return") != "representation":
            return web.Response(status=204 if status == 200 and request.method != "POST" else status,
                                headers=content_range)  # fmt: skip
        return _representation(request, rows, status, content_range)

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
        source: sql.Composable = sql.SQL("%s::json")
        if prefer.get("missing") == "default":  # keys a row lacks take the column default, evaluated per row
            defaults = await self._column_defaults(table_name, names)
            if defaults:
                pairs = sql.SQL(", ").join(sql.SQL("{}, {}").format(sql.Literal(n), sql.SQL(d)) for n, d in defaults)
                source = sql.SQL(
                    "(select coalesce(jsonb_agg(jsonb_build_object({pairs}) || _e), '[]') from"
                    " jsonb_array_elements(%s::jsonb) _e)::json"
                ).format(pairs=pairs)
        statement = sql.SQL(
            "insert into {table} as _target ({cols}) select {cols} from json_populate_recordset(null::{table}, {src})"
        ).format(table=table, cols=columns, src=source)
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
        return statement, [json.dumps(rows)]

    async def _column_defaults(self, table_name: str, names: list[str]) -> list[tuple[str, str]]:
        """``(column, default expression)`` for the named columns that have a default, from the catalog."""
        rows = await self._catalog(
            "select a.attname, pg_get_expr(d.adbin, d.adrelid) from pg_attribute a"
            " join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum"
            " where a.attrelid = (quote_ident(%s) || '.' || quote_ident(%s))::regclass"
            " and a.attname = any(%s) and a.attgenerated = ''",
            [SCHEMA, table_name, names],
        )
        return [(name, expression) for name, expression in rows]

    async def _primary_key(self, table_name: str) -> list[str]:
        rows = await self._catalog(
            "select a.attname from pg_index i"
            " join pg_class c on c.oid = i.indrelid join pg_namespace n on n.oid = c.relnamespace"
            " join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)"
            " where i.indisprimary and n.nspname = %s and c.relname = %s",
            [SCHEMA, table_name],
        )
        return [row[0] for row in rows]

    async def _catalog(self, query: str, params: list[Any]) -> list[tuple[Any, ...]]:
        """Rows of a catalog query, outside the caller's transaction (as PostgREST's schema cache is)."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(query, params)
            return await cursor.fetchall()

    # -- functions -------------------------------------------------------------------------------

    async def _rpc(self, request: web.Request, identity: Identity, name: str) -> web.StreamResponse:
        prefer = _prefer(request)
        query = request.rel_url.query
        if request.method == "POST":
            if query:
                raise PostgrestError.not_supported("filters, select, order and limit on /rpc results")
            raw = await request.text()
            body = _parse_json(raw) if raw.strip() else {}
            args = body if isinstance(body, dict) else None
        elif request.method in ("GET", "HEAD"):
            if any(key in _RESERVED_PARAMS for key in query):
                raise PostgrestError.not_supported("select, order, limit and offset on /rpc results")
            args = dict(query)
            raw = json.dumps(args)
        else:
            raise PostgrestError(405, "PGRST101", "Only GET and POST are allowed for functions")
        function = await self._find_function(name, args, whole_body_allowed=request.method == "POST")
        source: sql.Composable = sql.SQL("")
        if function.takes_whole_body:
            call = sql.SQL("{fn}(%s::{t})").format(fn=sql.Identifier(SCHEMA, name), t=sql.SQL(function.arg_types[0]))
            uses_body = True
        else:
            assert args is not None
            given = [(n, t) for n, t in zip(function.arg_names, function.arg_types, strict=True) if n in args]
            call = sql.SQL("{fn}({args})").format(
                fn=sql.Identifier(SCHEMA, name),
                args=sql.SQL(", ").join(sql.SQL("{n} => _args.{n}").format(n=sql.Identifier(n)) for n, _ in given),
            )
            record = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in given)
            if given:
                source = sql.SQL(" from json_to_record(%s::json) as _args({})").format(record)
            uses_body = bool(given)
        if function.returns_set:
            joiner = sql.SQL(", lateral ") if uses_body and not function.takes_whole_body else sql.SQL(" from ")
            statement = sql.SQL("select coalesce(json_agg(_r), '[]'::json)::text, count(*)") + source + joiner
            statement += call + sql.SQL(" _r")
        else:
            # A scalar NULL is the JSON body `null`, as PostgREST answers it, never an empty body.
            statement = sql.SQL("select coalesce(to_json({call})::text, 'null'), 1").format(call=call) + source
        async with self._transaction(request, identity, f"rpc/{name}") as conn:
            cursor = await conn.execute(statement, [raw] if uses_body else [])
            result, count = await cursor.fetchone() or (None, 0)
        headers = _content_range(0, count - 1, count if prefer.get("count") == "exact" else None)
        if function.returns_void:
            return web.Response(status=204, headers=headers)
        if request.method == "HEAD":
            return web.Response(status=200, headers=headers, content_type="application/json")
        return web.Response(text=result, content_type="application/json", charset="utf-8", headers=headers)

    async def _find_function(self, name: str, args: dict[str, Any] | None, whole_body_allowed: bool) -> _Function:
        """Pick the function PostgREST would call for these argument names, or refuse as it does (PGRST202/203)."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "select coalesce(p.proargnames[1:p.pronargs], array_fill(''::text, array[p.pronargs])), "
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
        given = set(args) if args is not None else None
        matches = [
            function
            for function in candidates
            if given is not None
            and given <= set(function.arg_names)
            and set(function.arg_names[: function.required]) <= given
            and all(function.arg_names)
        ]
        if not matches and whole_body_allowed:
            matches = [function for function in candidates if function.takes_whole_body]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise PostgrestError(
                300,
                "PGRST203",
                "Could not choose the best candidate function between: "
                + ", ".join(function.signature() for function in matches),
                hint="Try renaming the parameters or the function itself in the database so function overloading"
                " can be resolved",
            )
        listed = ", ".join(sorted(given or ()))
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


def _check_supported(request: web.Request) -> None:
    """Refuse request features PostgREST has and the stack lacks, before they could change a result."""
    if "Range" in request.headers:
        raise PostgrestError.not_supported("the Range header (use limit and offset)")
    accept = request.headers.get("Accept", "").lower()
    for media in _UNSUPPORTED_MEDIA:
        if media in accept:
            raise PostgrestError.not_supported(f"Accept: {media}")
    content_type = request.headers.get("Content-Type", "application/json").lower()
    if request.method in ("POST", "PATCH", "PUT") and "json" not in content_type and request.can_read_body:
        raise PostgrestError.not_supported(f"Content-Type: {content_type}")
    for key in request.rel_url.query:
        if key in ("or", "and", "not.or", "not.and"):
            raise PostgrestError.not_supported("or/and filters")
        if "->" in key:
            raise PostgrestError.not_supported("JSON paths (->, ->>)")
        if "." in key:
            raise PostgrestError.not_supported("filters, order and limits on embedded resources")


def _select_list(select: str) -> sql.Composable:
    """``*`` or ``col``/``alias:col`` items; embedding, aggregates, casts and JSON paths are refused."""
    items: list[sql.Composable] = []
    for item in filter(None, (part.strip() for part in select.split(","))):
        if item == "*":
            items.append(sql.SQL("*"))
            continue
        if "(" in item or item.startswith("..."):
            raise PostgrestError.not_supported("embedded resources and aggregates in select")
        if "::" in item:
            raise PostgrestError.not_supported("casts in select")
        if "->" in item:
            raise PostgrestError.not_supported("JSON paths (->, ->>)")
        alias, colon, column = item.partition(":")
        if not colon:
            alias, column = "", item
        if not column.replace("_", "").isalnum():
            raise PostgrestError(400, "PGRST100", f'"failed to parse select parameter ({select})"')
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
        language, paren, _ = operator.partition("(")
        if paren and language in _FULL_TEXT:  # fts(english).word
            config = operator[len(language) + 1 : -1]
            condition: sql.Composable = sql.SQL("{} @@ {}(%s::regconfig, %s)").format(
                target, sql.SQL(_FULL_TEXT[language])
            )
            params.extend([config, value])
        elif paren:
            raise PostgrestError.not_supported(f"the {operator} filter modifier")
        elif operator in _FULL_TEXT:
            condition = sql.SQL("{} @@ {}(%s)").format(target, sql.SQL(_FULL_TEXT[operator]))
            params.append(value)
        elif operator in _COMPARISONS:
            if operator in ("like", "ilike"):
                value = value.replace("*", "%")
            if operator == "ov" and value.startswith("(") and value.endswith(")"):
                value = "{" + value[1:-1] + "}"  # PostgREST's list syntax for arrays
            condition = sql.SQL("{} {} %s").format(target, sql.SQL(_COMPARISONS[operator]))
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
    if "->" in order or "(" in order:
        raise PostgrestError.not_supported("ordering by JSON paths or embedded resources")
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
    """The ``Prefer`` header as PostgREST reads it: unknown values ignored, or refused under handling=strict."""
    preferences: dict[str, str] = {}
    invalid: list[str] = []
    for header in request.headers.getall("Prefer", []):
        for item in filter(None, (part.strip() for part in header.split(","))):
            key, _, value = item.partition("=")
            if key in ("max-affected", "timezone"):
                raise PostgrestError.not_supported(f"Prefer: {key}")
            if (key, value) in _UNSUPPORTED_PREFERENCES:
                raise PostgrestError.not_supported(f"Prefer: {item}")
            if value in _PREFERENCES.get(key, ()):
                preferences.setdefault(key, value)
            else:
                invalid.append(item)
    if invalid and preferences.get("handling") == "strict":
        raise PostgrestError(400, "PGRST122", "Invalid preferences given with handling=strict",
                             f"Invalid preferences: {', '.join(invalid)}")  # fmt: skip
    return preferences


async def _json_body(request: web.Request) -> Any:
    return _parse_json(await request.text()) if request.method != "DELETE" else None


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise PostgrestError(400, "PGRST102", "Empty or invalid json") from None
    except RecursionError:  # PostgREST hands such a body to PostgreSQL, which takes far deeper JSON
        raise PostgrestError.not_supported("JSON bodies nested deeper than Python reads (about 1,000 levels)") from None


async def _json_rows(conn: psycopg.AsyncConnection[Any], query: sql.Composable, params: list[Any]) -> list[Any]:
    """Run ``query`` and return its rows as a JSON array rendered by PostgreSQL."""
    wrapped = sql.SQL("select coalesce(json_agg(_row), '[]'::json)::text from ({}) _row").format(query)
    rows = json.loads(await _scalar(conn, wrapped, params))
    assert isinstance(rows, list)
    return rows


async def _written_rows(
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


async def _scalar(conn: psycopg.AsyncConnection[Any], query: sql.Composable, params: list[Any]) -> Any:
    cursor = await conn.execute(sql.Composed([query]), params)
    row = await cursor.fetchone()
    return row[0] if row else None


def _content_range(lower: int, upper: int, total: int | None) -> dict[str, str]:
    """PostgREST's ``Content-Range``: ``lower-upper/total``, ``*`` for an empty range or an uncounted total."""
    span = f"{lower}-{upper}" if lower <= upper and total != 0 else "*"
    return {"Content-Range": f"{span}/{'*' if total is None else total}"}


def _rows_response(
    request: web.Request, rows: list[Any], *, total: int | None, offset: int, head: bool = False
) -> web.Response:
    """A read's answer: 206 when a counted result is partial and 416 past its end, as PostgREST."""
    status = 200
    if total is not None and offset > total:
        raise PostgrestError(416, "PGRST103", "Requested range not satisfiable",
                             f"An offset of {offset} was requested, but there are only {total} rows.")  # fmt: skip
    if total is not None and len(rows) < total:
        status = 206
    headers = _content_range(offset, offset + len(rows) - 1, total)
    if head:
        return web.Response(status=status, headers=headers)
    return _representation(request, rows, status, headers)


def _representation(request: web.Request, rows: list[Any], status: int, headers: dict[str, str]) -> web.Response:
    if SINGLE_OBJECT in request.headers.get("Accept", ""):
        if len(rows) != 1:
            raise PostgrestError(406, "PGRST116", "Cannot coerce the result to a single JSON object",
                                 f"The result contains {len(rows)} rows")  # fmt: skip
        return web.json_response(rows[0], status=status, headers=headers, content_type=SINGLE_OBJECT)
    return web.json_response(rows, status=status, headers=headers)


__all__ = ["PostgrestError", "RestApi", "status_for_sqlstate"]
