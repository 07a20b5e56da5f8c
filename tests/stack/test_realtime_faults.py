"""Each fault action, as the unmodified official Python client experiences it."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from realtime import RealtimeSubscribeStates
from realtime_support import Watch, anyio_backend, barrier, next_item  # noqa: F401

from liveparams_stack.server import ServerConfig, build_app

pytestmark = [pytest.mark.stack, pytest.mark.faults, pytest.mark.anyio]

SUBSCRIBED = RealtimeSubscribeStates.SUBSCRIBED
CHANNEL_ERROR = RealtimeSubscribeStates.CHANNEL_ERROR
CLOSED = RealtimeSubscribeStates.CLOSED


@pytest.fixture
def owned_job(new_user, new_job) -> tuple[str, str]:
    """``(job_id, owner_jwt)`` of a running job."""
    owner_id, owner_jwt = new_user()
    return new_job(owner_id), owner_jwt


async def watch_job(stack_env, name: str, job_id: str, token: str) -> Watch:
    watch = (
        Watch.open(stack_env, name=name)
        .on_changes(table="parameter_update_requests", event="INSERT", filter=f"job_id=eq.{job_id}")
        .on_broadcast()
    )
    await watch.subscribe(token)
    return watch


async def wait_resubscribed(watch: Watch) -> None:
    assert await watch.next_state() == CHANNEL_ERROR
    assert await watch.next_state() == SUBSCRIBED
    system = await next_item(watch.systems)  # the rejoin's "Subscribed to PostgreSQL": changes flow again
    assert system.status == "ok"


def lr_of(change: dict) -> float:
    return change["data"]["record"]["params"]["learning_rate"]


@pytest.mark.parametrize("code", [1001, 1011])
async def test_close_sockets_client_reconnects_and_resubscribes(stack_env, faults, owned_job, request_update, code):
    job_id, owner_jwt = owned_job
    watch = await watch_job(stack_env, f"close-{code}", job_id, owner_jwt)
    try:
        assert faults("close_sockets", code=code, topic=f"realtime:close-{code}")["affected"] == 1
        await wait_resubscribed(watch)
        request_update(owner_jwt, job_id, {"learning_rate": 1e-3})
        assert lr_of(await watch.next_change()) == 1e-3
    finally:
        await watch.close()


async def test_stalled_socket_loses_changes_and_resumes_without_replay(stack_env, faults, owned_job, request_update):
    job_id, owner_jwt = owned_job
    watch = await watch_job(stack_env, "stall", job_id, owner_jwt)
    control = await watch_job(stack_env, "stall-control", job_id, owner_jwt)
    try:
        faults("stall_sockets", topic="realtime:stall")
        request_update(owner_jwt, job_id, {"learning_rate": 1e-3})
        assert lr_of(await control.next_change()) == 1e-3  # rendered and pushed to everyone by now
        faults("unstall_sockets", topic="realtime:stall")
        request_update(owner_jwt, job_id, {"learning_rate": 2e-3})
        assert lr_of(await watch.next_change()) == 2e-3  # the change made while stalled is gone
        assert watch.states.empty()  # the client never noticed
    finally:
        await watch.close()
        await control.close()


async def test_phx_error_gives_channel_error_then_rejoin(stack_env, faults, owned_job, request_update):
    job_id, owner_jwt = owned_job
    watch = await watch_job(stack_env, "crash", job_id, owner_jwt)
    try:
        assert faults("phx_error", topic="realtime:crash")["affected"] == 1
        await wait_resubscribed(watch)
        request_update(owner_jwt, job_id, {"learning_rate": 1e-3})
        assert lr_of(await watch.next_change()) == 1e-3
    finally:
        await watch.close()


async def test_system_error_gives_channel_error_then_rejoin(stack_env, faults, owned_job):
    job_id, owner_jwt = owned_job
    watch = await watch_job(stack_env, "syserr", job_id, owner_jwt)
    try:
        faults("system_error", message="Realtime is restarting, please standby", topic="realtime:syserr")
        state, error = await next_item(watch.states)  # the 2.34 client passes only ok system messages to on_system
        assert state == CHANNEL_ERROR and "Realtime is restarting" in str(error)
        assert await watch.next_state() == SUBSCRIBED  # its rejoin: the server replaces the open join silently
    finally:
        await watch.close()


async def test_stale_phx_close_closes_the_python_channel(stack_env, faults, owned_job):
    job_id, owner_jwt = owned_job
    watch = await watch_job(stack_env, "stale", job_id, owner_jwt)
    try:
        faults("stale_phx_close", topic="realtime:stale")
        assert await watch.next_state() == CLOSED  # the 2.34 client does not check the close's ref
        assert "realtime:stale" not in watch.client.channels
    finally:
        await watch.close()


async def test_expire_token_errors_then_closes_the_channel(stack_env, faults, owned_job):
    job_id, owner_jwt = owned_job
    watch = await watch_job(stack_env, "expiry", job_id, owner_jwt)
    try:
        faults("expire_token", topic="realtime:expiry")
        state, error = await next_item(watch.states)
        assert state == CHANNEL_ERROR and "Token has expired" in str(error)
        assert await watch.next_state() == CLOSED  # no rejoin: the channel stays closed
    finally:
        await watch.close()


async def test_changes_hold_then_release(stack_env, faults, owned_job, request_update):
    job_id, owner_jwt = owned_job
    watch = await watch_job(stack_env, "hold", job_id, owner_jwt)
    control = await watch_job(stack_env, "hold-control", job_id, owner_jwt)
    peer = Watch.open(stack_env, name="hold").on_broadcast()
    try:
        await peer.subscribe()
        faults("changes", mode="hold", topic="realtime:hold")
        request_update(owner_jwt, job_id, {"learning_rate": 1e-3})
        await control.next_change()
        await barrier([watch], peer, "while-held")
        assert watch.changes.empty()
        faults("changes", mode="normal")
        assert lr_of(await watch.next_change()) == 1e-3
    finally:
        for w in (watch, control, peer):
            await w.close()


async def test_changes_drop_loses_them(stack_env, faults, owned_job, request_update):
    job_id, owner_jwt = owned_job
    watch = await watch_job(stack_env, "drop", job_id, owner_jwt)
    control = await watch_job(stack_env, "drop-control", job_id, owner_jwt)
    try:
        faults("changes", mode="drop", topic="realtime:drop")
        request_update(owner_jwt, job_id, {"learning_rate": 1e-3})
        await control.next_change()
        faults("changes", mode="normal", topic="realtime:drop")
        request_update(owner_jwt, job_id, {"learning_rate": 2e-3})
        assert lr_of(await watch.next_change()) == 2e-3
    finally:
        await watch.close()
        await control.close()


def test_rest_errors_fail_the_next_requests(stack_env, faults):
    url = f"{stack_env['API_URL']}/rest/v1/rpc/liveparams_parameter_spec"
    headers = {"apikey": stack_env["ANON_KEY"]}
    faults("rest_errors", count=2, status=503)
    assert [httpx.post(url, headers=headers, json={}).status_code for _ in range(3)] == [503, 503, 200]


def test_unknown_action_is_refused(stack_env, faults):
    with pytest.raises(httpx.HTTPStatusError) as refused:
        faults("melt_down")
    assert refused.value.response.status_code == 404


async def test_server_stop_closes_with_1001_and_the_client_comes_back(
    stack_env, local_stack, owned_job, request_update
):
    if local_stack is None:
        pytest.skip("restarts the local stack's HTTP front")
    job_id, owner_jwt = owned_job
    watch = await watch_job(stack_env, "restart", job_id, owner_jwt)
    try:
        await asyncio.to_thread(local_stack.restart_api)
        state, error = await next_item(watch.states)
        assert state == CHANNEL_ERROR and "1001" in str(error)
        assert await watch.next_state() == SUBSCRIBED  # reconnected (backoff 1, 2, 4 s) and rejoined
        await next_item(watch.systems)
        request_update(owner_jwt, job_id, {"learning_rate": 1e-3})
        assert lr_of(await watch.next_change()) == 1e-3
    finally:
        await watch.close()


def test_fault_routes_exist_only_behind_the_switch():
    def fault_paths(enable_faults: bool) -> list[str]:
        config = ServerConfig(port=0, dsn="postgresql://unused", jwt_secret="x" * 32, enable_faults=enable_faults)
        return [r.canonical for r in build_app(config).router.resources() if "faults" in r.canonical]

    assert fault_paths(False) == []
    assert fault_paths(True) == ["/_liveparams/faults/{action}"]
