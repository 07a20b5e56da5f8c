"""Private channels authorized by RLS on ``realtime.messages``, and the REST broadcast endpoints.

Policies are created as the superuser for one topic per test, so tests do not see each other's grants.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from realtime import RealtimeSubscribeStates
from realtime_support import Watch, anyio_backend, barrier, next_item, run_sql  # noqa: F401

pytestmark = [pytest.mark.stack, pytest.mark.anyio]

PRIVATE = {"private": True, "broadcast": {"self": True}}


@pytest.fixture
def topic_for_owner(stack_env: dict[str, str]) -> Iterator[Any]:
    """``topic_for_owner(user_id)`` -> a topic whose policies let only that user read and write broadcasts."""
    if "DB_URL" not in stack_env:
        pytest.skip("needs the database URL (SUPABASE_DB_URL for a real stack)")
    policies: list[str] = []

    def grant(user_id: str) -> str:
        topic = f"room-{uuid.uuid4().hex[:8]}"
        condition = f"realtime.topic() = '{topic}' and (select auth.uid()) = '{user_id}'::uuid"
        for action, clause in (("select", "using"), ("insert", "with check")):
            name = f"{topic} {action}"
            run_sql(
                stack_env,
                f'create policy "{name}" on realtime.messages for {action} to authenticated {clause} ({condition})',
            )
            policies.append(name)
        return topic

    yield grant
    for name in policies:
        run_sql(stack_env, f'drop policy if exists "{name}" on realtime.messages')


async def _join(watch: Watch, token: str) -> tuple[RealtimeSubscribeStates, Exception | None]:
    await watch.client.set_auth(token)
    await watch.channel.subscribe(lambda state, error: watch.states.put_nowait((state, error)))
    result: tuple[RealtimeSubscribeStates, Exception | None] = await next_item(watch.states)
    return result


async def test_private_channel_is_joined_only_by_whom_its_policies_let_read(stack_env, new_user, topic_for_owner):
    owner_id, owner_jwt = new_user()
    _, stranger_jwt = new_user()
    topic = topic_for_owner(owner_id)
    owner = Watch.open(stack_env, topic, PRIVATE).on_broadcast()
    stranger = Watch.open(stack_env, topic, PRIVATE)
    anon = Watch.open(stack_env, topic, PRIVATE)
    try:
        assert (await _join(owner, owner_jwt))[0] == RealtimeSubscribeStates.SUBSCRIBED
        for refused, token in ((stranger, stranger_jwt), (anon, stack_env["ANON_KEY"])):
            state, error = await _join(refused, token)
            assert state == RealtimeSubscribeStates.CHANNEL_ERROR
            assert f"You do not have permissions to read from this Channel topic: {topic}" in str(error)
        await owner.channel.send_broadcast("hello", {"n": 1})  # passes the insert policy: delivered to itself
        assert (await next_item(owner.broadcasts))["payload"] == {"n": 1}
    finally:
        for watch in (owner, stranger, anon):
            await watch.close()


async def test_private_and_public_channels_of_one_topic_do_not_hear_each_other(stack_env, new_user, topic_for_owner):
    owner_id, owner_jwt = new_user()
    topic = topic_for_owner(owner_id)
    private = Watch.open(stack_env, topic, PRIVATE).on_broadcast()
    public = Watch.open(stack_env, topic, {"broadcast": {"self": True}}).on_broadcast()
    try:
        await _join(private, owner_jwt)
        await public.subscribe()
        await public.channel.send_broadcast("from-public", {"n": 1})
        await barrier([public], public, "public-done")
        await private.channel.send_broadcast("from-private", {"n": 2})
        assert (await next_item(private.broadcasts))["event"] == "from-private"
        assert public.broadcasts.empty()
    finally:
        await private.close()
        await public.close()


async def test_rest_broadcast_reaches_joined_channels(stack_env, new_user, topic_for_owner):
    owner_id, owner_jwt = new_user()
    _, stranger_jwt = new_user()
    topic = topic_for_owner(owner_id)
    public = Watch.open(stack_env, f"{topic}-public").on_broadcast()
    private = Watch.open(stack_env, topic, PRIVATE).on_broadcast()
    url = stack_env["API_URL"] + "/realtime/v1/api/broadcast"
    try:
        await public.subscribe()
        await _join(private, owner_jwt)
        async with httpx.AsyncClient() as http:

            async def post(token: str, messages: list[dict[str, Any]]) -> httpx.Response:
                headers = {"apikey": stack_env["ANON_KEY"], "Authorization": f"Bearer {token}"}
                return await http.post(url, json={"messages": messages}, headers=headers)

            sent = await post(stack_env["ANON_KEY"], [{"topic": f"{topic}-public", "event": "e", "payload": {"n": 1}}])
            assert (sent.status_code, sent.text) == (202, "")
            assert (await next_item(public.broadcasts)) == {"event": "e", "payload": {"n": 1}}
            # A stranger's private message is accepted but dropped by the insert policy; the owner's arrives.
            for token, n in ((stranger_jwt, 2), (owner_jwt, 3)):
                message = {"topic": topic, "event": "e", "payload": {"n": n}, "private": True}
                assert (await post(token, [message])).status_code == 202
            assert (await next_item(private.broadcasts))["payload"] == {"n": 3}
            bad = await post(stack_env["ANON_KEY"], [{"topic": topic, "payload": {}}])
            assert bad.status_code == 422 and "event" in bad.json()["errors"]["messages"][0]
            assert (await http.post(url, json={"messages": []})).status_code == 401
    finally:
        await public.close()
        await private.close()


async def test_a_write_check_that_could_not_run_is_made_again_on_the_next_broadcast(
    stack_env, new_user, topic_for_owner, failing_broadcast_checks
):
    """A broadcast whose write policy raises (or finds no connection in time: a server working through a backlog)
    is dropped, and the next one is checked again, as on the real server ("UnableToSetPolicies"). Kept as a
    refusal, it silenced the channel for good: an agent's liveness probe went unanswered after a frozen front
    until the agent rebuilt its client (docs/benchmarks.md, "a frozen front")."""
    owner_id, owner_jwt = new_user()
    topic = topic_for_owner(owner_id)
    fail = failing_broadcast_checks(topic)
    owner = Watch.open(stack_env, topic, PRIVATE).on_broadcast()
    try:
        assert (await _join(owner, owner_jwt))[0] == RealtimeSubscribeStates.SUBSCRIBED
        fail(True)
        await owner.channel.send_broadcast("while-failing", {"n": 1})
        await asyncio.sleep(0.5)  # the check has run and raised
        fail(False)
        await owner.channel.send_broadcast("after", {"n": 2})
        assert await next_item(owner.broadcasts) == {"event": "after", "payload": {"n": 2}}
    finally:
        await owner.close()


async def test_a_new_token_without_read_permission_ends_the_private_channel(stack_env, new_user, topic_for_owner):
    owner_id, owner_jwt = new_user()
    _, stranger_jwt = new_user()
    topic = topic_for_owner(owner_id)
    watch = Watch.open(stack_env, topic, PRIVATE)
    try:
        assert (await _join(watch, owner_jwt))[0] == RealtimeSubscribeStates.SUBSCRIBED
        await watch.client.set_auth(stranger_jwt)  # access_token on the joined channel
        state, error = await next_item(watch.states)
        closed, _ = await next_item(watch.states)
    finally:
        await watch.close()
    assert state == RealtimeSubscribeStates.CHANNEL_ERROR
    assert f"You do not have permissions to read from this Channel topic: {topic}" in str(error)
    assert closed == RealtimeSubscribeStates.CLOSED


@pytest.mark.parametrize("presence_write", [True, False])
async def test_presence_on_a_private_channel_needs_the_presence_write_policy(
    stack_env, new_user, topic_for_owner, presence_write
):
    """Both members may read; a track reaches the other member only when the insert policy allows presence."""
    owner_id, owner_jwt = new_user()
    topic = topic_for_owner(owner_id)
    if not presence_write:  # keep the insert policy for broadcast only
        run_sql(
            stack_env,
            f'alter policy "{topic} insert" on realtime.messages with check'
            f" (realtime.topic() = '{topic}' and extension = 'broadcast')",
        )
    config = {**PRIVATE, "presence": {"enabled": True}}
    tracker = Watch.open(stack_env, topic, config).on_broadcast()
    watcher = Watch.open(stack_env, topic, config).on_broadcast()
    joins: asyncio.Queue[str] = asyncio.Queue()
    watcher.channel.on_presence_join(lambda key, current, new: joins.put_nowait(key))
    try:
        for watch in (watcher, tracker):
            assert (await _join(watch, owner_jwt))[0] == RealtimeSubscribeStates.SUBSCRIBED
        await tracker.channel.track({"user": "owner"})
        await barrier([watcher], tracker, "after-track")  # frames of one socket are handled in order
        assert joins.empty() != presence_write
    finally:
        await tracker.close()
        await watcher.close()


async def test_a_project_that_allows_private_channels_only_refuses_public_joins(
    stack_env, new_user, topic_for_owner, faults
):
    """Hosted Realtime with "Allow public access" off (the ``private_only`` switch here): a public join is refused
    before its token or any policy is looked at; a private one is authorized as always."""
    owner_id, owner_jwt = new_user()
    topic = topic_for_owner(owner_id)
    faults("private_only", enabled=True)
    public = Watch.open(stack_env, topic, {"broadcast": {"self": True}})
    private = Watch.open(stack_env, topic, PRIVATE).on_broadcast()
    try:
        state, error = await _join(public, owner_jwt)
        assert state == RealtimeSubscribeStates.CHANNEL_ERROR
        assert "PrivateOnly: This project only allows private channels" in str(error)
        assert (await _join(private, owner_jwt))[0] == RealtimeSubscribeStates.SUBSCRIBED
    finally:
        for watch in (public, private):
            await watch.close()
    faults("reset")
    public = Watch.open(stack_env, topic, {"broadcast": {"self": True}})
    try:
        assert (await _join(public, owner_jwt))[0] == RealtimeSubscribeStates.SUBSCRIBED  # reset allows both again
    finally:
        await public.close()
