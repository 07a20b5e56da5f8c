"""A job as a person or a UI sees it: request updates, read them, watch them live.

This is the user's side of the product (the CLI's ``set`` and ``watch``, and the
demo's scripted user). It uses the official ``supabase`` client exactly as a
web UI uses supabase-js: the RPC for requests, the job row for the values in
force and the trainer's attachment, and one Realtime channel for changes of
both the job row and its rows in ``parameter_update_requests``.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, cast

import httpx
from postgrest.exceptions import APIError
from realtime import RealtimePostgresChangesListenEvent, RealtimeSubscribeStates
from supabase import AsyncClient

from liveparams.agent import AgentConfig
from liveparams.agent._client import create_client
from liveparams.agent._requests import decode_params
from liveparams.contract import METADATA_KEYS

TABLE = "local_training_jobs"
REQUESTS = "parameter_update_requests"
WATCHED = 200  # requests ``watch`` shows: the latest ones; the job's history can be far longer
HEARTBEAT_STALE_S = 3 * AgentConfig.heartbeat_interval  # a trainer silent for three heartbeats is gone


class JobError(Exception):
    """A failure to show a user as one sentence (no traceback)."""


@dataclass(frozen=True)
class ClientConfig:
    """Where the API is and who is asking.

    Args:
        url (`str`): the project URL, e.g. ``http://127.0.0.1:54321``.
        key (`str`): the API key sent as ``apikey`` (anon/publishable, or the service role key).
        access_token (`str`, *optional*): a signed-in user's JWT; requests then act as that user,
            which is how a UI acts for a job's owner. Without it, the key's role acts.
    """

    url: str
    key: str
    access_token: str | None = None

    def __repr__(self) -> str:
        return f"ClientConfig(url={self.url!r}, key='***', access_token={'***' if self.access_token else None})"

    @classmethod
    def from_env(cls, url: str | None = None, key: str | None = None, access_token: str | None = None) -> ClientConfig:
        """Fill what was not given from the environment (same names as the trainer side)."""
        env = os.environ
        url = url or env.get("SUPABASE_URL") or env.get("NEXT_PUBLIC_SUPABASE_URL")
        key = (
            key
            or env.get("SUPABASE_SERVICE_ROLE_KEY")
            or env.get("SUPABASE_ANON_KEY")
            or env.get("NEXT_PUBLIC_SUPABASE_ANON_KEY")
            or env.get("SUPABASE_KEY")
        )
        access_token = access_token or env.get("LIVEPARAMS_USER_TOKEN")
        if not url:
            raise JobError("no Supabase URL: pass --url or set SUPABASE_URL")
        if not key:
            raise JobError(
                "no API key: pass --key or set SUPABASE_SERVICE_ROLE_KEY (or SUPABASE_ANON_KEY with --user-token)"
            )
        return cls(url=url.rstrip("/"), key=key, access_token=access_token)


@asynccontextmanager
async def connect(config: ClientConfig) -> AsyncIterator[AsyncClient]:
    """An async supabase client acting as ``config`` says; closes its Realtime socket on exit."""
    try:
        client = await create_client(config.url, config.key, config.access_token)
    except Exception as exc:  # the client raises bare exceptions for a malformed URL
        raise JobError(f"cannot use {config.url!r}: {exc}") from exc
    try:
        yield client
    finally:
        await client.realtime.close()


def _explain(exc: Exception, config_url: str) -> JobError:
    if isinstance(exc, APIError):
        return JobError(exc.message or str(exc))
    if isinstance(exc, httpx.HTTPError):
        return JobError(f"cannot reach {config_url}: {exc.__class__.__name__}: {exc}")
    return JobError(str(exc))


async def request_update(
    client: AsyncClient, job_id: str, params: dict[str, Any], request_id: str | None = None
) -> dict[str, Any]:
    """Append one request through the RPC; returns the stored request (with its id)."""
    args: dict[str, Any] = {"p_job_id": job_id, "p_params": params}
    if request_id:
        args["p_request_id"] = request_id
    try:
        response = await client.rpc("request_parameter_update", args).execute()
    except (APIError, httpx.HTTPError) as exc:
        raise _explain(exc, str(client.supabase_url)) from exc
    return cast(dict[str, Any], response.data)


async def fetch_job(client: AsyncClient, job_id: str) -> dict[str, Any]:
    """The job row, or `JobError` if it does not exist or the caller may not see it."""
    try:
        response = await client.table(TABLE).select("*").eq("id", job_id).limit(1).execute()
    except (APIError, httpx.HTTPError) as exc:
        raise _explain(exc, str(client.supabase_url)) from exc
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
        raise _explain(exc, str(client.supabase_url)) from exc
    return cast(list[dict[str, Any]], response.data)[::-1]


@dataclass
class JobView:
    """What a UI shows of a job: its row and its latest requests (by seq), kept current by :func:`watch_job`."""

    job: dict[str, Any]
    requests: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> row, in seq order

    def take(self, row: dict[str, Any]) -> None:
        """Add or update one request row, keeping seq order and the latest ``WATCHED`` rows."""
        self.requests[str(row.get("id"))] = row
        ordered = sorted(self.requests.values(), key=lambda r: r.get("seq") or 0)[-WATCHED:]
        self.requests = {str(r.get("id")): r for r in ordered}


async def watch_job(client: AsyncClient, job_id: str, on_view: Callable[[JobView], None], stop: asyncio.Event) -> None:
    """Call ``on_view`` with the job now and after every change, until ``stop`` is set.

    One channel carries the job row's updates and its requests' inserts and updates
    (each event is one small row, whatever the job's history). Both are read again
    after the subscription is confirmed, so a change made while subscribing is not missed.
    """
    ready = asyncio.Event()
    view = JobView(job={})

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

    async def reread() -> None:
        view.job = await fetch_job(client, job_id)
        for row in await fetch_requests(client, job_id):
            view.take(row)
        on_view(view)

    channel = client.channel(f"liveparams-watch-{job_id}")
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
    await reread()
    await channel.subscribe(on_state)
    try:
        await asyncio.wait_for(ready.wait(), timeout=15)
    except asyncio.TimeoutError as exc:
        raise JobError("could not subscribe to the job's changes over Realtime") from exc
    await reread()
    await stop.wait()
    await client.remove_channel(channel)


@dataclass(frozen=True)
class TrainerState:
    """Whether a trainer is attached to the job, from the row's ``trainer_*`` columns (docs/contracts.md)."""

    attached: bool
    detail: str


def trainer_state(job: dict[str, Any], now: datetime | None = None) -> TrainerState:
    """Attached = it said so, has not detached, and its heartbeat is recent; otherwise say why not."""
    if not job.get("trainer_attached_at"):
        return TrainerState(False, "no trainer has attached yet")
    if job.get("trainer_detached_at"):
        step = job.get("trainer_detach_step")
        where = f" at step {step}" if step is not None else ""
        return TrainerState(False, f"the trainer detached: {job.get('trainer_detach_reason')}{where}")
    seen = _parse_time(job.get("trainer_seen_at"))
    now = now or datetime.now(timezone.utc)
    if seen is None or (now - seen).total_seconds() > HEARTBEAT_STALE_S:
        return TrainerState(
            False, f"the trainer stopped responding (last heartbeat {job.get('trainer_seen_at')}); killed?"
        )
    return TrainerState(True, "a trainer is attached")


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

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)


def _detail(row: dict[str, Any]) -> str:
    changes = row.get("changes")
    if isinstance(changes, dict) and changes:
        return ", ".join(
            f"{c.get('new')} done" if name == "command" else f"{name}: {c.get('old')!r} → {c.get('new')!r}"
            for name, c in changes.items()
        )
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
            )
        )
    return views
