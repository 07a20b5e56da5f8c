"""The stack's HTTP front: one aiohttp application serving REST, Realtime and (opt-in) fault injection.

It runs in its own process (``python -m liveparams.stack serve``), started by
``LocalStack``, so a test can restart or kill it without touching the database.
REST connects as ``authenticator`` and switches role per request, as PostgREST
does; Realtime gets the superuser DSN because logical decoding needs it.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool

from liveparams.stack.faults import Faults, add_fault_routes
from liveparams.stack.postgres import AUTHENTICATOR, AUTHENTICATOR_PASSWORD
from liveparams.stack.realtime import add_realtime
from liveparams.stack.rest import RestApi

MAX_BODY_BYTES = 16 * 1024 * 1024
REST_POOL_SIZE = 10
SHUTDOWN_GRACE_S = 3.0


@dataclass(frozen=True)
class ServerConfig:
    """Where the front listens, the database it fronts, and whether fault injection is mounted."""

    port: int
    dsn: str
    jwt_secret: str
    enable_faults: bool = False
    host: str = "127.0.0.1"


def build_app(config: ServerConfig) -> web.Application:
    """Assemble the application; the REST pool opens on startup and closes on cleanup."""
    faults = Faults() if config.enable_faults else None
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    pool = AsyncConnectionPool(
        make_conninfo(config.dsn, user=AUTHENTICATOR, password=AUTHENTICATOR_PASSWORD),
        min_size=1,
        max_size=REST_POOL_SIZE,
        open=False,
        kwargs={"autocommit": True},
    )

    async def open_pool(_: web.Application) -> None:
        await pool.open(wait=True, timeout=30)

    async def close_pool(_: web.Application) -> None:
        await pool.close()

    async def health(_: web.Request) -> web.Response:
        """Ready means the database answers through the REST pool, not just that the port is open."""
        async with pool.connection() as conn:
            await conn.execute("select 1")
        return web.json_response({"status": "ok", "faults": faults is not None})

    app.on_startup.append(open_pool)
    app.on_cleanup.append(close_pool)
    app.router.add_get("/_liveparams/health", health)
    RestApi(pool, config.jwt_secret, faults).add_routes(app)
    add_realtime(app, dsn=config.dsn, jwt_secret=config.jwt_secret, faults=faults)
    if faults is not None:
        add_fault_routes(app, faults)
    return app


def serve(config: ServerConfig) -> None:
    """Run until SIGTERM/SIGINT."""
    print(f"liveparams local stack (development and tests only) listening on http://{config.host}:{config.port}")
    # A short grace period: open WebSockets must not hold up `liveparams stack down` for a minute.
    web.run_app(build_app(config), host=config.host, port=config.port, print=None, shutdown_timeout=SHUTDOWN_GRACE_S)
