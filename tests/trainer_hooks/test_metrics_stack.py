"""Live metrics through the local stack: a real tiny training, the real agent, the official clients.

The owner subscribes to the job's private topic with the official ``supabase`` client (what a
panel does with supabase-js) and reads the history over REST; a second user gets neither.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hooks_helpers import plain_trainer, training_args
from realtime import RealtimeSubscribeStates

from liveparams import RuntimeParameterCallback
from liveparams._supabase import create_client
from liveparams.agent import AgentConfig, UpdateAgent

pytestmark = [pytest.mark.stack, pytest.mark.slow]

STEPS = 12
JOIN_TIMEOUT_S = 20.0


def trainer_env(monkeypatch: pytest.MonkeyPatch, stack_env: dict[str, str], job_id: str, token: str) -> None:
    monkeypatch.setenv("JOB_ID", job_id)
    monkeypatch.setenv("SUPABASE_URL", stack_env["API_URL"])
    monkeypatch.setenv("SUPABASE_ANON_KEY", stack_env["ANON_KEY"])
    monkeypatch.setenv("LIVEPARAMS_TOKEN", token)


def train(tiny_dir: str, out: Path, **timings: float) -> Any:
    """A tiny run logging every step, its agent from the environment (``timings``: AgentConfig overrides)."""
    config = AgentConfig.from_env()
    assert config is not None
    agent = UpdateAgent(dataclasses.replace(config, **timings))
    trainer = plain_trainer(tiny_dir, training_args(out, max_steps=STEPS, logging_steps=1), [])
    trainer.add_callback(RuntimeParameterCallback(agent, trainer=trainer))
    trainer.train()
    return trainer


async def history(stack_env: dict[str, str], jwt: str, job_id: str) -> list[dict[str, Any]]:
    """What a panel opened now reads (``from('training_metrics').select('step,metrics')...order('step')``)."""
    client = await create_client(stack_env["API_URL"], stack_env["ANON_KEY"], jwt)
    query = client.from_("training_metrics").select("step,metrics").eq("job_id", job_id).order("step")
    rows: list[dict[str, Any]] = (await query.execute()).data
    return rows


@pytest.mark.anyio
async def test_the_owner_sees_the_run_live_and_in_history_and_nobody_else_does(
    tiny_dir: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stack_env: dict[str, str],
    new_user: Callable[[], tuple[str, str]],
    new_job: Callable[..., str],
    job_token: Callable[[str], str],
) -> None:
    owner_id, owner_jwt = new_user()
    _, stranger_jwt = new_user()
    job_id = new_job(owner_id)
    trainer_env(monkeypatch, stack_env, job_id, job_token(job_id))
    topic = f"job-metrics:{job_id}"

    received: list[dict[str, Any]] = []
    joins: dict[str, asyncio.Queue[RealtimeSubscribeStates]] = {}
    clients = []
    for who, jwt in (("owner", owner_jwt), ("stranger", stranger_jwt)):
        client = await create_client(stack_env["API_URL"], stack_env["ANON_KEY"], jwt)
        clients.append(client)
        channel = client.channel(topic, {"config": {"private": True}})
        if who == "owner":
            channel.on_broadcast("metrics", lambda message: received.append(message["payload"]))
        else:
            channel.on_broadcast("metrics", lambda message: pytest.fail(f"the stranger received {message}"))
        joins[who] = asyncio.Queue()
        await channel.subscribe(lambda state, _error, queue=joins[who]: queue.put_nowait(state))
    try:
        assert await asyncio.wait_for(joins["owner"].get(), JOIN_TIMEOUT_S) == RealtimeSubscribeStates.SUBSCRIBED
        assert await asyncio.wait_for(joins["stranger"].get(), JOIN_TIMEOUT_S) == RealtimeSubscribeStates.CHANNEL_ERROR
        trainer = await asyncio.to_thread(train, tiny_dir, tmp_path / "out")
        await asyncio.sleep(1.0)  # the last message is sent at close(); let it cross the socket
    finally:
        for client in clients:
            await client.realtime.close()

    logged = {e["step"]: e for e in trainer.state.log_history if "loss" in e}
    assert sorted(logged) == list(range(1, STEPS + 1))
    live = {point["step"]: point["metrics"] for message in received for point in message["points"]}
    assert sorted(live) == list(range(1, STEPS + 1))  # every logged step reached the open panel
    for step, metrics in live.items():
        assert metrics["loss"] == pytest.approx(logged[step]["loss"])
        assert metrics["learning_rate"] == pytest.approx(logged[step]["learning_rate"])
    stored = await history(stack_env, owner_jwt, job_id)
    assert [row["step"] for row in stored] == list(range(1, STEPS + 1))
    assert all({"loss", "learning_rate", "grad_norm", "epoch"} <= set(row["metrics"]) for row in stored[:-1])
    assert await history(stack_env, stranger_jwt, job_id) == []


@pytest.mark.faults
def test_when_the_history_cannot_be_written_points_are_dropped_with_one_warning_and_training_goes_on(
    tiny_dir: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stack_env: dict[str, str],
    new_user: Callable[[], tuple[str, str]],
    new_job: Callable[..., str],
    job_token: Callable[[str], str],
    faults: Callable[..., dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    owner_id, owner_jwt = new_user()
    job_id = new_job(owner_id)
    trainer_env(monkeypatch, stack_env, job_id, job_token(job_id))
    faults("rest_errors", count=100_000, status=503)  # every REST call fails until the end of the test
    with caplog.at_level(logging.WARNING, logger="liveparams.agent"):  # a write tried every 0.1 s: many fail
        trainer = train(tiny_dir, tmp_path / "out", metrics_live_interval=0.05, metrics_history_interval=0.1)
    faults("reset")

    assert trainer.state.global_step == STEPS
    warnings = [r.getMessage() for r in caplog.records if r.name == "liveparams.agent._metrics"]
    assert len(warnings) == 1 and warnings[0].startswith("Could not send metrics history"), warnings
    assert asyncio.run(history(stack_env, owner_jwt, job_id)) == []


def test_metrics_can_be_turned_off(
    monkeypatch: pytest.MonkeyPatch, stack_env: dict[str, str], job_token: Callable[[str], str]
) -> None:
    job_id = "00000000-0000-0000-0000-000000000001"
    trainer_env(monkeypatch, stack_env, job_id, job_token(job_id))
    monkeypatch.setenv("LIVEPARAMS_METRICS", "off")
    agent = UpdateAgent.from_env()
    assert agent is not None and not agent.config.metrics
    agent.publish_metrics(1, {"loss": 1.0})  # nothing queued, nothing sent, nothing raised
