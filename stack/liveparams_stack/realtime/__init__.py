"""Supabase Realtime server of the local stack (dev and tests only).

Speaks the Phoenix channel protocol as the real server does (vsn 1.0.0 for the
Python client, 2.0.0 with its binary frames for supabase-js; broadcast payloads must be JSON:
a binary payload is refused by name) and produces
``postgres_changes`` by logical decoding of the ``supabase_realtime``
publication, with each subscriber's filters and RLS applied. See
docs/internals.md, "Realtime", for the facts it relies on.
"""

from __future__ import annotations

from aiohttp import web

from liveparams_stack.faults import Faults
from liveparams_stack.realtime.broadcast_api import BroadcastApi
from liveparams_stack.realtime.cdc import PollCadence
from liveparams_stack.realtime.injector import SocketFaults
from liveparams_stack.realtime.service import RealtimeService

PATHS = ("/realtime/v1/websocket", "/socket/websocket")


def add_realtime(
    app: web.Application, *, dsn: str, jwt_secret: str, faults: Faults | None, poll_interval_ms: int | None = None
) -> None:
    """Mount the WebSocket endpoint on ``app`` with its startup/shutdown/cleanup hooks.

    ``faults`` is given only when the stack runs with fault injection enabled;
    the realtime faults are wired to it then and never otherwise.
    ``poll_interval_ms`` None keeps the fast test cadence; a number is the real
    server's ``poll_interval_ms`` with its idle back-off (see `PollCadence`).
    """
    service = RealtimeService(dsn, jwt_secret, PollCadence(poll_interval_ms))
    for path in PATHS:
        app.router.add_get(path, service.handle)
    BroadcastApi(service.hub, service.authorizer, jwt_secret).add_routes(app)
    app.on_startup.append(service.on_startup)
    app.on_shutdown.append(service.on_shutdown)
    app.on_cleanup.append(service.on_cleanup)
    if faults is not None:
        faults.realtime = SocketFaults(service.hub, service.connections)


__all__ = ["add_realtime"]
