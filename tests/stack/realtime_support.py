"""Helpers for the realtime tests: an official client channel that records what its callbacks see.

Nothing here patches the client; it only registers ordinary callbacks and turns
them into queues the tests can await.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from psycopg import sql
from realtime import (
    AsyncRealtimeChannel,
    AsyncRealtimeClient,
    RealtimePostgresChangesListenEvent,
    RealtimeSubscribeStates,
)

WAIT_S = 15.0


@pytest.fixture
def anyio_backend() -> str:
    """The official clients are asyncio-only (import this fixture into async test modules)."""
    return "asyncio"


def realtime_url(env: dict[str, str]) -> str:
    return env["API_URL"].rstrip("/") + "/realtime/v1"


async def next_item(queue: asyncio.Queue[Any], timeout: float = WAIT_S) -> Any:
    return await asyncio.wait_for(queue.get(), timeout)


@dataclass
class Watch:
    """One channel of one `AsyncRealtimeClient`, recording states, changes, broadcasts and system messages."""

    client: AsyncRealtimeClient
    channel: AsyncRealtimeChannel
    states: asyncio.Queue[tuple[RealtimeSubscribeStates, Exception | None]] = field(default_factory=asyncio.Queue)
    changes: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    broadcasts: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    systems: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)

    @classmethod
    def open(
        cls, env: dict[str, str], name: str = "jobs", config: dict[str, Any] | None = None, **client_options: Any
    ) -> Watch:
        client = AsyncRealtimeClient(realtime_url(env), token=env["ANON_KEY"], **client_options)
        return cls(client, client.channel(name, {"config": config} if config else None))  # type: ignore[arg-type]

    def on_changes(
        self,
        table: str = "local_training_jobs",
        event: str = "UPDATE",
        filter: str | None = None,
        select: list[str] | None = None,
    ) -> Watch:
        listen = RealtimePostgresChangesListenEvent(event)
        self.channel.on_postgres_changes(
            listen, self.changes.put_nowait, table=table, schema="public", filter=filter, select=select
        )
        return self

    def on_broadcast(self, event: str = "*") -> Watch:
        self.channel.on_broadcast(event, self.broadcasts.put_nowait)
        return self

    async def subscribe(self, token: str | None = None) -> RealtimeSubscribeStates:
        """Subscribe and wait for "Subscribed to PostgreSQL" (the real readiness signal) when there are bindings."""
        if token is not None:
            await self.client.set_auth(token)
        self.channel.on_system(self.systems.put_nowait)
        await self.channel.subscribe(lambda state, error: self.states.put_nowait((state, error)))
        state, error = await next_item(self.states)
        assert state == RealtimeSubscribeStates.SUBSCRIBED, (state, error)
        if self.channel.postgres_changes_callbacks:
            system = await next_item(self.systems)
            assert (system.status, system.message) == ("ok", "Subscribed to PostgreSQL")
        return state

    async def next_state(self, timeout: float = WAIT_S) -> RealtimeSubscribeStates:
        state, _ = await next_item(self.states, timeout)
        return state

    async def next_change(self, timeout: float = WAIT_S) -> dict[str, Any]:
        return await next_item(self.changes, timeout)

    async def close(self) -> None:
        await self.client.close()


async def barrier(watches: list[Watch], sender: Watch, marker: str) -> None:
    """Wait until every watch received a broadcast sent now.

    The server queues each change for every subscriber in one step, in order with
    later frames, so once a marker sent after a change has arrived, that change
    would have arrived too: absence can be asserted without sleeping.
    """
    await sender.channel.send_broadcast("barrier", {"marker": marker})
    for watch in watches:
        while True:
            message = await next_item(watch.broadcasts)
            if message["payload"].get("marker") == marker:
                break


@contextmanager
def published_table(env: dict[str, str], replica_identity: str = "default") -> Iterator[str]:
    """A fresh table in the ``supabase_realtime`` publication, dropped afterwards; yields its name.

    Columns: ``id`` (primary key), ``name`` text, ``score`` int, ``flag`` boolean, ``note`` text (nullable).
    Set up with SQL as the superuser (``DB_URL``); the tests then use only the official clients.
    """
    if "DB_URL" not in env:
        pytest.skip("needs the database URL (SUPABASE_DB_URL for a real stack)")
    table = f"rt_probe_{uuid.uuid4().hex[:10]}"
    name = sql.Identifier(table)
    with psycopg.connect(env["DB_URL"], autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "create table {t} (id bigint primary key, name text not null, score int, flag boolean, note text);"
                " alter table {t} replica identity {ri};"
                " grant all on {t} to anon, authenticated, service_role;"
                " alter publication supabase_realtime add table {t}"
            ).format(t=name, ri=sql.SQL(replica_identity))
        )
    try:
        yield table
    finally:
        with psycopg.connect(env["DB_URL"], autocommit=True) as conn:
            conn.execute(sql.SQL("drop table if exists {}").format(name))


def run_sql(env: dict[str, str], statements: str, *params: Any) -> None:
    """Test setup and writes as the superuser."""
    with psycopg.connect(env["DB_URL"], autocommit=True) as conn:
        conn.execute(statements, params or None)
