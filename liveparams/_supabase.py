"""The official ``supabase`` async client, built, quieted and its errors read one way for the agent and the CLI.

**Building it** (:func:`create_client`). REST (``liveparams.agent``'s ``_rest``), each Realtime
subscription (its ``_subscription``) and the user's side (``liveparams._api``) make their own
client and must authenticate the same way:

- ``api_key`` is the ``apikey`` the API gateway checks (a project key; on the local stack any
  project-signed JWT, so a job token alone works as both).
- ``bearer``, when given and different, is the ``Authorization`` bearer for REST and the
  ``access_token`` Realtime authorises channels with, so RLS sees it: a job token with the
  project's anon key, or a signed-in user's access token.

**Its log lines** (:func:`quiet_client_logs`). While a server is down the Realtime client logs
``ERROR Connection attempt failed`` and ``ERROR Connection failed permanently after 1 attempts``
on every reconnection attempt (every 1-2 s with the agent's rebuilds), which people read as
fatal. The agent and ``liveparams watch`` already say it once per outage (``Realtime push is
down``, ``disconnected, retrying``) and once when it is back. So the client's records are
demoted to DEBUG: they still show when someone debugs the ``realtime`` logger, and never otherwise.

**Its errors** (:func:`mapped_errors`, :func:`is_transient_code`). Every REST, RPC and Auth call
of the agent and of the CLI runs inside :func:`mapped_errors`, the one translator from the
clients' exceptions (postgrest's ``APIError``, supabase_auth's ``AuthError``, httpx's transport
errors) to the caller's own: it reads each into a :class:`ClientFailure` (what the server said,
or that nothing answered) and raises what the caller builds from it, ``from`` the original.
:func:`is_transient_code` says which answers are worth retrying, for the agent's writes and
for ``liveparams watch``'s reconnection alike.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
from postgrest.exceptions import APIError
from supabase import AsyncClient, AsyncClientOptions, acreate_client
from supabase.types import RealtimeClientOptions
from supabase_auth.errors import AuthApiError, AuthError

__all__ = [
    "CLIENT_ERRORS",
    "ClientFailure",
    "create_client",
    "http_client",
    "is_transient_code",
    "mapped_errors",
    "quiet_client_logs",
    "quiet_client_task_failures",
    "read_failure",
]

CLIENT_LOGGER = "realtime"

# SQLSTATE classes worth retrying: connection (08), transaction rollback (40), insufficient
# resources (53), operator intervention (57, e.g. an admin shutdown), system error (58, XX).
_TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "57", "58", "XX")
# What the official clients raise for a call that failed: the server's refusal, Auth's, or no answer.
CLIENT_ERRORS = (APIError, AuthError, httpx.HTTPError)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The process's one TLS context: building one loads the CA bundle (~30 ms of CPU), which every
    new httpx client did; that was a third of an agent's start (docs/benchmarks.md, issue 23)."""
    return httpx.create_ssl_context()


def http_client(timeout: float | None = None, keepalive: float | None = None) -> httpx.AsyncClient:
    """An httpx client on the shared TLS context; ``timeout`` in seconds (``None``: httpx's default).

    ``keepalive``: seconds an idle connection is kept for the next call (``None``: httpx's 5 s). A caller
    that calls every few seconds passes more, so that each call does not open (and handshake) a new one.
    """
    expiry = 5.0 if keepalive is None else keepalive
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=expiry)  # else httpx's
    if timeout is None:
        return httpx.AsyncClient(verify=_tls_context(), limits=limits)
    return httpx.AsyncClient(timeout=timeout, verify=_tls_context(), limits=limits)


async def create_client(
    url: str,
    api_key: str,
    bearer: str | None = None,
    *,
    schema: str = "public",
    realtime: RealtimeClientOptions | None = None,
    http_client: httpx.AsyncClient | None = None,
) -> AsyncClient:
    """A client for the project at ``url``; no network is touched until it is used.

    ``http_client`` carries REST calls (the caller closes it). Retries are the caller's:
    the client's own would not respect the agent's shutdown deadline.
    """
    options = AsyncClientOptions(
        schema=schema,
        headers={"Authorization": f"Bearer {bearer}"} if bearer else {},
        auto_refresh_token=False,
        persist_session=False,
        postgrest_client_retry=False,
        realtime=realtime,
        httpx_client=http_client,
    )
    client = await acreate_client(url, api_key, options)
    if bearer and bearer != api_key:
        await client.realtime.set_auth(bearer)  # no channel yet: only sets the join's access_token
    return client


class _DemoteToDebug(logging.Filter):
    """Rewrites a record to DEBUG, and lets it through only where DEBUG is enabled for its logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG:
            record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


_FILTER = _DemoteToDebug()


def quiet_client_logs() -> None:
    """Install the demotion on every logger of the client (idempotent; call once its modules are imported).

    A filter on a logger only sees records logged on that very logger, not its children's,
    so it goes on each of the client's module loggers.
    """
    import realtime  # noqa: F401  (its modules create their loggers on import)

    names = [name for name in logging.root.manager.loggerDict if name.split(".")[0] == CLIENT_LOGGER]
    for name in names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def quiet_client_task_failures(loop: asyncio.AbstractEventLoop) -> None:
    """Log the client's own unretrieved task failures at DEBUG of its logger instead of printing them.

    When a socket closes while the client reconnects on its own, it can start a listen or heartbeat
    task that fails at once (``NotConnectedError``) and is never awaited; asyncio would then print
    "Task exception was never retrieved" and a traceback to the training's stderr. The supervisor
    sees the effect through ``Subscription.health()``; the line is the client's, demoted as its
    others are (:func:`quiet_client_logs`). Failures of any other task keep asyncio's handling.
    """

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        task = context.get("task") or context.get("future")
        coro = task.get_coro() if isinstance(task, asyncio.Task) else None
        code = getattr(coro, "cr_code", None)
        if code is not None and f"{os.sep}{CLIENT_LOGGER}{os.sep}" in code.co_filename:
            logging.getLogger(CLIENT_LOGGER).debug("%s: %r", context.get("message"), context.get("exception"))
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(handle)


def is_transient_code(code: str | None) -> bool:
    """Whether an error code from PostgREST (or the HTTP status it was derived from) is worth retrying.

    ``code`` is an HTTP status for non-PostgREST error pages ("503"), ``PGRST0xx`` for
    PostgREST's own connection errors, or a SQLSTATE. An unknown or missing code is
    treated as transient: retrying a refusal costs a little, dropping an outcome costs the user.
    """
    if not code:
        return True
    if code.isdigit() and len(code) == 3:
        return code >= "500" or code in ("408", "429")
    if code.startswith("PGRST"):
        return code[5:6] == "0"  # PGRST0xx: connection/pool errors; 1xx-3xx: request, schema, auth
    return code.startswith(_TRANSIENT_SQLSTATE_CLASSES)


@dataclass(frozen=True)
class ClientFailure:
    """A failed call, read one way whatever the client raised.

    Args:
        code (`str`, *optional*): PostgREST's code, a SQLSTATE, an HTTP status or Auth's error code;
            ``None`` when nothing answered.
        message (`str`): the server's words (``""`` when it gave none), or the transport error's.
        kind (`str`): the class name of what the client raised (``APIError``, ``ConnectError``, ...).
        answered (`bool`): whether the server answered (a refusal) rather than could not be reached.
        cause (`Exception`): what the client raised, for a caller that needs more than the above.
    """

    code: str | None
    message: str
    kind: str
    answered: bool
    cause: Exception = field(repr=False, compare=False)

    @property
    def from_auth(self) -> bool:
        """Whether Auth (supabase_auth) raised it, rather than PostgREST's client or the transport."""
        return isinstance(self.cause, AuthError)

    @property
    def transient(self) -> bool:
        """Whether the same call may succeed later (no answer, or an answer :func:`is_transient_code` retries)."""
        return not self.answered or is_transient_code(self.code)


def read_failure(exc: Exception) -> ClientFailure:
    """``exc`` (one of :data:`CLIENT_ERRORS`) as a :class:`ClientFailure`."""
    kind = type(exc).__name__
    if isinstance(exc, APIError):
        return ClientFailure(exc.code, exc.message or "", kind, answered=True, cause=exc)
    if isinstance(exc, AuthError):  # AuthApiError: Auth answered; AuthRetryableError and the like: it did not
        return ClientFailure(exc.code, exc.message, kind, answered=isinstance(exc, AuthApiError), cause=exc)
    return ClientFailure(None, str(exc), kind, answered=False, cause=exc)


@contextmanager
def mapped_errors(to_error: Callable[[ClientFailure], Exception], *, chain: bool = True) -> Iterator[None]:
    """Re-raise the clients' exceptions as ``to_error(failure)``, ``from`` the original (``chain=False``: from None).

    Why one translator: each caller (the agent's REST client, the CLI's calls, the credential admin,
    the sign-in) says what a failure means in its own words, but which exceptions a call can raise
    and what each carries is read here once.
    """
    try:
        yield
    except CLIENT_ERRORS as exc:
        raise to_error(read_failure(exc)) from (exc if chain else None)
