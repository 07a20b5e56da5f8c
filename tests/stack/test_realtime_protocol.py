"""The Phoenix channel protocol of the local Realtime server: raw frames and the official Python client."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlencode

import pytest
import websockets
from realtime import RealtimeSubscribeStates
from realtime_support import Watch, anyio_backend, next_item, realtime_url  # noqa: F401
from websockets.asyncio.client import ClientConnection

from liveparams.tokens import mint_jwt

pytestmark = [pytest.mark.stack, pytest.mark.anyio]

OK_EMPTY = {"status": "ok", "response": {}}


def socket_url(env: dict[str, str], apikey: str | None = None, vsn: str = "1.0.0") -> str:
    base = realtime_url(env).replace("http://", "ws://").replace("https://", "wss://")
    return f"{base}/websocket?{urlencode({'apikey': apikey or env['ANON_KEY'], 'vsn': vsn})}"


async def exchange(ws: ClientConnection, frame: dict[str, Any]) -> dict[str, Any]:
    await ws.send(json.dumps(frame))
    return json.loads(await ws.recv())


def join_frame(topic: str, ref: str, bindings: list[dict[str, Any]]) -> dict[str, Any]:
    config = {"broadcast": {"ack": False, "self": False}, "presence": {"key": "", "enabled": False}}
    payload = {"config": {**config, "private": False, "postgres_changes": bindings}}
    return {"topic": topic, "event": "phx_join", "payload": payload, "ref": ref, "join_ref": ref}


async def test_heartbeat_reply_echoes_the_ref(stack_env):
    async with websockets.connect(socket_url(stack_env)) as ws:
        for ref in (None, "26"):
            reply = await exchange(ws, {"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": ref})
            assert reply == {"topic": "phoenix", "event": "phx_reply", "payload": OK_EMPTY, "ref": ref}


async def test_join_echoes_bindings_in_order_with_stable_ids_then_system_ok(stack_env):
    bindings = [
        {"event": "*", "schema": "public", "table": "local_training_jobs"},
        {"event": "UPDATE", "schema": "public", "table": "local_training_jobs", "filter": "status=eq.running"},
    ]
    # service_role: a filter needs SELECT on its column, which anon lacks on this table.
    async with websockets.connect(socket_url(stack_env, stack_env["SERVICE_ROLE_KEY"])) as ws:
        reply = await exchange(ws, join_frame("realtime:ids", "1", bindings))
        system = json.loads(await ws.recv())
        again = await exchange(ws, join_frame("realtime:ids-again", "2", bindings))
    assert set(reply) == {"topic", "event", "payload", "ref"}  # vsn 1.0.0 never carries join_ref
    assert reply["ref"] == "1" and reply["payload"]["status"] == "ok"
    echoed = reply["payload"]["response"]["postgres_changes"]
    assert [{k: v for k, v in e.items() if k != "id"} for e in echoed] == bindings
    ids = [e["id"] for e in echoed]
    assert all(isinstance(i, int) and 1 <= i < 2**27 for i in ids) and ids[0] != ids[1]
    assert [e["id"] for e in again["payload"]["response"]["postgres_changes"]] == ids
    assert system == {
        "topic": "realtime:ids",
        "event": "system",
        "ref": None,
        "payload": {
            "channel": "ids",
            "extension": "postgres_changes",
            "message": "Subscribed to PostgreSQL",
            "status": "ok",
        },
    }


async def test_join_without_bindings_replies_an_empty_list(stack_env):
    async with websockets.connect(socket_url(stack_env)) as ws:
        reply = await exchange(ws, join_frame("realtime:room", "1", []))
    assert reply["payload"] == {"status": "ok", "response": {"postgres_changes": []}}


async def test_unpublished_table_gets_a_system_error(stack_env):
    async with websockets.connect(socket_url(stack_env)) as ws:
        await exchange(ws, join_frame("realtime:nope", "1", [{"event": "*", "schema": "public", "table": "nope"}]))
        system = json.loads(await ws.recv())
    assert system["payload"]["status"] == "error"
    assert system["payload"]["message"].startswith("Unable to subscribe to changes with given parameters")


async def test_leave_replies_then_closes_with_the_join_ref(stack_env):
    async with websockets.connect(socket_url(stack_env)) as ws:
        await exchange(ws, join_frame("realtime:room", "1", []))
        leave = {"topic": "realtime:room", "event": "phx_leave", "payload": {}, "ref": "2", "join_ref": "1"}
        reply = await exchange(ws, leave)
        close = json.loads(await ws.recv())
    assert reply == {"topic": "realtime:room", "event": "phx_reply", "payload": OK_EMPTY, "ref": "2"}
    assert close == {"topic": "realtime:room", "event": "phx_close", "payload": {}, "ref": "1"}


async def test_vsn_2_uses_arrays(stack_env):
    async with websockets.connect(socket_url(stack_env, vsn="2.0.0")) as ws:
        await ws.send(json.dumps([None, "3", "phoenix", "heartbeat", {}]))
        assert json.loads(await ws.recv()) == [None, "3", "phoenix", "phx_reply", {"status": "ok", "response": {}}]


async def test_bad_apikey_is_refused_before_the_upgrade(stack_env):
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(socket_url(stack_env, apikey="not-a-jwt")):
            pass
    assert refused.value.response.status_code == 401


async def test_python_client_leave_ends_closed(stack_env):
    watch = Watch.open(stack_env, name="leaving")
    try:
        await watch.subscribe()
        await watch.channel.unsubscribe()
        assert await watch.next_state() == RealtimeSubscribeStates.CLOSED
    finally:
        await watch.close()


async def test_broadcast_round_trip_with_self_and_ack(stack_env):
    sender = Watch.open(stack_env, name="room", config={"broadcast": {"self": True, "ack": True}})
    receiver = Watch.open(stack_env, name="room")
    sender.on_broadcast("cursor")
    receiver.on_broadcast("cursor")
    try:
        await sender.subscribe()
        await receiver.subscribe()
        await sender.channel.send_broadcast("cursor", {"x": 1})
        for watch in (receiver, sender):
            message = await next_item(watch.broadcasts)
            assert (message["event"], message["payload"]) == ("cursor", {"x": 1})
    finally:
        await sender.close()
        await receiver.close()


async def test_presence_round_trip(stack_env):
    alice, bob = Watch.open(stack_env, name="lobby"), Watch.open(stack_env, name="lobby")
    joins: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    synced = []
    bob.channel.on_presence_join(lambda key, current, new: joins.put_nowait((key, new)))
    bob.channel.on_presence_sync(lambda: synced.append(True))
    alice.channel.on_presence_sync(lambda: None)
    try:
        await bob.subscribe()
        await alice.subscribe()
        await alice.channel.track({"name": "alice"})
        _, new = await next_item(joins)
        assert [m["name"] for m in new] == ["alice"] and all("presence_ref" in m for m in new)
        assert synced
        assert [m["name"] for metas in bob.channel.presence_state().values() for m in metas] == ["alice"]
    finally:
        await alice.close()
        await bob.close()


async def test_channel_ends_when_its_token_expires(stack_env, new_user):
    user_id, _ = new_user()
    short_lived = mint_jwt({"sub": user_id, "role": "authenticated"}, stack_env["JWT_SECRET"], expires_in=2)
    watch = Watch.open(stack_env, name="short-lived")
    try:
        await watch.subscribe(short_lived)
        state, error = await next_item(watch.states)
        assert state == RealtimeSubscribeStates.CHANNEL_ERROR and "Token has expired" in str(error)
        assert await watch.next_state() == RealtimeSubscribeStates.CLOSED
    finally:
        await watch.close()
