"""The stack's HTTP front: one aiohttp application serving Auth, REST, Realtime and (opt-in) fault injection.

It runs in its own process (``python -m liveparams_stack serve``), started by
``LocalStack``, so a test can restart or kill it without touching the database.
REST connects as ``authenticator`` and switches role per request, as PostgREST
does; Auth writes GoTrue's ``auth.*`` tables through a pool of its own (GoTrue
logs in as an owner of that schema); Realtime gets the superuser DSN because
logical decoding needs it.
"""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool

from liveparams_stack.auth import AuthApi, AuthSettings
from liveparams_stack.faults import Faults, add_fault_routes
from liveparams_stack.local import LocalStack
from liveparams_stack.postgres import AUTHENTICATOR, AUTHENTICATOR_PASSWORD
from liveparams_stack.realtime import add_realtime
from liveparams_stack.rest import RestApi

MAX_BODY_BYTES = 16 * 1024 * 1024
REST_POOL_SIZE = 10
AUTH_POOL_SIZE = 4
SHUTDOWN_GRACE_S = 3.0
PARENT_POLL_S = 1.0
# Supabase services the stack does not run: each answers a clear refusal instead of a bare 404.
UNSERVED = {"/storage/v1": "Storage", "/functions/v1": "Edge Functions", "/graphql/v1": "GraphQL",
            "/pg": "the postgres-meta API"}  # fmt: skip
# What Supabase's gateway answers, so a browser UI on a dev server can use the stack as it uses Supabase.
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS",
    "Access-Control-Expose-Headers": (
        "Content-Range, Content-Location, Preference-Applied, X-Total-Count, Link, X-Supabase-Api-Version"
    ),
    "Access-Control-Max-Age": "3600",
}


@dataclass(frozen=True)
class ServerConfig:
    """Where the front listens, the database it fronts, and whether fault injection is mounted."""

    port: int
    dsn: str
    jwt_secret: str
    enable_faults: bool = False
    host: str = "127.0.0.1"
    # The project whose supabase/config.toml sets Auth's knobs, as it does for `supabase start`.
    project_dir: Path | None = None
    # The stack to release (PostgreSQL stopped, state deleted) if the process that started us dies.
    stop_with_parent: Path | None = None
    # Realtime's WAL poll interval like the real server's `poll_interval_ms`; None: the fast test cadence.
    realtime_poll_ms: int | None = None


def build_app(config: ServerConfig) -> web.Application:
    """Assemble the application; the REST pool opens on startup and closes on cleanup."""
    faults = Faults() if config.enable_faults else None
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[_cors])
    rest_conninfo = make_conninfo(config.dsn, user=AUTHENTICATOR, password=AUTHENTICATOR_PASSWORD)
    pool = AsyncConnectionPool(
        rest_conninfo,
        min_size=1,
        max_size=REST_POOL_SIZE,
        open=False,
        kwargs={"autocommit": True},
        check=AsyncConnectionPool.check_connection,
    )

    # Both pools check a connection before lending it: after PostgreSQL restarts, every idle one is
    # dead, and without the check each would fail one request with a 500 before the pool dropped it.
    auth_pool = AsyncConnectionPool(
        make_conninfo(config.dsn, options="-c TimeZone=UTC"),
        min_size=1,
        max_size=AUTH_POOL_SIZE,
        open=False,
        kwargs={"autocommit": True},
        check=AsyncConnectionPool.check_connection,
    )

    async def open_pool(_: web.Application) -> None:
        await pool.open(wait=True, timeout=30)
        await auth_pool.open(wait=True, timeout=30)

    async def close_pool(_: web.Application) -> None:
        await pool.close()
        await auth_pool.close()

    async def health(_: web.Request) -> web.Response:
        """Ready means the database answers through the REST pool, not just that the port is open."""
        async with pool.connection() as conn:
            await conn.execute("select 1")
        return web.json_response({"status": "ok", "faults": faults is not None})

    app.on_startup.append(open_pool)
    app.on_cleanup.append(close_pool)
    app.router.add_get("/_liveparams/health", health)
    RestApi(pool, rest_conninfo, config.jwt_secret, faults).add_routes(app)
    config_toml = config.project_dir / "supabase" / "config.toml" if config.project_dir else None
    AuthApi(auth_pool, AuthSettings.from_config(config_toml, config.jwt_secret)).add_routes(app)
    add_realtime(
        app, dsn=config.dsn, jwt_secret=config.jwt_secret, faults=faults, poll_interval_ms=config.realtime_poll_ms
    )
    for prefix, service in UNSERVED.items():
        app.router.add_route("*", prefix + "/{rest:.*}", _unserved(service))
    if faults is not None:
        add_fault_routes(app, faults)
    if config.stop_with_parent is not None:
        _stop_with_parent(app, config.stop_with_parent)  # last: its cleanup must run after the others
    return app


def _unserved(service: str) -> Handler:
    async def refuse(_: web.Request) -> web.Response:
        message = f"not supported by the liveparams development stack: {service}"
        return web.json_response({"statusCode": "501", "error": "not_supported", "message": message}, status=501)

    return refuse


@web.middleware
async def _cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer preflights and let any origin read responses (the keys are public local ones anyway)."""
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        allowed = request.headers.get("Access-Control-Request-Headers", "*")
        return web.Response(headers={**CORS_HEADERS, "Access-Control-Allow-Headers": allowed})
    response = await handler(request)
    if not response.prepared:  # a WebSocket has sent its headers long before it returns
        response.headers.update(CORS_HEADERS)
    return response


def _stop_with_parent(app: web.Application, state_dir: Path) -> None:
    """When our parent process is gone (re-parented), shut down and release the stack in ``state_dir``."""
    parent = os.getppid()
    orphaned = asyncio.Event()

    async def watch() -> None:
        while os.getppid() == parent:
            await asyncio.sleep(PARENT_POLL_S)
        print(f"the process that started the stack ({parent}) has exited; stopping the stack", flush=True)
        orphaned.set()
        os.kill(os.getpid(), signal.SIGTERM)  # run_app's handler: a graceful shutdown

    watcher: list[asyncio.Task[None]] = []

    async def start_watching(_: web.Application) -> None:
        watcher.append(asyncio.create_task(watch()))

    async def release(_: web.Application) -> None:
        watcher[0].cancel()
        if orphaned.is_set() and (stack := LocalStack.attach(state_dir)) is not None:
            stack.release()

    app.on_startup.append(start_watching)
    app.on_cleanup.append(release)


def serve(config: ServerConfig) -> None:
    """Run until SIGTERM/SIGINT."""
    print(f"liveparams local stack (development and tests only) listening on http://{config.host}:{config.port}")
    # A short grace period: open WebSockets must not hold up `liveparams stack down` for a minute.
    # No access log: Realtime URLs carry the apikey in their query string.
    web.run_app(
        build_app(config),
        host=config.host,
        port=config.port,
        print=None,
        shutdown_timeout=SHUTDOWN_GRACE_S,
        access_log=None,
    )
