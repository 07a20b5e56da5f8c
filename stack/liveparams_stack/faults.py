"""Fault injection for the local stack: test-only, and only when the stack is started with faults enabled.

The server assembly calls `add_fault_routes` only behind that switch, and hands a
`Faults` object to the REST front and the realtime server only then; without it
nothing here runs. ``POST /_liveparams/faults/<action>`` with a JSON body:

==================  ========================  ==========================================================
action              body                      effect
==================  ========================  ==========================================================
close_sockets       ``{code}`` (1011)         close sockets with that WebSocket close code
stall_sockets       ``{}``                    stop reading and writing (no close, pings unanswered):
                                              what the server sends meanwhile is lost, what the
                                              client sends waits to be read
unstall_sockets     ``{}``                    resume stalled sockets
phx_error           ``{}``                    ``phx_error`` on each channel (a channel crash)
system_error        ``{message}``             ``system`` error push; the channel stays joined
stale_phx_close     ``{}``                    ``phx_close`` with a superseded join ref
expire_token        ``{}``                    "Token has expired" ``system`` error, then ``phx_close``
rest_errors         ``{count, status,         fail the next ``count`` REST requests with ``status``, or
                    seconds, path}``          all of them for ``seconds``; with ``path``, only those whose
                                              path holds it (``rpc/record_parameter_update_outcomes``)
changes             ``{mode}``                ``normal`` | ``hold`` (until normal) | ``drop``: database
                                              changes, postgres_changes and Broadcast from Database alike
private_only        ``{enabled}`` (true)      refuse public joins, as a hosted project whose Realtime
                                              settings turn "Allow public access" off does
reset               ``{}``                    undo everything above
==================  ========================  ==========================================================

Realtime actions apply to every joined channel (or the sockets holding one) unless
``{"topic": "realtime:<name>"}`` narrows them. The reply is ``{"action", "affected"}``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast

from aiohttp import web

ChangesMode = Literal["normal", "hold", "drop"]
CHANGES_MODES = ("normal", "hold", "drop")


class FaultError(Exception):
    """A fault request that cannot be applied; ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class RealtimeFaults(Protocol):
    """What the realtime server exposes to fault injection; each returns how many sockets/channels it hit."""

    def close_sockets(self, code: int, topic: str | None) -> int: ...
    def stall_sockets(self, topic: str | None) -> int: ...
    def unstall_sockets(self, topic: str | None) -> int: ...
    def phx_error(self, topic: str | None) -> int: ...
    def system_error(self, message: str, topic: str | None) -> int: ...
    def stale_phx_close(self, topic: str | None) -> int: ...
    def expire_token(self, topic: str | None) -> int: ...
    def set_changes_mode(self, mode: ChangesMode, topic: str | None) -> int: ...
    def set_private_only(self, enabled: bool) -> int: ...
    def reset(self) -> None: ...


@dataclass
class Faults:
    """Fault state shared by the REST front and the realtime server."""

    rest_failures_left: int = 0
    rest_failure_status: int = 503
    rest_failures_until: float = 0.0
    """Monotonic time until which every (matching) REST request fails: an outage of a given length."""
    rest_failure_path: str = ""
    """Only requests whose path holds this fail (all when empty): one RPC can fail while the rest works."""
    realtime: RealtimeFaults | None = None
    """Set by ``add_realtime`` when it is given this object."""

    def take_rest_failure(self, path: str = "") -> int | None:
        """Return the HTTP status to fail this REST request (``path`` under /rest/v1/) with, or None."""
        if self.rest_failure_path not in path:
            return None
        if time.monotonic() < self.rest_failures_until:
            return self.rest_failure_status
        if self.rest_failures_left <= 0:
            return None
        self.rest_failures_left -= 1
        return self.rest_failure_status

    def apply(self, action: str, body: dict[str, Any]) -> int:
        """Apply one action; returns how many things it affected. Raises `FaultError`."""
        if action == "rest_errors":
            seconds, path = body.get("seconds", 0), body.get("path", "")
            if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
                raise FaultError(400, "seconds must be a number of seconds")
            if not isinstance(path, str):
                raise FaultError(400, "path must be a string such as rpc/<name>")
            self.rest_failures_left = _int(body, "count", 0 if seconds else 1)
            self.rest_failure_status = _int(body, "status", 503)
            self.rest_failures_until = time.monotonic() + seconds
            self.rest_failure_path = path
            return self.rest_failures_left
        if action == "reset":
            self.rest_failures_left, self.rest_failures_until, self.rest_failure_path = 0, 0.0, ""
            if self.realtime is not None:
                self.realtime.reset()
            return 0
        return self._apply_realtime(action, body)

    def _apply_realtime(self, action: str, body: dict[str, Any]) -> int:
        realtime = self.realtime
        if realtime is None:
            raise FaultError(409, "the realtime server is not running")
        topic = body.get("topic")
        if topic is not None and not isinstance(topic, str):
            raise FaultError(400, "topic must be a string such as realtime:<name>")
        if action == "close_sockets":
            return realtime.close_sockets(_int(body, "code", 1011), topic)
        if action == "stall_sockets":
            return realtime.stall_sockets(topic)
        if action == "unstall_sockets":
            return realtime.unstall_sockets(topic)
        if action == "phx_error":
            return realtime.phx_error(topic)
        if action == "system_error":
            return realtime.system_error(str(body.get("message", "Unknown Error on Channel")), topic)
        if action == "stale_phx_close":
            return realtime.stale_phx_close(topic)
        if action == "expire_token":
            return realtime.expire_token(topic)
        if action == "changes":
            mode = body.get("mode")
            if mode not in CHANGES_MODES:
                raise FaultError(400, f"mode must be one of {', '.join(CHANGES_MODES)}")
            return realtime.set_changes_mode(cast(ChangesMode, mode), topic)
        if action == "private_only":
            enabled = body.get("enabled", True)
            if not isinstance(enabled, bool):
                raise FaultError(400, "enabled must be true or false")
            return realtime.set_private_only(enabled)
        raise FaultError(404, f"unknown fault action {action!r}")


def _int(body: dict[str, Any], key: str, default: int) -> int:
    value = body.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise FaultError(400, f"{key} must be an integer")
    return value


def add_fault_routes(app: web.Application, faults: Faults) -> None:
    """Mount ``POST /_liveparams/faults/<action>``; call only when faults are enabled."""

    async def handle(request: web.Request) -> web.Response:
        action = request.match_info["action"]
        try:
            body = await request.json() if request.can_read_body else {}
            if not isinstance(body, dict):
                raise FaultError(400, "the body must be a JSON object")
            affected = faults.apply(action, body)
        except FaultError as exc:
            return web.json_response({"error": str(exc)}, status=exc.status)
        except ValueError:
            return web.json_response({"error": "the body must be JSON"}, status=400)
        return web.json_response({"action": action, "affected": affected})

    app.router.add_post("/_liveparams/faults/{action}", handle)
