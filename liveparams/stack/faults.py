"""Fault injection for the local stack (tests only).

Nothing here is reachable unless the stack was started with faults enabled:
``add_fault_routes`` is only called by the server in that case, and the realtime
server only consults a ``Faults`` object it was handed.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web


@dataclass
class Faults:
    """Mutable fault state shared by the REST front and the realtime server."""

    rest_failures_left: int = 0
    rest_failure_status: int = 503

    def take_rest_failure(self) -> int | None:
        """Return the HTTP status to fail the next REST request with, or None."""
        if self.rest_failures_left <= 0:
            return None
        self.rest_failures_left -= 1
        return self.rest_failure_status


def add_fault_routes(app: web.Application, faults: Faults) -> None:
    """Mount ``POST /_liveparams/faults/<action>``."""

    async def handle(request: web.Request) -> web.Response:
        action = request.match_info["action"]
        body = await request.json() if request.can_read_body else {}
        if action == "rest_errors":
            faults.rest_failures_left = int(body.get("count", 1))
            faults.rest_failure_status = int(body.get("status", 503))
        elif action == "reset":
            faults.rest_failures_left = 0
        else:
            return web.json_response({"error": f"unknown fault action {action!r}"}, status=404)
        return web.json_response({"ok": True})

    app.router.add_post("/_liveparams/faults/{action}", handle)
