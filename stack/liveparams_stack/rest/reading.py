"""Reading a request, before any SQL: its schema, the features it uses, its ``Prefer`` header and its body.

What the stack lacks is refused here, by name, before it could change a result.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from liveparams_stack.rest.errors import PostgrestError

__all__ = ["SCHEMA", "check_schema", "check_supported", "json_body", "parse_json", "parse_list", "prefer"]

SCHEMA = "public"
EXPOSED_SCHEMAS = ("public", "graphql_public")
# Prefer values PostgREST accepts (any other is "invalid": ignored, or refused under handling=strict).
_PREFERENCES = {"resolution": {"merge-duplicates", "ignore-duplicates"}, "return": {"representation", "minimal",
                "headers-only"}, "count": {"exact", "planned", "estimated"}, "tx": {"commit", "rollback"},
                "missing": {"default", "null"}, "handling": {"strict", "lenient"}}  # fmt: skip
_UNSUPPORTED_PREFERENCES = {("count", "planned"), ("count", "estimated"), ("return", "headers-only")}
# Response media types PostgREST can produce that the stack does not.
_UNSUPPORTED_MEDIA = ("text/csv", "application/geo+json", "application/vnd.pgrst.plan", "application/octet-stream",
                      "text/plain", "text/xml", "nulls=stripped")  # fmt: skip


def check_schema(request: web.Request) -> None:
    header = "Accept-Profile" if request.method in ("GET", "HEAD") else "Content-Profile"
    schema = request.headers.get(header, SCHEMA)
    if schema != SCHEMA:
        raise PostgrestError(
            406, "PGRST106", f"Invalid schema: {schema}",
            hint=f"Only the following schemas are exposed: {', '.join(EXPOSED_SCHEMAS)} (the local stack: {SCHEMA})",
        )  # fmt: skip


def check_supported(request: web.Request) -> None:
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


def prefer(request: web.Request) -> dict[str, str]:
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


async def json_body(request: web.Request) -> Any:
    return parse_json(await request.text()) if request.method != "DELETE" else None


def parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise PostgrestError(400, "PGRST102", "Empty or invalid json") from None
    except RecursionError:  # PostgREST hands such a body to PostgreSQL, which takes far deeper JSON
        raise PostgrestError.not_supported("JSON bodies nested deeper than Python reads (about 1,000 levels)") from None


def parse_list(text: str) -> list[str]:
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
