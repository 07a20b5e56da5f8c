"""The realtime server's lifecycle: database connections, the change poller task, and socket upgrades."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import psycopg
from aiohttp import web
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from liveparams_stack.realtime.auth import AuthError, verify
from liveparams_stack.realtime.bindings import Binding
from liveparams_stack.realtime.catalog import BindingChecker
from liveparams_stack.realtime.cdc import ChangePoller, PollCadence
from liveparams_stack.realtime.connection import Connection, SocketContext
from liveparams_stack.realtime.hub import Hub
from liveparams_stack.realtime.policies import ChannelAuthorizer
from liveparams_stack.realtime.rls import ChangeRenderer
from liveparams_stack.realtime.serializers import serializer_for

log = logging.getLogger(__name__)

RECONNECT_DELAY_S = 1.0
SYNC_TIMEOUT_S = 5.0
CHECK_CONNECTIONS = 4  # joins and private broadcasts checked at once
CHECK_TIMEOUT_S = 10.0
MAX_CLIENT_FRAME_BYTES = 1024 * 1024


class RealtimeService:
    """Owns everything ``add_realtime`` mounts; its methods are the app's hooks and route handler."""

    def __init__(self, dsn: str, jwt_secret: str, cadence: PollCadence) -> None:
        self._dsn = dsn
        self._jwt_secret = jwt_secret
        self._cadence = cadence
        self.hub = Hub()
        self.connections: set[Connection] = set()
        self._poller: ChangePoller | None = None
        self._task: asyncio.Task[None] | None = None
        self._checks = AsyncConnectionPool(
            dsn,
            min_size=1,
            max_size=CHECK_CONNECTIONS,
            kwargs={"autocommit": True, "application_name": "liveparams-realtime-checks"},
            check=AsyncConnectionPool.check_connection,  # a database restart leaves dead ones behind
            timeout=CHECK_TIMEOUT_S,
            open=False,
        )
        self.authorizer = ChannelAuthorizer(dsn, self._checks)  # joins' and broadcasts' policy checks
        self._ctx = SocketContext(
            hub=self.hub,
            jwt_secret=jwt_secret,
            check_bindings=self._check_bindings,
            sync_poller=self._sync,
            authorizer=self.authorizer,
        )

    # App hooks -----------------------------------------------------------------------------------------------

    async def on_startup(self, app: web.Application) -> None:
        """Create Realtime's schema, connect and create the slot before serving, so a broken database fails loudly."""
        await self.authorizer.install_schema()
        await self._checks.open()
        conns = await self._connect()
        self._task = asyncio.create_task(self._run(conns), name="liveparams-realtime-poller")

    async def on_shutdown(self, app: web.Application) -> None:
        """Close every socket with 1001 (going away): clients reconnect to the next server."""
        await asyncio.gather(*(c.close(1001, "server shutting down") for c in list(self.connections)))

    async def on_cleanup(self, app: web.Application) -> None:
        await self._checks.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # Change capture ------------------------------------------------------------------------------------------

    async def _connect(self) -> tuple[psycopg.AsyncConnection[Any], ...]:
        """The poller's connection, which holds the slot, and the renderer's.

        Rendering runs as the subscribers' roles and their policies may fail; an error on the
        slot's session would drop the slot (PostgreSQL releases a session's temporary slots on any
        error) and with it every change not yet decoded, so the two never share a session.
        """
        conn = await psycopg.AsyncConnection.connect(self._dsn, autocommit=True, application_name="liveparams-realtime")
        try:
            render_conn = await psycopg.AsyncConnection.connect(
                self._dsn, autocommit=True, application_name="liveparams-realtime-render"
            )
        except psycopg.Error:
            await conn.close()
            raise
        self._poller = ChangePoller(conn, self.hub.deliver, self.hub.has_subscribers, self._cadence)
        self.hub.renderer = ChangeRenderer(render_conn)
        try:
            await self._poller.start()
        except psycopg.Error:
            await self._close((conn, render_conn))
            raise
        return conn, render_conn

    async def _run(self, conns: tuple[psycopg.AsyncConnection[Any], ...]) -> None:
        """Poll until cancelled; on a lost database connection, reconnect with a fresh slot.

        Changes committed in between are lost, as with the real server (at most once).
        """
        while True:
            try:
                assert self._poller is not None
                await self._poller.run()
            except psycopg.OperationalError as exc:
                log.error("realtime: database connection lost (%s); reconnecting", exc)
            except Exception:  # keep serving: a bug in one change must not end change capture for good
                log.exception("realtime: change capture failed; restarting it")
            finally:
                await self._close(conns)
            while True:
                await asyncio.sleep(RECONNECT_DELAY_S)
                try:
                    conns = await self._connect()
                    break
                except psycopg.OperationalError as exc:
                    log.warning("realtime: cannot reconnect to the database: %s", exc)

    async def _close(self, conns: tuple[psycopg.AsyncConnection[Any], ...]) -> None:
        """Closing the poller's session drops its temporary slot."""
        self.hub.renderer = None
        for conn in conns:
            with contextlib.suppress(psycopg.Error):
                await conn.close()

    async def _sync(self) -> None:
        """Wait until the poller decodes with the current publication; give up while it reconnects."""
        if self._poller is None:
            return
        try:
            await asyncio.wait_for(self._poller.sync(), SYNC_TIMEOUT_S)
        except TimeoutError:
            log.warning("realtime: the change poller did not re-read the publication within %.0f s", SYNC_TIMEOUT_S)

    async def _check_bindings(self, bindings: tuple[Binding, ...], role: str) -> str | None:
        """Check a join's bindings on a pooled connection: a connection per join made 1,000 joins take minutes."""
        try:
            async with self._checks.connection() as conn:
                return await BindingChecker(conn).check(bindings, role)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            return f"Realtime was unable to connect to the project database: {exc}"

    # WebSocket upgrade ---------------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Refusals before the upgrade are plain HTTP with ``{"error": ...}``, like the real server."""
        apikey = request.headers.get("x-api-key") or request.query.get("apikey")
        if not apikey:
            return web.json_response({"error": "No api key provided"}, status=401)
        try:
            identity = verify(apikey, self._jwt_secret)
        except AuthError as exc:
            return web.json_response({"error": str(exc)}, status=401)
        serializer = serializer_for(request.query.get("vsn"))
        if serializer is None:
            return web.json_response({"error": f"unsupported vsn {request.query.get('vsn')!r}"}, status=400)
        ws = web.WebSocketResponse(max_msg_size=MAX_CLIENT_FRAME_BYTES)
        await ws.prepare(request)
        conn = Connection(ws, serializer, self._ctx, identity)
        self.connections.add(conn)
        try:
            await conn.serve()
        finally:
            self.connections.discard(conn)
        return ws
