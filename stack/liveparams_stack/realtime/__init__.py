"""Supabase Realtime server of the local stack (dev and tests only).

Speaks the Phoenix channel protocol as the real server does (vsn 1.0.0 for the
Python client, 2.0.0 with binary broadcasts for supabase-js) and produces
``postgres_changes`` by logical decoding of the ``supabase_realtime``
publication, with each subscriber's filters and RLS applied. See
``/work/shared/realtime-protocol.md`` §9 for the checklist it follows.
"""

from __future__ import annotations

from aiohttp import web

from liveparams_stack.faults import Faults
from liveparams_stack.realtime.injector import SocketFaults
from liveparams_stack.realtime.service import RealtimeService

PATHS = ("/realtime/v1/websocket", "/socket/websocket")


def add_realtime(app: web.Application, *, dsn: str, jwt_secret: str, faults: Faults | None) -> None:
    """Mount the WebSocket endpoint on ``app`` with its startup/shutdown/cleanup hooks.

    ``faults`` is given only when the stack runs with fault injection enabled;
    the realtime faults are wired to it then and never otherwise.
    """
    service = RealtimeService(dsn, jwt_secret)
    for path in PATHS:
        app.router.add_get(path, service.handle)
    app.on_startup.append(service.on_startup)
    app.on_shutdown.append(service.on_shutdown)
    app.on_cleanup.append(service.on_cleanup)
    if faults is not None:
        faults.realtime = SocketFaults(service.hub, service.connections)


__all__ = ["add_realtime"]
