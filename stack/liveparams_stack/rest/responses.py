"""Rendering an answer as PostgREST does: ``Content-Range``, 206/416 for pages, and the single-object media type."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from liveparams_stack.rest.errors import PostgrestError

__all__ = ["SINGLE_OBJECT", "content_range", "representation", "rows_response"]

SINGLE_OBJECT = "application/vnd.pgrst.object+json"


def content_range(lower: int, upper: int, total: int | None) -> dict[str, str]:
    """PostgREST's ``Content-Range``: ``lower-upper/total``, ``*`` for an empty range or an uncounted total."""
    span = f"{lower}-{upper}" if lower <= upper and total != 0 else "*"
    return {"Content-Range": f"{span}/{'*' if total is None else total}"}


def rows_response(
    request: web.Request, rows: list[Any], *, total: int | None, offset: int, head: bool = False
) -> web.Response:
    """A read's answer: 206 when a counted result is partial and 416 past its end, as PostgREST."""
    status = 200
    if total is not None and offset > total:
        raise PostgrestError(416, "PGRST103", "Requested range not satisfiable",
                             f"An offset of {offset} was requested, but there are only {total} rows.")  # fmt: skip
    if total is not None and len(rows) < total:
        status = 206
    headers = content_range(offset, offset + len(rows) - 1, total)
    if head:
        return web.Response(status=status, headers=headers)
    return representation(request, rows, status, headers)


def representation(request: web.Request, rows: list[Any], status: int, headers: dict[str, str]) -> web.Response:
    if SINGLE_OBJECT in request.headers.get("Accept", ""):
        if len(rows) != 1:
            raise PostgrestError(406, "PGRST116", "Cannot coerce the result to a single JSON object",
                                 f"The result contains {len(rows)} rows")  # fmt: skip
        return web.json_response(rows[0], status=status, headers=headers, content_type=SINGLE_OBJECT)
    return web.json_response(rows, status=status, headers=headers)
