"""A run's end through the whole path: a stop left pending when a run ends does not stop the job's next run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_helpers import as_owner, liveparams
from hooks_helpers import plain_trainer, training_args
from runs_helpers import job_row, request_rows
from transformers import TrainerCallback

from liveparams import RuntimeParameterCallback

STEPS = 6


class AskAfterLastDrain(TrainerCallback):
    """The owner sends a stop at the last step end, after the liveparams callback drained: it meets the run's end."""

    def __init__(self, submit: Callable[[], dict[str, Any]], step: int) -> None:
        self.submit, self.step = submit, step
        self.sent: list[dict[str, Any]] = []

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.step:
            self.sent.append(self.submit())


def train_once(tiny_dir: str, output: Path, after: list[Any] = ()) -> Any:
    trainer = plain_trainer(tiny_dir, training_args(output, max_steps=STEPS), [])
    trainer.add_callback(RuntimeParameterCallback.from_env(trainer))
    for callback in after:
        trainer.add_callback(callback)
    trainer.train()
    return trainer


@pytest.mark.stack
@pytest.mark.slow
def test_a_stop_left_from_an_ended_run_does_not_stop_the_next_run(
    tiny_dir: str,
    tmp_path: Path,
    stack_env: dict[str, str],
    service_http: httpx.Client,
    new_user: Callable[[], tuple[str, str]],
    new_job: Callable[..., str],
    request_update: Callable[..., dict[str, Any]],
    job_token: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    owner_id, owner_jwt = new_user()
    job_id = new_job(owner_id)
    monkeypatch.setenv("JOB_ID", job_id)
    monkeypatch.setenv("SUPABASE_URL", stack_env["API_URL"])
    monkeypatch.setenv("SUPABASE_ANON_KEY", stack_env["ANON_KEY"])
    monkeypatch.setenv("LIVEPARAMS_TOKEN", job_token(job_id))

    late = AskAfterLastDrain(lambda: request_update(owner_jwt, job_id, {"command": "stop"}), STEPS)
    train_once(tiny_dir, tmp_path / "first", after=[late])
    (stop,) = late.sent
    row = request_rows(service_http, job_id)[stop["seq"]]
    assert (row["status"], row["reason"]) == ("cancelled", f"not applied: the run ended at step {STEPS}")

    # A stop sent after the run ended is refused, with the reason.
    owner = as_owner(stack_env, owner_jwt)
    refused = liveparams("set", job_id, "command=stop", env=owner)
    assert refused.returncode == 1
    assert f"the run of training job {job_id} ended at step {STEPS} (completed)" in refused.stderr
    assert "no trainer will apply this request" in refused.stderr

    second = train_once(tiny_dir, tmp_path / "second")
    assert second.state.global_step == STEPS  # trained to its end: nothing of the first run stopped it
    job = job_row(service_http, job_id)
    assert (job["trainer_detach_reason"], job["trainer_detach_step"]) == ("completed", STEPS)
