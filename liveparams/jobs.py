"""A job's row as a person or a UI sees it: request updates, read it, watch it live.

This is the user's side of the product (the CLI's ``set`` and ``watch``, and the
demo's scripted user). It uses the official ``supabase`` client exactly as a
web UI uses supabase-js: the RPC for requests, a Realtime subscription on the
row for outcomes.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import httpx
from postgrest.exceptions import APIError
from realtime import RealtimePostgresChangesListenEvent, RealtimeSubscribeStates
from supabase import AsyncClient, AsyncClientOptions, acreate_client

from liveparams.agent import request_identity
from liveparams.contract import METADATA_KEYS

TABLE = "local_training_jobs"


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
    headers = {"Authorization": f"Bearer {config.access_token}"} if config.access_token else {}
    try:
        client = await acreate_client(config.url, config.key, AsyncClientOptions(headers=headers))
    except Exception as exc:  # the client raises bare exceptions for a malformed URL
        raise JobError(f"cannot use {config.url!r}: {exc}") from exc
    if config.access_token:
        await client.realtime.set_auth(config.access_token)
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


async def watch_job(
    client: AsyncClient, job_id: str, on_row: Callable[[dict[str, Any]], None], stop: asyncio.Event
) -> None:
    """Call ``on_row`` with the row now and after every change, until ``stop`` is set.

    The row is read again after the subscription is confirmed, so a change made
    while subscribing is not missed (Realtime does not replay).
    """
    ready = asyncio.Event()

    def on_change(payload: Any) -> None:
        record = payload.get("data", {}).get("record")
        if record:
            on_row(record)

    def on_state(state: RealtimeSubscribeStates, error: Exception | None) -> None:
        if state == RealtimeSubscribeStates.SUBSCRIBED:
            ready.set()

    channel = client.channel(f"liveparams-watch-{job_id}")
    channel.on_postgres_changes(
        RealtimePostgresChangesListenEvent.Update, on_change, table=TABLE, schema="public", filter=f"id=eq.{job_id}"
    )
    on_row(await fetch_job(client, job_id))
    await channel.subscribe(on_state)
    try:
        await asyncio.wait_for(ready.wait(), timeout=15)
    except asyncio.TimeoutError as exc:
        raise JobError("could not subscribe to the job's changes over Realtime") from exc
    on_row(await fetch_job(client, job_id))
    await stop.wait()
    await client.remove_channel(channel)


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


def _detail(outcome: dict[str, Any]) -> str:
    if outcome.get("changes"):
        return ", ".join(
            f"{c.get('new')} done" if name == "command" else f"{name}: {c.get('old')!r} → {c.get('new')!r}"
            for name, c in outcome["changes"].items()
        )
    if outcome.get("superseded_by"):
        return f"superseded by {str(outcome['superseded_by'])[:8]}"
    return str(outcome.get("reason") or "")


def summarize(row: dict[str, Any]) -> list[RequestView]:
    """Pair each request on the row with its outcome (``pending`` until there is one)."""
    outcomes = row.get("parameter_update_outcomes") or {}
    views = []
    for entry in row.get("parameter_updates") or []:
        request_id = request_identity(entry)
        outcome = outcomes.get(request_id) or {}
        fields = entry if isinstance(entry, dict) else {}
        params = {k: v for k, v in fields.items() if k not in METADATA_KEYS} if fields else {"(malformed)": entry}
        views.append(
            RequestView(
                id=request_id,
                params=params,
                requested_at=fields.get("requested_at"),
                status=str(outcome.get("status", "pending")),
                step=outcome.get("step"),
                detail=_detail(outcome),
            )
        )
    return views
