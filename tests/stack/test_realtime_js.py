"""supabase-js from node_modules (vsn 2.0.0, binary broadcast frames) against the stack."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from realtime_support import Watch, anyio_backend, next_item  # noqa: F401

pytestmark = pytest.mark.stack
# Node 20 has WebSocket only behind this flag (22+ has it by default); realtime-js uses the global one.
NODE_FLAGS = ["--experimental-websocket", "--no-warnings"]

SCRIPT = Path(__file__).parent / "js" / "realtime_roundtrip.mjs"
REST_BROADCAST_SCRIPT = Path(__file__).parent / "js" / "realtime_rest_broadcast.mjs"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def node() -> str:
    node = shutil.which("node")
    if node is None or not (REPO / "node_modules" / "@supabase" / "supabase-js").is_dir():
        pytest.skip("needs node and `npm install` (node_modules/@supabase/supabase-js)")
    return node


def test_supabase_js_changes_broadcast_and_heartbeat(node, stack_env, new_user, new_job, request_update):
    owner_id, owner_jwt = new_user()
    job_id = new_job(owner_id)
    env = {**os.environ, "API_URL": stack_env["API_URL"], "ANON_KEY": stack_env["ANON_KEY"]}
    env |= {"USER_JWT": owner_jwt, "JOB_ID": job_id}
    command = [node, *NODE_FLAGS, str(SCRIPT)]
    events: list[dict[str, Any]] = []
    with subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            event = json.loads(line)
            events.append(event)
            if event["kind"] == "ready":
                request_update(owner_jwt, job_id, {"learning_rate": 4e-4})
        assert proc.wait(timeout=30) == 0, events
    by_kind = {e["kind"]: e for e in events}
    assert "vsn=2.0.0" in by_kind["socket"]["url"]
    assert by_kind["status"]["status"] == "SUBSCRIBED"
    change = by_kind["change"]["payload"]
    assert (change["eventType"], change["old"]) == ("UPDATE", {"id": job_id})
    assert change["new"]["id"] == job_id and change["new"]["last_parameter_update_at"]
    assert by_kind["broadcast"]["message"]["payload"] == {"n": 1}  # sent as binary kind 3, back as kind 4


@pytest.mark.anyio
async def test_supabase_js_broadcasts_over_rest_without_joining(node, stack_env):
    """``httpSend()`` and ``send()`` on an unjoined channel reach a channel joined by the Python client."""
    topic = f"rest-{uuid.uuid4().hex[:8]}"
    watch = Watch.open(stack_env, topic).on_broadcast()
    try:
        await watch.subscribe()
        env = {**os.environ, "API_URL": stack_env["API_URL"], "ANON_KEY": stack_env["ANON_KEY"], "TOPIC": topic}
        proc = await asyncio.create_subprocess_exec(
            node, *NODE_FLAGS, str(REST_BROADCAST_SCRIPT), cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE
        )
        stdout, _ = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, stdout
        assert json.loads(stdout) == {"kind": "sent", "httpSend": {"success": True}, "send": "ok"}
        received = [await next_item(watch.broadcasts), await next_item(watch.broadcasts)]
    finally:
        await watch.close()
    assert received == [
        {"event": "via-http-send", "payload": {"n": 1}},
        {"event": "via-send", "payload": {"n": 2}},
    ]
