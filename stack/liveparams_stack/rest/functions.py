"""``/rpc/<name>``: which function PostgREST would call for the arguments given, and the SQL that calls it.

Named arguments pick among overloads by their names; one unnamed json/jsonb parameter takes the
whole body. No match, or more than one, is refused as PostgREST refuses it (PGRST202/203).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from liveparams_stack.rest.database import Database
from liveparams_stack.rest.errors import PostgrestError
from liveparams_stack.rest.reading import SCHEMA
from liveparams_stack.rest.schema_cache import SchemaCache

__all__ = ["Function", "FunctionCache", "call_statement", "find_function"]


@dataclass(frozen=True)
class Function:
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


FunctionCache = SchemaCache[tuple[Function, ...]]

CATALOG_QUERY = (
    "select coalesce(p.proargnames[1:p.pronargs], array_fill(''::text, array[p.pronargs])), "
    "array(select format_type(t, null) from unnest(p.proargtypes) t), "
    "p.pronargs - p.pronargdefaults, p.proretset, p.prorettype = 'void'::regtype "
    "from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
    "where n.nspname = %s and p.proname = %s and p.prokind = 'f' and p.proargmodes is null"
)


async def _candidates(database: Database, cache: FunctionCache, name: str) -> tuple[Function, ...]:
    generation = cache.generation
    rows = await database.catalog(CATALOG_QUERY, [SCHEMA, name])
    candidates = tuple(
        Function(name, tuple(names), tuple(types), required, returns_set, returns_void)
        for names, types, required, returns_set, returns_void in rows
    )
    cache.put(name, candidates, generation)
    return candidates


async def find_function(
    database: Database, cache: FunctionCache, name: str, args: dict[str, Any] | None, whole_body_allowed: bool
) -> Function:
    """Pick the function PostgREST would call for these argument names, or refuse as it does (PGRST202/203).

    From the schema cache when it has the name and a match; the catalog is read before any refusal.
    """
    cached = cache.get(name)
    if cached is not None:
        with contextlib.suppress(PostgrestError):
            return _pick(cached, name, args, whole_body_allowed)
    return _pick(await _candidates(database, cache, name), name, args, whole_body_allowed)


def _pick(
    candidates: tuple[Function, ...], name: str, args: dict[str, Any] | None, whole_body_allowed: bool
) -> Function:
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


def call_statement(function: Function, args: dict[str, Any] | None) -> tuple[sql.Composed, bool]:
    """The ``select`` that calls ``function`` and renders its result as JSON text, with its row count.

    Returns the statement and whether it takes the request body (JSON) as its one parameter.
    """
    fn = sql.Identifier(SCHEMA, function.name)
    source: sql.Composable = sql.SQL("")
    if function.takes_whole_body:
        call = sql.SQL("{fn}(%s::{t})").format(fn=fn, t=sql.SQL(function.arg_types[0]))
        uses_body = True
    else:
        assert args is not None
        given = [(n, t) for n, t in zip(function.arg_names, function.arg_types, strict=True) if n in args]
        call = sql.SQL("{fn}({args})").format(
            fn=fn,
            args=sql.SQL(", ").join(sql.SQL("{n} => _args.{n}").format(n=sql.Identifier(n)) for n, _ in given),
        )
        record = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in given)
        if given:
            source = sql.SQL(" from json_to_record(%s::json) as _args({})").format(record)
        uses_body = bool(given)
    if function.returns_set:
        joiner = sql.SQL(", lateral ") if uses_body and not function.takes_whole_body else sql.SQL(" from ")
        statement = sql.SQL("select coalesce(json_agg(_r), '[]'::json)::text, count(*)") + source + joiner
        return statement + call + sql.SQL(" _r"), uses_body
    # A scalar NULL is the JSON body `null`, as PostgREST answers it, never an empty body.
    return sql.SQL("select coalesce(to_json({call})::text, 'null'), 1").format(call=call) + source, uses_body
