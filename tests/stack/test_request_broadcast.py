"""Broadcast from Database of new requests (migration 20261207050000_request_broadcast.sql) through the stack.

A request made through the RPC reaches the private topic ``job:<id>`` as the real Realtime
sends what ``realtime.broadcast_changes`` wrote; who may join that topic is decided by RLS on
``realtime.messages``. Official ``realtime`` client, real PostgreSQL, nothing mocked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from realtime import RealtimeSubscribeStates
from realtime_support import Watch, anyio_backend, next_item  # noqa: F401

pytestmark = [pytest.mark.stack, pytest.mark.anyio]

PRIVATE = {"private": True, "broadcast": {"self": False}}


async def _join(stack_env: dict[str, str], job_id: str, token: str) -> tuple[Watch, RealtimeSubscribeStates]:
    watch = Watch.open(stack_env, f"job:{job_id}", PRIVATE).on_broadcast()
    await watch.client.set_auth(token)
    await watch.channel.subscribe(lambda state, error: watch.states.put_nowait((state, error)))
    return watch, await watch.next_state()


async def test_a_new_request_reaches_its_jobs_trainer_as_broadcast_changes_sends_it(
    stack_env: dict[str, str],
    new_user: Callable[[], tuple[str, str]],
    new_job: Callable[..., str],
    job_token: Callable[[str], str],
    request_update: Callable[..., dict[str, Any]],
) -> None:
    owner_id, owner = new_user()
    job_id = new_job(owner_id)
    trainer, state = await _join(stack_env, job_id, job_token(job_id))
    owners_panel, owner_state = await _join(stack_env, job_id, owner)
    try:
        assert (state, owner_state) == (RealtimeSubscribeStates.SUBSCRIBED, RealtimeSubscribeStates.SUBSCRIBED)
        stored = request_update(owner, job_id, {"learning_rate": 2e-5})
        for watch in (trainer, owners_panel):
            message = await next_item(watch.broadcasts)
            assert message["event"] == "INSERT"
            payload = message["payload"]
            assert {k: payload[k] for k in ("operation", "table", "schema", "old_record")} == {
                "operation": "INSERT",
                "table": "parameter_update_requests",
                "schema": "public",
                "old_record": None,
            }
            assert payload["id"] == message["meta"]["id"]  # realtime.send puts the message id in both
            record = payload["record"]
            assert (record["id"], record["seq"], record["job_id"]) == (stored["id"], stored["seq"], job_id)
            assert record["params"] == {"learning_rate": 2e-5}
    finally:
        await trainer.close()
        await owners_panel.close()


async def test_a_trainer_cannot_join_another_jobs_requests_topic_and_hears_none_of_its_requests(
    stack_env: dict[str, str],
    new_user: Callable[[], tuple[str, str]],
    new_job: Callable[..., str],
    job_token: Callable[[str], str],
    request_update: Callable[..., dict[str, Any]],
) -> None:
    owner_id, owner = new_user()
    mine, theirs = new_job(owner_id), new_job(owner_id)
    _, stranger = new_user()
    intruder, state = await _join(stack_env, theirs, job_token(mine))
    outsider, outsider_state = await _join(stack_env, theirs, stranger)
    own, own_state = await _join(stack_env, mine, job_token(mine))
    try:
        assert state is RealtimeSubscribeStates.CHANNEL_ERROR, "another job's trainer joined job:<id>"
        assert outsider_state is RealtimeSubscribeStates.CHANNEL_ERROR, "a user who owns no such job joined it"
        assert own_state is RealtimeSubscribeStates.SUBSCRIBED
        request_update(owner, theirs, {"learning_rate": 1e-3})
        marker = request_update(owner, mine, {"learning_rate": 1e-4})
        message = await next_item(own.broadcasts)
        assert message["payload"]["record"]["id"] == marker["id"]  # its own job's only: the other one never came
        assert intruder.broadcasts.empty() and outsider.broadcasts.empty()
    finally:
        for watch in (intruder, outsider, own):
            await watch.close()
