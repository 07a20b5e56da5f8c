"""postgres_changes through the local stack, seen by the unmodified official Python client."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from realtime import RealtimeSubscribeStates
from realtime_support import Watch, anyio_backend, barrier, next_item, published_table, run_sql  # noqa: F401
from supabase import acreate_client

pytestmark = [pytest.mark.stack, pytest.mark.anyio]

TIMESTAMP_MS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def test_update_arrives_with_the_real_server_payload_shape(stack_env, new_user, new_job, request_update):
    owner_id, owner_jwt = new_user()
    job_id = new_job(owner_id)
    watch = Watch.open(stack_env).on_changes(filter=f"id=eq.{job_id}")
    try:
        await watch.subscribe(owner_jwt)
        stored = request_update(owner_jwt, job_id, {"learning_rate": 5e-05})
        change = await watch.next_change()
    finally:
        await watch.close()

    data = change["data"]
    assert change["ids"] and all(isinstance(i, int) and i > 0 for i in change["ids"])
    assert (data["schema"], data["table"], data["type"]) == ("public", "local_training_jobs", "UPDATE")
    assert data["errors"] is None
    assert TIMESTAMP_MS_Z.match(data["commit_timestamp"])
    assert data["old_record"] == {"id": job_id}  # default replica identity: primary key only
    columns = {c["name"]: c["type"] for c in data["columns"]}
    assert columns["id"] == "uuid" and columns["parameter_updates"] == "_jsonb"
    assert columns["parameters_in_force"] == "jsonb" and columns["updated_at"] == "timestamptz"
    record = data["record"]
    assert record["id"] == job_id and record["user_id"] == owner_id and record["status"] == "running"
    assert record["parameter_updates"] == [] and record["parameters_in_force"] == {}  # real JSON, not text
    assert record["last_parameter_update_at"] is not None and stored["id"]


async def test_through_supabase_client_channel(stack_env, new_user, new_job, request_update):
    owner_id, owner_jwt = new_user()
    job_id = new_job(owner_id)
    sb = await acreate_client(stack_env["API_URL"], stack_env["ANON_KEY"])
    watch = Watch(sb.realtime, sb.channel("jobs-through-supabase")).on_changes(filter=f"id=eq.{job_id}")
    try:
        await watch.subscribe(owner_jwt)
        request_update(owner_jwt, job_id, {"weight_decay": 0.1})
        change = await watch.next_change()
    finally:
        await sb.realtime.close()
    assert change["data"]["record"]["id"] == job_id


async def test_filter_mismatch_is_not_delivered(stack_env, new_user, new_job, request_update):
    owner_id, owner_jwt = new_user()
    watched, other = new_job(owner_id), new_job(owner_id)
    watch = Watch.open(stack_env).on_changes(filter=f"id=eq.{watched}")
    try:
        await watch.subscribe(owner_jwt)
        request_update(owner_jwt, other, {"learning_rate": 1e-3})
        request_update(owner_jwt, watched, {"learning_rate": 2e-3})
        change = await watch.next_change()  # changes arrive in commit order, so `other` would be first
    finally:
        await watch.close()
    assert change["data"]["record"]["id"] == watched
    assert watch.changes.empty()


async def test_filter_in_and_uppercase_uuid_match_like_postgres(stack_env, new_user, new_job, request_update):
    owner_id, owner_jwt = new_user()
    job_id = new_job(owner_id)
    watch = Watch.open(stack_env).on_changes(filter=f"id=in.({uuid.uuid4()},{job_id.upper()})")
    try:
        await watch.subscribe(owner_jwt)
        request_update(owner_jwt, job_id, {"learning_rate": 1e-3})
        change = await watch.next_change()
    finally:
        await watch.close()
    assert change["data"]["record"]["id"] == job_id


async def test_rls_decides_who_receives(stack_env, new_user, new_job, job_token, request_update):
    owner_id, owner_jwt = new_user()
    _, stranger_jwt = new_user()
    job_id, other_job = new_job(owner_id), new_job(owner_id)
    tokens = {
        "owner": owner_jwt,
        "job token": job_token(job_id),
        "other user": stranger_jwt,
        "other job's token": job_token(other_job),
    }
    watches = {who: Watch.open(stack_env).on_changes(filter=f"id=eq.{job_id}").on_broadcast() for who in tokens}
    try:
        for who, token in tokens.items():
            await watches[who].subscribe(token)
        request_update(owner_jwt, job_id, {"learning_rate": 3e-4})
        for who in ("owner", "job token"):
            assert (await watches[who].next_change())["data"]["record"]["id"] == job_id, who
        refused = [watches[who] for who in ("other user", "other job's token")]
        await barrier(refused, watches["owner"], "after-update")
        for who in ("other user", "other job's token"):
            assert watches[who].changes.empty(), who
    finally:
        for watch in watches.values():
            await watch.close()


async def test_anon_cannot_filter_on_a_column_it_may_not_read(stack_env, new_user, new_job):
    """As on the real server, the filter column must be readable by the role: anon has no SELECT on jobs."""
    job_id = new_job(new_user()[0])
    watch = Watch.open(stack_env).on_changes(filter=f"id=eq.{job_id}")
    try:
        await watch.channel.subscribe(lambda state, error: watch.states.put_nowait((state, error)))
        assert await watch.next_state() == RealtimeSubscribeStates.SUBSCRIBED  # the join; then the system error
        state, error = await next_item(watch.states)
    finally:
        await watch.close()
    assert state == RealtimeSubscribeStates.CHANNEL_ERROR and "invalid column for filter id" in str(error)


async def test_access_token_swap_changes_what_rls_lets_through(stack_env, new_user, new_job, request_update):
    owner_id, owner_jwt = new_user()
    _, stranger_jwt = new_user()
    job_id = new_job(owner_id)
    watch = Watch.open(stack_env).on_changes(filter=f"id=eq.{job_id}").on_broadcast()
    peer = Watch.open(stack_env).on_changes(filter=f"id=eq.{job_id}").on_broadcast()
    try:
        await watch.subscribe(stranger_jwt)  # another user: RLS shows it nothing
        await peer.subscribe(stack_env["SERVICE_ROLE_KEY"])
        request_update(owner_jwt, job_id, {"learning_rate": 1e-3})
        await peer.next_change()  # rendered for everyone now
        await barrier([watch], peer, "as-stranger")
        assert watch.changes.empty()

        await watch.client.set_auth(owner_jwt)  # access_token on the joined channel, no reply, no rejoin
        await barrier([peer], watch, "after-swap")  # frames of one socket are handled in order: token applied
        request_update(owner_jwt, job_id, {"learning_rate": 2e-3})
        change = await watch.next_change()
        assert change["data"]["record"]["id"] == job_id
        assert watch.states.empty()  # still the first SUBSCRIBED: no error, no rejoin
    finally:
        await watch.close()
        await peer.close()


async def test_insert_event_for_a_wildcard_binding(stack_env, new_user, new_job):
    owner_id, _ = new_user()
    watch = Watch.open(stack_env).on_changes(event="*")
    try:
        await watch.subscribe(stack_env["SERVICE_ROLE_KEY"])
        job_id = new_job(owner_id)
        inserted = await watch.next_change()
        assert inserted["data"]["type"] == "INSERT" and inserted["data"]["record"]["id"] == job_id
        assert "old_record" not in inserted["data"] or inserted["data"]["old_record"] is None
    finally:
        await watch.close()


async def test_delete_event_carries_the_primary_key_only(stack_env, new_user, new_job):
    owner_id, owner_jwt = new_user()
    job_id = new_job(owner_id)
    watch = Watch.open(stack_env).on_changes(event="DELETE", filter=f"id=eq.{job_id}")
    key = stack_env["SERVICE_ROLE_KEY"]
    try:
        await watch.subscribe(owner_jwt)
        async with httpx.AsyncClient(base_url=stack_env["API_URL"]) as http:
            response = await http.delete(
                "/rest/v1/local_training_jobs",
                params={"id": f"eq.{job_id}"},
                headers={"apikey": key, "Authorization": f"Bearer {key}"},
            )
            response.raise_for_status()
        data = (await watch.next_change())["data"]
    finally:
        await watch.close()
    assert (data["type"], data["old_record"], data.get("record")) == ("DELETE", {"id": job_id}, None)


async def test_first_change_on_a_table_just_published_is_not_lost(stack_env):
    """Every change committed after "Subscribed to PostgreSQL" arrives, the first one included, in order."""
    for _ in range(3):  # the race needs the table published moments before the join
        with published_table(stack_env) as table:
            watch = Watch.open(stack_env).on_changes(table=table, event="INSERT")
            try:
                await watch.subscribe(stack_env["SERVICE_ROLE_KEY"])
                for i in range(10):
                    run_sql(stack_env, f"insert into {table} (id, name) values (%s, 'n')", i)
                ids = [(await watch.next_change())["data"]["record"]["id"] for _ in range(10)]
            finally:
                await watch.close()
        assert ids == list(range(10))
