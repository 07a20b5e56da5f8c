"""The job row shows the step training is at (``trainer_step``): a real tiny Trainer, the real agent, and the
row read by its owner with the official ``supabase`` client, as the panel's jobs list has it."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hooks_helpers import plain_trainer, training_args
from supabase import ClientOptions, create_client
from transformers import TrainerCallback

from liveparams import RuntimeParameterCallback
from liveparams.agent import AgentConfig, UpdateAgent

pytestmark = [pytest.mark.stack, pytest.mark.slow]

STEPS = 12
HELD_AT = (3, 8)  # the steps at which training waits for the row to show them
HEARTBEAT_S = 0.2  # so that the test waits a fraction of a second per step held, not 25 s
WAIT_S = 20.0  # generous: a loaded 2-core machine; a beat lands within HEARTBEAT_S plus one REST call


class WaitForTheRow(TrainerCallback):
    """At each step of ``HELD_AT``, holds training until ``read_step()`` shows that step, and notes what it saw."""

    def __init__(self, read_step: Callable[[], Any]) -> None:
        self.read_step = read_step
        self.seen: dict[int, Any] = {}

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        step = int(state.global_step)
        if step not in HELD_AT:
            return
        deadline = time.monotonic() + WAIT_S
        while (shown := self.read_step()) != step and time.monotonic() < deadline:
            time.sleep(0.05)
        self.seen[step] = shown


def test_a_running_trainers_job_row_shows_the_step_it_is_at(
    tiny_dir: str,
    tmp_path: Path,
    stack_env: dict[str, str],
    new_user: Callable[[], tuple[str, str]],
    new_job: Callable[..., str],
    job_token: Callable[[str], str],
) -> None:
    owner_id, owner_jwt = new_user()
    job_id = new_job(owner_id)
    owner = create_client(
        stack_env["API_URL"], stack_env["ANON_KEY"], ClientOptions(headers={"Authorization": f"Bearer {owner_jwt}"})
    )

    def read_row() -> dict[str, Any]:
        rows = owner.from_("local_training_jobs").select("*").eq("id", job_id).execute().data
        assert len(rows) == 1, rows
        row: dict[str, Any] = rows[0]
        return row

    config = AgentConfig(
        job_id=job_id,
        url=stack_env["API_URL"],
        key=job_token(job_id),
        api_key=stack_env["ANON_KEY"],
        heartbeat_interval=HEARTBEAT_S,
    )
    held = WaitForTheRow(lambda: read_row()["trainer_step"])
    trainer = plain_trainer(tiny_dir, training_args(tmp_path / "out", max_steps=STEPS), [])
    trainer.add_callback(RuntimeParameterCallback(UpdateAgent(config), trainer=trainer))
    trainer.add_callback(held)  # after liveparams' callback: the step is noted before the row is waited on
    trainer.train()

    assert held.seen == {step: step for step in HELD_AT}  # the row followed training, each within WAIT_S
    ended = read_row()
    assert (ended["trainer_step"], ended["trainer_detach_reason"], ended["trainer_detach_step"]) == (
        STEPS,
        "completed",
        STEPS,
    )
