"""Private channels: who may read and write a topic, decided by RLS on ``realtime.messages``.

As the real server does (docs/internals.md, "Realtime: private channels"): to
check *read*, insert one probe row per extension (broadcast, and presence when
enabled) for the topic, switch to the caller's role with ``realtime.topic`` and
the JWT claims set, and select the probes back; a visible probe grants read. To
check *write*, insert a row as the caller's role; a refused insert denies write.
Everything happens in a transaction that is rolled back, so no row is ever kept.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors
from psycopg_pool import AsyncConnectionPool

from liveparams_stack.realtime.auth import Identity

log = logging.getLogger(__name__)

# Broadcast from Database: the two functions a hosted project's database has, written for the stack
# with the same signatures and the same observable behaviour (supabase/realtime
# priv/repo/tenant_schema/realtime/functions/ was read, not copied): realtime.send stores a broadcast
# row, its payload given an "id" unless it has one, and only warns when it cannot; broadcast_changes
# sends a row trigger's NEW/OLD as {record, old_record, operation, table, schema}. A row stored is
# delivered by the stack's change capture (cdc.py, hub.py).
BROADCAST_FROM_DATABASE_SQL = """
create or replace function realtime.send(payload jsonb, event text, topic text, private boolean default true)
returns void
language plpgsql
as $function$
declare
  message_id uuid := gen_random_uuid();
begin
  perform set_config('realtime.topic', topic, true);  -- what the messages' policies read
  insert into realtime.messages (id, payload, event, topic, private, extension)
  values (message_id,
          case when payload ? 'id' then payload else payload || jsonb_build_object('id', message_id) end,
          event, topic, private, 'broadcast');
exception when others then  -- a broadcast that cannot be stored never fails the caller's statement
  raise warning 'realtime.send on topic %: %', topic, sqlerrm;
end;
$function$;
create or replace function realtime.broadcast_changes(
  topic_name text, event_name text, operation text, table_name text, table_schema text,
  new record, old record, level text default 'ROW'::text
)
returns void
language plpgsql
as $function$
begin
  if level <> 'ROW' then
    raise exception 'realtime.broadcast_changes runs in a row trigger, not a % one', lower(level);
  end if;
  if operation not in ('INSERT', 'UPDATE', 'DELETE') then
    raise exception 'realtime.broadcast_changes: unexpected operation %', operation;
  end if;
  perform realtime.send(
    jsonb_build_object('old_record', old, 'record', new, 'operation', operation, 'table', table_name,
                       'schema', table_schema),
    event_name, topic_name);
end;
$function$;
"""

# The part of Realtime's own schema that channel authorization needs. The real server creates it
# in the project database; the local server does so at startup, idempotently. Not partitioned.
SCHEMA_SQL = (
    """
create schema if not exists realtime;
grant usage on schema realtime to anon, authenticated, service_role;
create table if not exists realtime.messages (
  topic text not null,
  extension text not null,
  payload jsonb,
  event text,
  private boolean default false,
  updated_at timestamp without time zone not null default now(),
  inserted_at timestamp without time zone not null default now(),
  id uuid not null default gen_random_uuid(),
  primary key (id, inserted_at)
);
alter table realtime.messages enable row level security;
grant insert, select, update on table realtime.messages to anon, authenticated, service_role;
create or replace function realtime.topic() returns text
language sql stable
as $$ select nullif(current_setting('realtime.topic', true), '')::text $$;
grant execute on function realtime.topic() to anon, authenticated, service_role;
"""
    + BROADCAST_FROM_DATABASE_SQL
)


def unauthorized(topic: str) -> str:
    """Why a private channel may not be read, worded as the real server's (a join refusal adds "Unauthorized: ")."""
    return f"You do not have permissions to read from this Channel topic: {topic}"


def revoked(topic: str) -> str:
    """Why a private channel ends when a new token loses a read permission the old one had."""
    return f"You no longer have permission to read from this Channel topic: {topic}"


@dataclass(frozen=True)
class ReadPolicies:
    broadcast: bool
    presence: bool

    @property
    def any(self) -> bool:
        return self.broadcast or self.presence

    def lost_by(self, current: ReadPolicies) -> bool:
        """Whether ``current`` denies a read these policies allowed."""
        return (self.broadcast and not current.broadcast) or (self.presence and not current.presence)


class ChannelAuthorizer:
    """Runs the policy checks on pooled superuser connections, each in a transaction that is rolled back.

    A check runs for every join and for every private message sent through the REST broadcast API
    (live metrics: one a second per training job); a connection per check made 300 jobs' metrics
    saturate the server (docs/benchmarks.md).
    """

    def __init__(self, dsn: str, pool: AsyncConnectionPool) -> None:
        self._dsn = dsn
        self._pool = pool

    async def install_schema(self) -> None:
        async with await psycopg.AsyncConnection.connect(self._dsn, autocommit=True) as conn:
            await conn.execute(SCHEMA_SQL)

    async def can_read(self, topic: str, identity: Identity, presence: bool) -> ReadPolicies:
        """Read policies for ``topic``; a policy that fails to evaluate denies, like on the real server."""
        probes = {"broadcast": str(uuid.uuid4())}
        if presence:
            probes["presence"] = str(uuid.uuid4())
        try:
            async with self._pool.connection() as conn, conn.transaction(force_rollback=True):
                for extension, probe in probes.items():
                    await conn.execute(
                        "insert into realtime.messages (id, topic, extension) values (%s, %s, %s)",
                        (probe, topic, extension),
                    )
                await self._act_as(conn, topic, identity)
                cur = await conn.execute(
                    "select id::text from realtime.messages where id = any(%s::uuid[])", (list(probes.values()),)
                )
                visible = {row[0] for row in await cur.fetchall()}
        except psycopg.Error as exc:
            log.info("realtime: read policy check on %r failed: %s", topic, exc)
            return ReadPolicies(broadcast=False, presence=False)
        return ReadPolicies(broadcast=probes["broadcast"] in visible, presence=probes.get("presence", "") in visible)

    async def can_write(self, topic: str, identity: Identity, extension: str) -> bool | None:
        """Whether the caller's role may insert a ``realtime.messages`` row for ``topic``; ``None`` where the check
        could not run (a policy that raised, no connection within the pool's timeout): the message is dropped and
        the channel asks again next time, as the real server does ("UnableToSetPolicies"), rather than keep a
        refusal the policies never gave."""
        try:
            async with self._pool.connection() as conn, conn.transaction(force_rollback=True):
                await self._act_as(conn, topic, identity)
                try:
                    await conn.execute(
                        "insert into realtime.messages (topic, extension) values (%s, %s)", (topic, extension)
                    )
                except errors.InsufficientPrivilege:
                    return False
        except psycopg.Error as exc:
            log.info("realtime: write policy check on %r failed: %s", topic, exc)
            return None
        return True

    @staticmethod
    async def _act_as(conn: psycopg.AsyncConnection[Any], topic: str, identity: Identity) -> None:
        claims = identity.claims
        await conn.execute(
            "select set_config('role', %s, true), set_config('realtime.topic', %s, true),"
            " set_config('request.jwt.claims', %s, true), set_config('request.jwt.claim.sub', %s, true),"
            " set_config('request.jwt.claim.role', %s, true)",
            (identity.role, topic, json.dumps(claims), str(claims.get("sub") or ""), identity.role),
        )
