"""Change capture by logical decoding of the ``supabase_realtime`` publication.

Like the real server's ``ReplicationPoller``: a temporary wal2json slot polled with
``pg_logical_slot_get_changes`` (format-version 2, primary keys, commit
timestamps, type oids), restricted to the publication's tables and actions, plus the INSERTs of
``realtime.messages`` (Broadcast from Database: the real server streams that table
through a publication of its own). No triggers on user tables. The slot is temporary, so it disappears with the
connection. The poll cadence is `PollCadence` (docs/internals.md, "Realtime: change
capture"): fast by default so tests stay quick, or the real server's
``poll_interval_ms`` with its idle back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import psycopg

log = logging.getLogger(__name__)

PUBLICATION = "supabase_realtime"
MESSAGES_TABLE = ("realtime", "messages")
"""Where ``realtime.send`` writes; its INSERTs are always captured, whatever the publication holds."""
MAX_CHANGES_PER_POLL = 100
PUBLICATION_REFRESH_S = 1.0
_ACTIONS = {"I": "INSERT", "U": "UPDATE", "D": "DELETE"}


@dataclass(frozen=True)
class WalColumn:
    name: str
    type: str
    """The type as ``format_type`` spells it (``jsonb[]``, ``timestamp with time zone``): castable in SQL."""
    value: str | None
    """The value as PostgreSQL text, which casts back to ``type`` exactly."""


@dataclass(frozen=True)
class WalChange:
    type: str
    schema: str
    table: str
    commit_timestamp: str
    columns: tuple[WalColumn, ...]
    identity: tuple[WalColumn, ...]
    pk: tuple[str, ...]


@dataclass(frozen=True)
class Publication:
    """What the publication covers, read from ``pg_publication``/``pg_publication_tables``."""

    actions: tuple[str, ...]
    tables: frozenset[tuple[str, str]]

    def matching(self, schema: str, table: str) -> list[tuple[str, str]]:
        """Published tables a binding's schema/table (either may be ``*``) refers to."""
        return sorted((s, t) for s, t in self.tables if schema in ("*", s) and table in ("*", t))


EMPTY_PUBLICATION = Publication(actions=(), tables=frozenset())


def _text(value: Any) -> str | None:
    """wal2json values (numbers kept as text by the parser) back to PostgreSQL text."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def _columns(raw: list[dict[str, Any]] | None) -> tuple[WalColumn, ...]:
    return tuple(WalColumn(name=c["name"], type=c["type"], value=_text(c.get("value"))) for c in raw or ())


def _commit_timestamp(text: str) -> str:
    """``2026-11-24 05:00:28.981132+00`` → ``2026-11-24T05:00:28.981Z`` (what the real server sends)."""
    moment = datetime.fromisoformat(text).astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_wal2json(data: str) -> WalChange | None:
    """One format-version 2 row → `WalChange`; None for actions that are not row changes (truncate, messages)."""
    row = json.loads(data, parse_float=str, parse_int=str)
    change_type = _ACTIONS.get(row.get("action"))
    if change_type is None:
        return None
    return WalChange(
        type=change_type,
        schema=row["schema"],
        table=row["table"],
        commit_timestamp=_commit_timestamp(row["timestamp"]),
        columns=_columns(row.get("columns")),
        identity=_columns(row.get("identity")),
        pk=tuple(c["name"] for c in row.get("pk") or ()),
    )


def _escape_table_name(name: str) -> str:
    """wal2json's ``add-tables`` separates with ``,`` and ``.``; both are escaped with a backslash."""
    return "".join("\\" + ch if ch in ",.\\" else ch for ch in name)


async def read_publication(conn: psycopg.AsyncConnection[Any]) -> Publication:
    cur = await conn.execute(
        "select p.pubinsert, p.pubupdate, p.pubdelete,"
        " coalesce(array_agg(array[t.schemaname::text, t.tablename::text])"
        "          filter (where t.tablename is not null), '{}')"
        " from pg_publication p left join pg_publication_tables t on t.pubname = p.pubname"
        " where p.pubname = %s group by p.pubinsert, p.pubupdate, p.pubdelete",
        (PUBLICATION,),
    )
    row = await cur.fetchone()
    if row is None:
        return EMPTY_PUBLICATION
    actions = tuple(a for a, on in zip(("insert", "update", "delete"), row[:3], strict=True) if on)
    tables = frozenset((s, t) for s, t in row[3] if " " not in s + t)
    return Publication(actions=actions, tables=tables)


ChangeHandler = Callable[[list[WalChange]], Awaitable[None]]


@dataclass(frozen=True)
class PollCadence:
    """How long the poller waits after a poll that returned no row change.

    ``poll_interval_ms`` None: the stack's fast default, 10 ms while anyone listens
    and 250 ms otherwise. A number: the real server's ``ReplicationPoller``, which
    polls again at once while rows flow, after ``poll_interval_ms`` plus 50–100 ms
    of jitter when the WAL moved but held nothing published, and after five times
    ``poll_interval_ms`` when idle.
    """

    poll_interval_ms: int | None = None

    FAST_BUSY_S = 0.01
    FAST_IDLE_S = 0.25
    IDLE_MULTIPLIER = 5

    def wait_s(self, wal_moved: bool, listened: bool) -> float:
        if self.poll_interval_ms is None:
            return self.FAST_BUSY_S if listened else self.FAST_IDLE_S
        if wal_moved:
            return (self.poll_interval_ms + random.randint(50, 100)) / 1000
        return self.poll_interval_ms * self.IDLE_MULTIPLIER / 1000


class ChangePoller:
    """Drains a temporary wal2json slot and hands each batch of changes to ``handler``.

    ``busy()`` tells whether anyone listens (see `PollCadence`). The slot is drained
    even while nobody listens, so changes made then are never delivered later: at
    most once, like the real server.
    """

    def __init__(
        self,
        conn: psycopg.AsyncConnection[Any],
        handler: ChangeHandler,
        busy: Callable[[], bool],
        cadence: PollCadence,
    ) -> None:
        self._conn = conn
        self._handler = handler
        self._busy = busy
        self._cadence = cadence
        self._slot = f"liveparams_realtime_{secrets.token_hex(4)}"
        self._publication = EMPTY_PUBLICATION
        self._publication_read_at = 0.0
        self._wakeup = asyncio.Event()
        self._synced: list[asyncio.Future[None]] = []

    @property
    def publication(self) -> Publication:
        return self._publication

    async def start(self) -> None:
        await self._conn.execute("set timezone to 'UTC'")
        await self._conn.execute("select pg_create_logical_replication_slot(%s, 'wal2json', true)", (self._slot,))
        await self.refresh_publication()
        log.info("realtime: logical slot %s created", self._slot)

    async def refresh_publication(self) -> Publication:
        self._publication = await read_publication(self._conn)
        self._publication_read_at = asyncio.get_running_loop().time()
        return self._publication

    async def sync(self) -> None:
        """Return once every later poll decodes with the publication as it is now.

        A channel awaits this before "Subscribed to PostgreSQL": the poller reads the
        publication only every second, and a poll with an older one would consume
        and drop the first changes of a table just added to it.
        """
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._synced.append(done)
        self._wakeup.set()
        await done

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self._synced or loop.time() - self._publication_read_at > PUBLICATION_REFRESH_S:
                waiting, self._synced = self._synced, []
                await self.refresh_publication()
                for done in waiting:
                    if not done.done():
                        done.set_result(None)
            self._wakeup.clear()
            wal_moved, rows = await self._poll()
            if rows:
                await self._handler(rows)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._cadence.wait_s(wal_moved, self._busy()))

    async def _decodable_end(self) -> str | None:
        """The WAL position to decode up to now, or None when nothing was written since the last poll.

        Logical decoding reads only flushed WAL and *waits* when the flushed end cuts a
        record in two, which asynchronous commits (``synchronous_commit = off``) leave
        behind until the WAL writer's next round: up to ``wal_writer_delay`` (200 ms)
        per change. So: if anything is unflushed, flush it with a synchronous commit of
        a tiny logical message, and decode only up to the insert position seen here,
        which is a record boundary that is now flushed.
        """
        cur = await self._conn.execute(
            "select pg_current_wal_insert_lsn()::text, pg_current_wal_insert_lsn() > pg_current_wal_flush_lsn(),"
            " pg_current_wal_insert_lsn() > coalesce(confirmed_flush_lsn, '0/0')"
            " from pg_replication_slots where slot_name = %s",
            (self._slot,),
        )
        row = await cur.fetchone()
        if row is None:
            raise psycopg.OperationalError(f"replication slot {self._slot} is gone")
        end, unflushed, unread = row
        if unflushed:  # one round trip: a simple query may hold several statements
            await self._conn.execute(
                "begin; set local synchronous_commit = on;"
                " select pg_logical_emit_message(true, 'liveparams-realtime-flush', ''); commit"
            )
        return end if unread else None

    async def _poll(self) -> tuple[bool, list[WalChange]]:
        """Whether the WAL moved since the last poll, and the published row changes decoded."""
        end = await self._decodable_end()
        if end is None:
            return False, []
        publication = self._publication
        options: list[str] = ["format-version", "2", "include-pk", "1", "include-timestamp", "1"]
        options += ["include-type-oids", "1", "include-transaction", "0"]
        tables = ",".join(f"{_escape_table_name(s)}.{_escape_table_name(t)}" for s, t in _captured(publication))
        actions = ",".join(sorted({*publication.actions, "insert"}))
        options += ["actions", actions, "add-tables", tables]
        cur = await self._conn.execute(
            "select data from pg_logical_slot_get_changes(%s, %s::pg_lsn, %s, variadic %s::text[])",
            (self._slot, end, MAX_CHANGES_PER_POLL, options),
        )
        changes = [parse_wal2json(data) for (data,) in await cur.fetchall()]
        return True, [c for c in changes if c is not None and _published(c, publication)]


def _captured(publication: Publication) -> list[tuple[str, str]]:
    """The tables decoded: the publication's (for postgres_changes) and realtime.messages (Broadcast from Database)."""
    return sorted(publication.tables | {MESSAGES_TABLE})


def _published(change: WalChange, publication: Publication) -> bool:
    """Whether a decoded change is one to deliver (decoding asked for INSERTs of every table captured)."""
    if (change.schema, change.table) == MESSAGES_TABLE and change.type == "INSERT":
        return True
    return (change.schema, change.table) in publication.tables and change.type.lower() in publication.actions
