"""``postgres_changes`` filters (``column=op.value``), parsed at join and evaluated in PostgreSQL.

Only the classic, documented operators: eq, neq, lt, lte, gt, gte, in. They are
evaluated on the new row with PostgreSQL operators on the column's type, like the
real server, so ``id=eq.<UUID in upper case>`` matches as it does there.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

OPERATORS = {"eq": "=", "neq": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
MAX_IN_VALUES = 100


class FilterError(ValueError):
    """A filter string the server cannot parse; the message goes into the ``system`` error."""


@dataclass(frozen=True)
class Filter:
    column: str
    op: str
    values: tuple[str, ...]

    def predicate(self, value_sql: sql.Composable, type_sql: sql.Composable) -> sql.Composed:
        """SQL that is true when ``value_sql`` (text of the column, cast to ``type_sql``) passes."""
        cast_value = sql.SQL("({})::{}").format(value_sql, type_sql)
        if self.op == "in":
            return sql.SQL("coalesce({} = any({}::{}[]), false)").format(
                cast_value, sql.Literal(list(self.values)), type_sql
            )
        return sql.SQL("coalesce({} {} {}::{}, false)").format(
            cast_value, sql.SQL(OPERATORS[self.op]), sql.Literal(self.values[0]), type_sql
        )


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def parse_filter(text: str | None) -> Filter | None:
    """Parse ``column=op.value`` (or ``column=in.(a,b)``); blank means no filter."""
    if text is None or not text.strip():
        return None
    column, sep, rest = text.partition("=")
    op, dot, value = rest.partition(".")
    if not sep or not dot or not column.strip():
        raise FilterError(f'Error parsing `filter` params: ["{text}"]')
    if op == "in":
        if not (value.startswith("(") and value.endswith(")")):
            raise FilterError(f"Error parsing `filter` params: in requires a list like (a,b), got {value!r}")
        values = tuple(_unquote(v) for v in value[1:-1].split(",") if v.strip())
        if not values or len(values) > MAX_IN_VALUES:
            raise FilterError(f"Error parsing `filter` params: in takes 1 to {MAX_IN_VALUES} values")
        return Filter(column.strip(), op, values)
    if op not in OPERATORS:
        raise FilterError(f"Error parsing `filter` params: unsupported operator {op!r}")
    return Filter(column.strip(), op, (_unquote(value),))
