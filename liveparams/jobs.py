"""A job as a person or a UI sees it: request updates, read them, watch them live.

This is the user's side of the product (the CLI's ``set`` and ``watch``, and the
demo's scripted user). It uses the official ``supabase`` client exactly as a
web UI uses supabase-js: the RPC for requests, the job row for the values in
force and the trainer's attachment, and one Realtime channel for changes of
both the job row and its rows in ``parameter_update_requests``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, cast
from urllib.parse import urlsplit

import httpx
from postgrest.exceptions import APIError
from realtime import RealtimePostgresChangesListenEvent, RealtimeSubscribeStates
from supabase import AsyncClient

from liveparams._supabase import create_client, is_transient_code, quiet_client_logs
from liveparams.agent import AgentConfig, decode_params
from liveparams.agent._config import job_topic
from liveparams.agent._subscription import PRESENCE_KEY
from liveparams.contract import METADATA_KEYS, format_value
from liveparams.environment import (
    PUBLIC_KEY_VARS,
    SERVICE_KEY_VARS,
    URL_VARS,
    USER_TOKEN_VAR,
    first_set,
    is_header_safe,
    key_role,
    unverified_claims,
)
from liveparams.token_hints import USER_SIGN_IN, refusal_hint, user_token_problem
from liveparams.user_session import SignIn, SignInError

TABLE = "local_training_jobs"
REQUESTS = "parameter_update_requests"
METRICS = "training_metrics"
SUBSCRIBE_TIMEOUT_S = 15
RETRY_INITIAL_S, RETRY_MAX_S = 1.0, 10.0  # watch's reconnection backoff
WATCHED = 200  # requests ``watch`` shows: the latest ones; the job's history can be far longer
HEARTBEAT_STALE_S = 3 * AgentConfig.heartbeat_interval  # a trainer silent for three heartbeats is gone
# Presence lags the row by a moment at attach (the agent tracks once subscribed): absent for longer means gone.
PRESENCE_GRACE_S = 15.0


class JobError(Exception):
    """A failure to show a user as one sentence (no traceback)."""


class Unreachable(JobError):
    """The server could not be reached, or the live connection to it was lost: worth retrying."""


@dataclass(frozen=True)
class ClientConfig:
    """Where the API is and who is asking.

    Args:
        url (`str`): the project URL, e.g. ``http://127.0.0.1:54321``.
        key (`str`): the API key sent as ``apikey`` (anon/publishable, or the service role key).
        access_token (`str`, *optional*): a signed-in user's JWT; requests then act as that user,
            which is how a UI acts for a job's owner. Without it, the key's role acts.
        sign_in (`SignIn`, *optional*): the kept sign-in ``access_token`` came from; :func:`connect`
            keeps a client's token fresh from it, for commands that run longer than a token lives.
    """

    url: str
    key: str
    access_token: str | None = None
    sign_in: SignIn | None = field(default=None, compare=False)

    def __repr__(self) -> str:
        return f"ClientConfig(url={self.url!r}, key='***', access_token={'***' if self.access_token else None})"

    @property
    def acting_as(self) -> str:
        """Who the server sees, in words: the signed-in user (by email) or the key's role."""
        if self.access_token:
            claims = unverified_claims(self.access_token)
            return f"as {claims.get('email') or claims.get('sub') or 'a signed-in user'}"
        return "with the service role key (every job)" if self.is_service else "with a project key"

    @property
    def is_service(self) -> bool:
        """Whether the key is a service key: a ``service_role`` JWT or an ``sb_secret_`` key."""
        return self.access_token is None and key_role(self.key) == "service_role"

    @classmethod
    def from_env(
        cls,
        url: str | None = None,
        key: str | None = None,
        access_token: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> ClientConfig:
        """Fill what was not given from the environment (the names and order of ``liveparams/environment.py``).

        A signed-in user's token (``LIVEPARAMS_USER_TOKEN``), else the sign-in kept by ``liveparams user
        login`` for this URL, wins over a service key: with it the server checks what the owner may do,
        as a UI's requests are checked. Without one (or with a service key passed as ``key``), a service
        key acts on every job. The anon key alone sees no job (RLS), so it is refused here rather than
        answered with "not found" later. A token that cannot work is refused with a hint.
        """
        env = os.environ if environ is None else environ
        url = url or first_set(env, URL_VARS)
        access_token = access_token or first_set(env, (USER_TOKEN_VAR,)) or None
        if not url:
            raise JobError(f"no Supabase URL: pass --url or set {' or '.join(URL_VARS[:2])} (or API_URL)")
        check_url(url)
        url = url.rstrip("/")
        if access_token:
            problem = user_token_problem(access_token) if is_header_safe(access_token) else None
            if problem:
                raise JobError(problem)
        kept = None if access_token or key_role(key or "") == "service_role" else SignIn.load(url, env)
        if kept is not None:
            access_token = fresh_token(kept)
            key = key or first_set(env, PUBLIC_KEY_VARS) or kept.api_key
        if access_token:
            key = key or first_set(env, PUBLIC_KEY_VARS) or first_set(env, SERVICE_KEY_VARS)
        else:
            key = key or first_set(env, SERVICE_KEY_VARS) or first_set(env, ("SUPABASE_KEY",))
            if not key and first_set(env, PUBLIC_KEY_VARS):
                raise JobError(
                    "the anon key alone sees no job: sign in (`liveparams user login EMAIL`, or set "
                    f"{USER_TOKEN_VAR}) or use a service key"
                )
        if not key:
            raise JobError(
                "no API key: sign in (`liveparams user login EMAIL`, with SUPABASE_ANON_KEY or ANON_KEY), "
                "or set SUPABASE_SERVICE_ROLE_KEY (or SERVICE_ROLE_KEY); or pass --key"
            )
        for name, value in (("key", key), ("user token", access_token)):
            if value is not None and not is_header_safe(value):
                raise JobError(f"the {name} is not a key: it holds spaces or characters no key has")
        return cls(url=url, key=key, access_token=access_token, sign_in=kept)


def fresh_token(sign_in: SignIn) -> str:
    """The kept sign-in's access token, refreshed when due; its failure as one `JobError` sentence."""
    try:
        return sign_in.access_token()
    except SignInError as exc:
        raise JobError(str(exc)) from None


def check_url(url: str) -> None:
    """Refuse what is not an http(s) URL of a host, in one sentence."""
    parsed = urlsplit(url) if is_header_safe(url) else None
    try:
        valid = parsed is not None and parsed.scheme in ("http", "https") and bool(parsed.hostname) and parsed.port != 0
    except ValueError:  # a port that is not a number
        valid = False
    if not valid:
        raise JobError(f"not a project URL: {url!r} (expected e.g. http://127.0.0.1:54321)")


def check_job_id(job_id: str) -> str:
    """The job id in canonical form, or a `JobError` that says what a job id looks like."""
    try:
        return str(uuid.UUID(job_id))
    except (ValueError, TypeError, AttributeError):
        raise JobError(
            f"not a job id: {job_id!r} (a job id is a uuid such as 3f0c5a4e-9b1d-4c2e-8f00-5a6b7c8d9e0f; "
            "`liveparams job list` shows them)"
        ) from None


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
        access_token = await asyncio.to_thread(fresh_token, config.sign_in)
    try:
        client = await create_client(config.url, config.key, access_token)
    except Exception as exc:  # the client raises bare exceptions for a malformed URL
        raise JobError(f"cannot use {config.url!r}: {exc}") from exc
    keeper = asyncio.ensure_future(keep_fresh(client, config.sign_in)) if config.sign_in is not None else None
    try:
        yield client
    finally:
        if keeper is not None:
            keeper.cancel()
        with contextlib.suppress(Exception):  # the socket may already be gone with the server
            await client.realtime.close()
        await client.postgrest.aclose()  # its HTTP connections, left open otherwise


async def keep_fresh(client: AsyncClient, sign_in: SignIn) -> None:
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


def _explain(exc: Exception, client: AsyncClient) -> JobError:
    if isinstance(exc, APIError):  # the API answered; a 5xx or a database that is restarting passes
        message = exc.message or str(exc)
        hint = refusal_hint(exc.code, message, *_acting_credential(client))
        if hint:
            return JobError(hint)
        return Unreachable(message) if is_transient_code(exc.code) else JobError(message)
    if isinstance(exc, httpx.HTTPError):
        return Unreachable(f"cannot reach {client.supabase_url}: {exc.__class__.__name__}: {exc}")
    return JobError(str(exc))


def _acting_credential(client: AsyncClient) -> tuple[str, str]:
    """Which credential a refused call was made with, and how to get a good one (for :func:`refusal_hint`)."""
    if client.options.headers.get("Authorization", "") not in ("", f"Bearer {client.supabase_key}"):
        return "your sign-in token", f"{USER_SIGN_IN} (and unset {USER_TOKEN_VAR} if it is set)"
    return (
        "the API key (--key or the environment)",
        "take the keys from `liveparams stack status -o env` or the dashboard",
    )


async def request_update(
    client: AsyncClient, job_id: str, params: dict[str, Any], request_id: str | None = None
) -> dict[str, Any]:
    """Append one request through the RPC; returns the stored request (with its id)."""
    args: dict[str, Any] = {"p_job_id": check_job_id(job_id), "p_params": params}
    if request_id:
        args["p_request_id"] = request_id
    try:
        response = await client.rpc("request_parameter_update", args).execute()
    except (APIError, httpx.HTTPError) as exc:
        raise _explain(exc, client) from exc
    return cast(dict[str, Any], response.data)


async def fetch_job(client: AsyncClient, job_id: str) -> dict[str, Any]:
    """The job row, or `JobError` if it does not exist or the caller may not see it."""
    job_id = check_job_id(job_id)
    try:
        response = await client.table(TABLE).select("*").eq("id", job_id).limit(1).execute()
    except (APIError, httpx.HTTPError) as exc:
        raise _explain(exc, client) from exc
    if not response.data:
        raise JobError(f"training job {job_id} not found (or not visible with these credentials)")
    return cast(dict[str, Any], response.data[0])


async def fetch_requests(client: AsyncClient, job_id: str, latest: int = WATCHED) -> list[dict[str, Any]]:
    """The job's ``latest`` requests, oldest first."""
    try:
        response = (
            await client.table(REQUESTS)
            .select("*")
            .eq("job_id", job_id)
            .order("seq", desc=True)
            .limit(latest)
            .execute()
        )
    except (APIError, httpx.HTTPError) as exc:
        raise _explain(exc, client) from exc
    return cast(list[dict[str, Any]], response.data)[::-1]


async def fetch_last_metrics(client: AsyncClient, job_id: str) -> dict[str, Any]:
    """The newest stored metrics point, ``{"step", "metrics"}``, or ``{}`` before the trainer logged any."""
    try:
        query = client.table(METRICS).select("step,metrics").eq("job_id", job_id).order("step", desc=True).limit(1)
        response = await query.execute()
    except (APIError, httpx.HTTPError) as exc:
        raise _explain(exc, client) from exc
    return cast(dict[str, Any], response.data[0]) if response.data else {}


JOB_STATUSES = ("pending", "queued", "running", "completed", "failed", "cancelled")  # the table's check constraint


async def create_job(client: AsyncClient, name: str, status: str, owner_id: str | None) -> dict[str, Any]:
    """Insert a job row; ``owner_id`` None lets the database make the signed-in user its owner.

    The row's ``status`` is the platform's column: requests are accepted while it is ``running``.
    """
    row: dict[str, Any] = {"name": name, "status": status}
    if owner_id is not None:
        row["user_id"] = owner_id
    try:
        response = await client.table(TABLE).insert(row).execute()
    except (APIError, httpx.HTTPError) as exc:
        raise _explain(exc, client) from exc
    return cast(list[dict[str, Any]], response.data)[0]


async def list_jobs(client: AsyncClient, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` jobs the caller may see, newest first (RLS decides which)."""
    try:
        response = await client.table(TABLE).select("*").order("created_at", desc=True).limit(limit).execute()
    except (APIError, httpx.HTTPError) as exc:
        raise _explain(exc, client) from exc
    return cast(list[dict[str, Any]], response.data)


@dataclass
class JobView:
    """What a UI shows of a job: its row and its latest requests (by seq), kept current by :func:`watch_job`."""

    job: dict[str, Any]
    requests: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> row, in seq order
    present: bool | None = None  # a trainer on the job's topic (Presence); None until its state arrived
    metrics: dict[str, Any] = field(default_factory=dict)  # the newest point the trainer logged: {"step", "metrics"}

    def take_metrics(self, points: list[dict[str, Any]]) -> None:
        """Keep the newest of ``points`` (a live Broadcast message's, or the newest stored one)."""
        for point in points:
            if isinstance(point, dict) and point.get("step", -1) >= self.metrics.get("step", -1):
                self.metrics = point

    def take(self, row: dict[str, Any]) -> None:
        """Add or update one request row, keeping seq order and the latest ``WATCHED`` rows."""
        self.requests[str(row.get("id"))] = row
        ordered = sorted(self.requests.values(), key=lambda r: r.get("seq") or 0)[-WATCHED:]
        self.requests = {str(r.get("id")): r for r in ordered}


async def watch_job(
    client: AsyncClient,
    job_id: str,
    on_view: Callable[[JobView], None],
    stop: asyncio.Event,
    until_lost: bool = False,
    on_subscribed: Callable[[], None] | None = None,
) -> None:
    """Call ``on_view`` with the job now and after every change, until ``stop`` is set.

    One channel carries the job row's updates and its requests' inserts and updates
    (each event is one small row, whatever the job's history). Both are read again
    after the subscription is confirmed, so a change made while subscribing is not missed.
    With ``until_lost``, a channel that errors or closes after it was subscribed raises
    `Unreachable` instead of being left to the client's own reconnection (:func:`follow_job`).
    ``on_subscribed`` is called once the subscription is confirmed and the job re-read: only
    from then on is no change missed, which is what `watch` calls "live".
    """
    ready, lost = asyncio.Event(), asyncio.Event()
    view = JobView(job={})
    job_id = check_job_id(job_id)

    def on_job(payload: Any) -> None:
        record = payload.get("data", {}).get("record")
        if record:
            view.job = record
            on_view(view)

    def on_request(payload: Any) -> None:
        record = payload.get("data", {}).get("record")
        if record:
            view.take(record)
            on_view(view)

    def on_state(state: RealtimeSubscribeStates, error: Exception | None) -> None:
        if state == RealtimeSubscribeStates.SUBSCRIBED:
            ready.set()
        elif ready.is_set():  # CHANNEL_ERROR, TIMED_OUT or CLOSED after it was live
            lost.set()

    def on_metrics(message: Any) -> None:
        view.take_metrics(message.get("payload", {}).get("points") or [])
        on_view(view)

    async def reread() -> None:
        view.job = await fetch_job(client, job_id)
        for row in await fetch_requests(client, job_id):
            view.take(row)
        view.take_metrics([await fetch_last_metrics(client, job_id)])
        on_view(view)

    def on_presence() -> None:
        view.present = trainer_in(channel.presence_state())
        if view.job:
            on_view(view)

    channel = client.channel(job_topic(job_id))  # the job's topic: the trainer's Presence is there
    channel.on_presence_sync(on_presence)
    channel.on_postgres_changes(
        RealtimePostgresChangesListenEvent.Update, on_job, table=TABLE, schema="public", filter=f"id=eq.{job_id}"
    )
    channel.on_postgres_changes(
        RealtimePostgresChangesListenEvent.All,
        on_request,
        table=REQUESTS,
        schema="public",
        filter=f"job_id=eq.{job_id}",
    )
    # The trainer's live metrics (docs/contracts.md): the owner's private topic; not needed to be live.
    metrics_channel = client.channel(f"job-metrics:{job_id}", {"config": {"private": True}})  # type: ignore[arg-type]
    metrics_channel.on_broadcast("metrics", on_metrics)
    await reread()
    await channel.subscribe(on_state)
    await metrics_channel.subscribe()
    try:
        await asyncio.wait_for(ready.wait(), timeout=SUBSCRIBE_TIMEOUT_S)
    except asyncio.TimeoutError as exc:
        raise Unreachable("could not subscribe to the job's changes over Realtime") from exc
    await reread()
    if on_subscribed is not None:
        on_subscribed()
    ended = [asyncio.ensure_future(stop.wait())] + ([asyncio.ensure_future(lost.wait())] if until_lost else [])
    try:
        await asyncio.wait(ended, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in ended:
            waiter.cancel()
    if lost.is_set() and not stop.is_set():
        raise Unreachable("the live connection was lost")
    await client.remove_channel(metrics_channel)
    await client.remove_channel(channel)


async def follow_job(
    config: ClientConfig,
    job_id: str,
    on_view: Callable[[JobView], None],
    on_connection: Callable[[str | None], None],
    stop: asyncio.Event,
) -> None:
    """:func:`watch_job` that outlives outages: a fresh client after each loss, with backoff, until ``stop``.

    ``on_connection`` gets ``None`` once the subscription is confirmed (live, first and again
    after each outage) and the reason when the connection is lost (``disconnected, retrying``).
    A failure before the first connection raises, so a bad job id or an unreachable URL is one
    error, not an endless retry.
    """
    live_once, failures = False, 0

    def on_live() -> None:
        nonlocal live_once, failures
        live_once, failures = True, 0
        on_connection(None)

    while not stop.is_set():
        try:
            async with connect(config) as client:
                await watch_job(client, job_id, on_view, stop, until_lost=True, on_subscribed=on_live)
            return
        except Unreachable as exc:
            if not live_once:
                raise
            failures += 1
            on_connection(str(exc))
        delay = min(RETRY_INITIAL_S * 2 ** (failures - 1), RETRY_MAX_S)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)


@dataclass(frozen=True)
class TrainerState:
    """Whether a trainer is attached to the job, from the row's ``trainer_*`` columns (docs/contracts.md)."""

    attached: bool
    detail: str
    label: str  # the same in a word or two, for a table cell


def trainer_in(presence_state: Mapping[str, Any]) -> bool:
    """Whether a Presence state of the job's topic (``channel.presence_state()``) holds the trainer."""
    return bool(presence_state.get(PRESENCE_KEY))


def trainer_state(job: dict[str, Any], now: datetime | None = None, present: bool | None = None) -> TrainerState:
    """Attached = it said so, has not detached, its heartbeat is recent and, when known, it is on the
    job's topic (``present``, from Presence: a killed trainer leaves it at once); otherwise say why not.
    """
    ended = "; the run ended, so requests are refused until a trainer attaches" if job.get("run_ended_at") else ""
    if not job.get("trainer_attached_at"):
        return TrainerState(False, f"no trainer has attached yet{ended}", "not yet")
    if job.get("trainer_detached_at"):
        step = job.get("trainer_detach_step")
        where = f" at step {step}" if step is not None else ""
        reason = job.get("trainer_detach_reason")
        return TrainerState(False, f"the trainer detached: {reason}{where}{ended}", f"{reason}{where}")
    seen = _parse_time(job.get("trainer_seen_at"))
    now = now or datetime.now(timezone.utc)
    if seen is None or (now - seen).total_seconds() > HEARTBEAT_STALE_S:
        return TrainerState(
            False, f"the trainer stopped responding (last heartbeat {job.get('trainer_seen_at')}); killed?", "silent"
        )
    attached_at = _parse_time(job.get("trainer_attached_at"))
    settled = attached_at is None or (now - attached_at).total_seconds() > PRESENCE_GRACE_S
    if present is False and settled:
        return TrainerState(False, "the trainer left the job's channel (killed, or reconnecting)", "gone")
    return TrainerState(True, "a trainer is attached", "attached")


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class RequestView:
    """One request and where it stands, as the ``watch`` table shows it."""

    id: str
    params: dict[str, Any]
    requested_at: str | None
    status: str
    step: int | None
    detail: str
    seq: int | None = None  # its number on the job (what `liveparams request cancel` takes)

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)


def _change_text(name: str, change: Any) -> str:
    if not isinstance(change, dict):
        return f"{name}: {change}"
    if name == "command":
        return f"{change.get('new')} done"
    return f"{name}: {format_value(change.get('old'))} → {format_value(change.get('new'))}"


def _detail(row: dict[str, Any]) -> str:
    changes = row.get("changes")
    if isinstance(changes, dict) and changes:  # written by a trainer credential: any JSON object
        return ", ".join(_change_text(name, change) for name, change in changes.items())
    if row.get("superseded_by"):
        return f"superseded by {str(row['superseded_by'])[:8]}"
    return str(row.get("reason") or "")


def summarize(view: JobView) -> list[RequestView]:
    """Each watched request with where it stands (``pending`` until it has an outcome), oldest first."""
    views = []
    for row in view.requests.values():
        params = decode_params(row.get("params"))  # the agent's own reading, so both agree
        shown = {k: v for k, v in params.items() if k not in METADATA_KEYS} if isinstance(params, dict) else None
        views.append(
            RequestView(
                id=str(row.get("id")),
                params=shown if shown is not None else {"(malformed)": params},
                requested_at=row.get("requested_at"),
                status=str(row.get("status") or "pending"),
                step=row.get("step"),
                detail=_detail(row),
                seq=row.get("seq"),
            )
        )
    return views
