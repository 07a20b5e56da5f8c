"""``postgres_changes`` filters, parsed at join and evaluated in PostgreSQL.

The grammar the real server accepts (docs/internals.md, "Realtime: filters"):
``column=[not.]op.value`` with op one of eq, neq, lt, lte, gt, gte, in, like,
ilike, is, match, imatch, isdistinct; several conditions separated by top-level
commas are ANDed (commas inside ``in.(…)`` or a double-quoted value do not
split). Conditions are evaluated on the new row (the old identity for DELETE)
with PostgreSQL operators on the column's type, so ``id=eq.<UUID in upper
case>`` matches as it does there, and a NULL column fails every condition but
``is.null`` and ``isdistinct``.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

OPERATORS = ("eq", "neq", "lt", "lte", "gt", "gte", "in", "like", "ilike", "is", "match", "imatch", "isdistinct")
_INFIX = {
    "eq": "=",
    "neq": "!=",
    "lt": "<",
    "lte": "<=",
    "gt": ">",
    "gte": ">=",
    "like": "LIKE",
    "ilike": "ILIKE",
    "match": "~",
    "imatch": "~*",
}
IS_KEYWORDS = ("null", "true", "false", "unknown")
MAX_IN_VALUES = 100


class FilterError(ValueError):
    """A filter string the server cannot parse; ``str()`` is its ``system`` error message."""


@dataclass(frozen=True)
class Condition:
    """One ``column=[not.]op.value``; ``value`` of ``in`` is a PostgreSQL array literal ``{a,b}``."""

    column: str
    op: str
    value: str
    negate: bool = False

    def predicate(self, value_sql: sql.Composable, type_sql: sql.Composable) -> sql.Composed:
        """SQL true when ``value_sql`` (text of the column, cast to ``type_sql``) passes; never NULL."""
        left = sql.SQL("({})::{}").format(value_sql, type_sql)
        right = sql.Literal(self.value)
        if self.op == "isdistinct":
            keyword = "IS NOT DISTINCT FROM" if self.negate else "IS DISTINCT FROM"
            return sql.SQL("coalesce({} {} {}::{}, false)").format(left, sql.SQL(keyword), right, type_sql)
        if self.op == "is":
            keyword = "IS NOT" if self.negate else "IS"
            return sql.SQL("coalesce({} {} {}, false)").format(left, sql.SQL(keyword), sql.SQL(self.value.upper()))
        if self.op == "in":
            test = sql.SQL("{} = any({}::{}[])").format(left, right, type_sql)
        else:
            test = sql.SQL("{} {} {}::{}").format(left, sql.SQL(_INFIX[self.op]), right, type_sql)
        return sql.SQL("coalesce({}({}), false)").format(sql.SQL("not " if self.negate else ""), test)

    def describe(self) -> str:
        """As the real server logs it: an Elixir tuple."""
        return f'{{"{self.column}", "{self.op}", "{self.value}", {str(self.negate).lower()}}}'


@dataclass(frozen=True)
class Filter:
    """The AND of a binding's conditions."""

    conditions: tuple[Condition, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.column for c in self.conditions))


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses and double quotes (a quote opens only after ``.``, ``(`` or ``,``)."""
    parts: list[str] = []
    current: list[str] = []
    depth, quoted, prev = 0, False, ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quoted:
            if ch == "\\" and i + 1 < len(text):
                current.append(text[i : i + 2])
                prev = text[i + 1]
                i += 2
                continue
            if ch == '"':
                quoted = False
            current.append(ch)
        elif ch == '"' and prev in (".", "(", ","):
            quoted = True
            current.append(ch)
        elif ch == "(":
            depth += 1
            current.append(ch)
        elif ch == ")":
            depth = max(0, depth - 1)
            current.append(ch)
        elif ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            ch = ""
        else:
            current.append(ch)
        prev = ch
        i += 1
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    """``"a,b"`` → ``a,b`` (backslash escapes the next character); a malformed quote is kept as written."""
    if not value.startswith('"'):
        return value
    out: list[str] = []
    i = 1
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            out.append(value[i + 1])
            i += 2
        elif ch == '"':
            return "".join(out) if i == len(value) - 1 else value
        else:
            out.append(ch)
            i += 1
    return value


def _elixir_list(parts: list[str]) -> str:
    return "[" + ", ".join(f'"{p}"' for p in parts) + "]"


def _parse_condition(segment: str) -> Condition:
    text = segment.strip()
    if not text:
        raise FilterError(
            "Error parsing `filter` params: filter must not contain empty segments (check for extra commas)"
        )
    column, sep, rest = text.partition("=")
    if not sep:
        raise FilterError(f"Error parsing `filter` params: {_elixir_list([text])}")
    negate = rest.startswith("not.")
    op_value = rest.removeprefix("not.")
    op, dot, value = op_value.partition(".")
    if not dot:
        raise FilterError(f"Error parsing `filter` params: {_elixir_list([op_value])}")
    if op not in OPERATORS:
        raise FilterError(f"Error parsing `filter` params: {_elixir_list([op, value])}")
    if op == "in":
        if len(value) < 2 or value[0] != "(" or value[-1] != ")":
            raise FilterError("Error parsing `filter` params: `in` filter value must be wrapped by parentheses")
        return Condition(column, op, "{" + value[1:-1] + "}", negate)
    return Condition(column, op, _unquote(value), negate)


def parse_filter(text: str | None) -> Filter | None:
    """Parse a binding's ``filter``; blank means no filter."""
    if text is None or not text.strip():
        return None
    return Filter(tuple(_parse_condition(segment) for segment in _split_top_level(text.strip())))
