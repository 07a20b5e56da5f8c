"""The SQL of a table request: ``select`` list, filters, order and page, and the insert/update/delete statements.

Identifiers from the URL only ever reach SQL through ``psycopg.sql.Identifier``; values only
as bound parameters. Writes target the alias ``_target`` so that ``database.written_rows``
can return what they wrote.
"""

from __future__ import annotations

import json
from typing import Any

from psycopg import sql

from liveparams_stack.rest.errors import PostgrestError
from liveparams_stack.rest.reading import parse_list

__all__ = [
    "RESERVED_PARAMS",
    "insert_columns",
    "insert_statement",
    "limit_offset",
    "order_by",
    "select_list",
    "update_statement",
    "where",
]

RESERVED_PARAMS = frozenset({"select", "order", "limit", "offset", "on_conflict", "columns"})
_COMPARISONS = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "like": "like",
                "ilike": "ilike", "match": "~", "imatch": "~*", "isdistinct": "is distinct from", "cs": "@>",
                "cd": "<@", "ov": "&&", "sl": "<<", "sr": ">>", "nxr": "&<", "nxl": "&>", "adj": "-|-"}  # fmt: skip
_FULL_TEXT = {"fts": "to_tsquery", "plfts": "plainto_tsquery", "phfts": "phraseto_tsquery",
              "wfts": "websearch_to_tsquery"}  # fmt: skip
_ORDER_MODIFIERS = {"asc": "asc", "desc": "desc", "nullsfirst": "nulls first", "nullslast": "nulls last"}
_IS_VALUES = {"null": "null", "not_null": "not null", "true": "true", "false": "false", "unknown": "unknown"}


def select_list(select: str) -> sql.Composable:
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


def where(query: Any) -> tuple[sql.Composable, list[Any]]:
    """The ``where`` clause of the query string's filters (every non-reserved parameter), and its values."""
    conditions: list[sql.Composable] = []
    params: list[Any] = []
    for column, expression in query.items():
        if column in RESERVED_PARAMS:
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
            values = parse_list(value[1:-1])
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


def order_by(order: str | None) -> sql.Composable:
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


def limit_offset(query: Any) -> sql.Composable:
    clause: sql.Composable = sql.SQL("")
    for name in ("limit", "offset"):
        if name in query:
            try:
                number = int(query[name])
            except ValueError:
                raise PostgrestError(400, "PGRST100", f'"failed to parse {name} parameter ({query[name]})"') from None
            clause += sql.SQL(f" {name} ") + sql.Literal(number)
    return clause


def insert_columns(query: Any, payload: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows of an insert body and the columns they set (``columns=`` or the first row's keys)."""
    rows = payload if isinstance(payload, list) else [payload]
    if not rows or not all(isinstance(row, dict) for row in rows):
        raise PostgrestError(400, "PGRST102", "Empty or invalid json")
    names = parse_list(query["columns"]) if "columns" in query else list(rows[0])
    if "columns" not in query and any(set(row) != set(names) for row in rows):
        raise PostgrestError(400, "PGRST102", "All object keys must match")
    return rows, names


def insert_statement(
    table: sql.Composable,
    names: list[str],
    defaults: list[tuple[str, str]],
    resolution: str | None,
    conflict: list[str],
) -> sql.Composable:
    """``insert`` of the JSON array bound as its one parameter.

    ``defaults``: ``(column, default expression)`` for keys a row may lack (``Prefer: missing=default``),
    evaluated per row. ``resolution``/``conflict``: an upsert's ``Prefer: resolution`` on these columns.
    """
    columns = sql.SQL(", ").join(map(sql.Identifier, names))
    source: sql.Composable = sql.SQL("%s::json")
    if defaults:
        pairs = sql.SQL(", ").join(sql.SQL("{}, {}").format(sql.Literal(n), sql.SQL(d)) for n, d in defaults)
        source = sql.SQL(
            "(select coalesce(jsonb_agg(jsonb_build_object({pairs}) || _e), '[]') from"
            " jsonb_array_elements(%s::jsonb) _e)::json"
        ).format(pairs=pairs)
    statement = sql.SQL(
        "insert into {table} as _target ({cols}) select {cols} from json_populate_recordset(null::{table}, {src})"
    ).format(table=table, cols=columns, src=source)
    if resolution in ("merge-duplicates", "ignore-duplicates"):
        target = sql.SQL(", ").join(map(sql.Identifier, conflict))
        if resolution == "ignore-duplicates":
            action: sql.Composable = sql.SQL("do nothing")
        else:
            action = sql.SQL("do update set ") + sql.SQL(", ").join(
                sql.SQL("{c} = excluded.{c}").format(c=sql.Identifier(name)) for name in names
            )
        statement += sql.SQL(" on conflict ({target}) {action}").format(target=target, action=action)
    return statement


def update_statement(table: sql.Composable, payload: Any, where_clause: sql.Composable) -> tuple[sql.Composable, str]:
    """``update`` setting the body's keys; returns the statement and the JSON to bind before the filters' values."""
    if not isinstance(payload, dict) or not payload:
        raise PostgrestError(400, "PGRST102", "Empty or invalid json")
    columns = sql.SQL(", ").join(map(sql.Identifier, payload))
    statement = sql.SQL(
        "update {table} as _target set ({cols}) = (select {cols} from json_populate_record(null::{table}, %s::json))"
        "{where}"
    ).format(table=table, cols=columns, where=where_clause)
    return statement, json.dumps(payload)
