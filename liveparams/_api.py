"""The CLI's calls to the project, as a UI makes them with supabase-js: a client, then one function per REST/RPC call.

:func:`connect` makes the official async ``supabase`` client acting as a `ClientConfig` says (and
keeps a signed-in user's token fresh); each call below is one request through it, run by
:func:`_execute`, where the package's one error translator (``liveparams._supabase.mapped_errors``)
turns a failure into one sentence: a `CommandError`, or `Unreachable` when it is worth retrying.
Realtime (``watch``, Presence) is ``liveparams._live``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, TypeVar, cast

from supabase import AsyncClient

from liveparams._client_config import ClientConfig, check_job_id
from liveparams._exceptions import CommandError, SignInError, Unreachable
from liveparams._supabase import ClientFailure, create_client, mapped_errors, quiet_client_logs
from liveparams._token_hints import USER_SIGN_IN, refusal_hint
from liveparams._user_session import SignIn
from liveparams._views import WATCHED, JobView
from liveparams.environment import USER_TOKEN_VAR

__all__ = [
    "JOB_STATUSES",
    "RETRY_INITIAL_S",
    "RETRY_MAX_S",
    "call_once",
    "cancel_request",
    "connect",
    "create_job",
    "end_run",
    "fetch_job",
    "fetch_last_metrics",
    "fetch_requests",
    "fetch_view",
    "list_jobs",
    "request_update",
]

TABLE = "local_training_jobs"
REQUESTS = "parameter_update_requests"
METRICS = "training_metrics"
JOB_STATUSES = ("pending", "queued", "running", "completed", "failed", "cancelled")  # the table's check constraint
RETRY_INITIAL_S, RETRY_MAX_S = 1.0, 10.0  # backoff of a failed token refresh, and of watch's reconnection
OWNER_KEY = "local_training_jobs_user_id_fkey"  # a job's owner must be a user of the project
SIGNED_IN = "your sign-in token"

T = TypeVar("T")


@asynccontextmanager
async def connect(config: ClientConfig) -> AsyncIterator[AsyncClient]:
    """An async supabase client acting as ``config`` says; closes its Realtime socket on exit.

    With a kept sign-in, the client starts with a fresh token and is handed a new one before each
    expires (REST's bearer, and Realtime's ``set_auth``, which re-authorises the joined channels),
    so ``watch`` and ``set --wait`` outlive the project's ``jwt_expiry``.
    """
    quiet_client_logs()  # `watch` says "disconnected, retrying" itself, once per outage
    access_token = config.access_token
    if config.sign_in is not None:
        access_token = await asyncio.to_thread(config.sign_in.access_token)
    try:
        client = await create_client(config.url, config.key, access_token)
    except Exception as exc:  # the client raises bare exceptions for a malformed URL
        raise CommandError(f"cannot use {config.url!r}: {exc}") from exc
    keeper = asyncio.ensure_future(_keep_fresh(client, config.sign_in)) if config.sign_in is not None else None
    try:
        yield client
    finally:
        if keeper is not None:
            keeper.cancel()
        with contextlib.suppress(Exception):  # the socket may already be gone with the server
            await client.realtime.close()
        await client.postgrest.aclose()  # its HTTP connections, left open otherwise


def call_once(config: ClientConfig, call: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Connect, make one of the calls below with ``args``, disconnect: what a one-shot command does."""

    async def once() -> T:
        async with connect(config) as client:
            return await call(client, *args)

    return asyncio.run(once())


async def _keep_fresh(client: AsyncClient, sign_in: SignIn) -> None:
    """Hand ``client`` a new access token before each expires, until cancelled; a failed refresh is
    retried (a lost session then shows as a refused call, with its hint)."""
    failures = 0
    while True:
        retry = min(RETRY_INITIAL_S * 2**failures, RETRY_MAX_S)
        await asyncio.sleep(retry if failures else sign_in.refresh_due_in())
        try:
            token = await asyncio.to_thread(sign_in.access_token)
        except SignInError:
            failures += 1
            continue
        failures = 0
        client.postgrest.auth(token)
        await client.realtime.set_auth(token)


async def request_update(
    client: AsyncClient, job_id: str, params: dict[str, Any], request_id: str | None = None
) -> dict[str, Any]:
    """Append one request through the RPC; returns the stored request (with its id)."""
    args: dict[str, Any] = {"p_job_id": check_job_id(job_id), "p_params": params}
    if request_id:
        args["p_request_id"] = request_id
    return cast(dict[str, Any], await _execute(client, client.rpc("request_parameter_update", args)))


async def fetch_job(client: AsyncClient, job_id: str) -> dict[str, Any]:
    """The job row, or `CommandError` if it does not exist or the caller may not see it."""
    job_id = check_job_id(job_id)
    rows = await _execute(client, client.table(TABLE).select("*").eq("id", job_id).limit(1))
    if not rows:
        raise CommandError(f"training job {job_id} not found (or not visible with these credentials)")
    return cast(dict[str, Any], rows[0])


async def fetch_requests(client: AsyncClient, job_id: str, latest: int = WATCHED) -> list[dict[str, Any]]:
    """The job's ``latest`` requests, oldest first."""
    query = client.table(REQUESTS).select("*").eq("job_id", job_id).order("seq", desc=True).limit(latest)
    return cast(list[dict[str, Any]], await _execute(client, query))[::-1]


async def fetch_last_metrics(client: AsyncClient, job_id: str) -> dict[str, Any]:
    """The newest stored metrics point, ``{"step", "metrics"}``, or ``{}`` before the trainer logged any."""
    query = client.table(METRICS).select("step,metrics").eq("job_id", job_id).order("step", desc=True).limit(1)
    rows = await _execute(client, query)
    return cast(dict[str, Any], rows[0]) if rows else {}


async def fetch_view(client: AsyncClient, job_id: str, latest: int = WATCHED, metrics: bool = False) -> JobView:
    """The job and its ``latest`` requests, as a UI shows them (with ``metrics``, the newest metrics point too)."""
    view = JobView(await fetch_job(client, job_id))
    for row in await fetch_requests(client, job_id, latest):
        view.take(row)
    if metrics:
        view.take_metrics([await fetch_last_metrics(client, job_id)])
    return view


async def create_job(client: AsyncClient, name: str, status: str, owner_id: str | None) -> dict[str, Any]:
    """Insert a job row; ``owner_id`` None lets the database make the signed-in user its owner.

    The row's ``status`` is the platform's column: requests are accepted while it is ``running``.
    """
    row: dict[str, Any] = {"name": name, "status": status}
    if owner_id is not None:
        row["user_id"] = owner_id
    return cast(list[dict[str, Any]], await _execute(client, client.table(TABLE).insert(row)))[0]


async def list_jobs(client: AsyncClient, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` jobs the caller may see, newest first (RLS decides which)."""
    query = client.table(TABLE).select("*").order("created_at", desc=True).limit(limit)
    return cast(list[dict[str, Any]], await _execute(client, query))


async def cancel_request(client: AsyncClient, job_id: str, seq: int) -> dict[str, Any]:
    """Cancel the job's pending request number ``seq`` (``cancel_parameter_update``); returns its row."""
    args = {"p_job_id": check_job_id(job_id), "p_seq": seq}
    return cast(dict[str, Any], await _execute(client, client.rpc("cancel_parameter_update", args)))


async def end_run(client: AsyncClient, job_id: str) -> dict[str, Any]:
    """End the job's run (``end_training_run``): ``{"step": N | None, "cancelled": how many}``."""
    query = client.rpc("end_training_run", {"p_job_id": check_job_id(job_id)})
    return cast(dict[str, Any], await _execute(client, query))


async def _execute(client: AsyncClient, query: Any) -> Any:
    """Send one built query (a table query or an RPC) and return its data; a failure is one sentence."""
    with mapped_errors(partial(_refusal, client)):
        return (await query.execute()).data


def _refusal(client: AsyncClient, failure: ClientFailure) -> CommandError:
    """What a failed call means to the person: a hint for a refused credential, else the server's words
    (`Unreachable` when worth retrying: no answer, a 5xx, a database that is restarting)."""
    if not failure.answered:
        return Unreachable(f"cannot reach {client.supabase_url}: {failure.kind}: {failure.message}")
    message = failure.message or str(failure.cause)
    which, fix = _acting_credential(client)
    if failure.code == "23503" and OWNER_KEY in message and which == SIGNED_IN:
        # A sign-in kept across a project's (or the local stack's) reset: its token still verifies, its user is gone.
        return CommandError(
            "your signed-in user no longer exists on this project (was it reset?): create it again with "
            "`liveparams user create EMAIL`, or sign in as another with `liveparams user login EMAIL`"
        )
    hint = refusal_hint(failure.code, message, which, fix)
    if hint:
        return CommandError(hint)
    return Unreachable(message) if failure.transient else CommandError(message)


def _acting_credential(client: AsyncClient) -> tuple[str, str]:
    """Which credential a refused call was made with, and how to get a good one (for :func:`refusal_hint`)."""
    if client.options.headers.get("Authorization", "") not in ("", f"Bearer {client.supabase_key}"):
        return SIGNED_IN, f"{USER_SIGN_IN} (and unset {USER_TOKEN_VAR} if it is set)"
    return (
        "the API key (--key or the environment)",
        "take the keys from `liveparams stack status -o env` or the dashboard",
    )
