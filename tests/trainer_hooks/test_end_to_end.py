"""Through the whole path: RPC on the local stack → agent (Realtime) → callback → Trainer → outcome on the row."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hooks_helpers import LrRecorder, logged_lr, plain_trainer, schedule_factors, training_args
from transformers import TrainerCallback

from trainer_hooks import RuntimeParameterCallback

STEPS, WARMUP, PEAK = 60, 5, 1e-3


class RequestMidRun(TrainerCallback):
    """Makes a request through the RPC at one step; while requests are undecided, gives each step some slack.

    Added after the callback under test, so it sees what the callback decided at the same step. The slack
    (at most ``slack_s`` per step) only gives Realtime time to deliver; nothing is asserted about time.
    """

    def __init__(
        self,
        callback: RuntimeParameterCallback,
        submit: Callable[[], dict[str, Any]],
        at_step: int,
        slack_s: float = 0.25,
    ) -> None:
        self.callback, self.submit, self.at_step, self.slack_s = callback, submit, at_step, slack_s
        self.pending: list[str] = []

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.at_step:
            self.pending.append(self.submit()["id"])
        self.pending = [i for i in self.pending if i not in self.callback.handled_ids]
        if self.pending:
            time.sleep(self.slack_s)


@pytest.mark.stack
@pytest.mark.slow
def test_requests_through_the_rpc_are_applied_and_recorded_on_the_row(
    tiny_dir: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stack_env: dict[str, str],
    service_http: httpx.Client,
    new_user: Callable[[], tuple[str, str]],
    new_job: Callable[..., str],
    job_token: Callable[[str], str],
    request_update: Callable[..., dict[str, Any]],
) -> None:
    user_id, jwt = new_user()
    job_id = new_job(user_id)
    monkeypatch.setenv("JOB_ID", job_id)
    monkeypatch.setenv("SUPABASE_URL", stack_env["API_URL"])
    monkeypatch.setenv("SUPABASE_ANON_KEY", stack_env["ANON_KEY"])
    monkeypatch.setenv("LIVEPARAMS_TOKEN", job_token(job_id))

    early = request_update(jwt, job_id, {"learning_rate": 2e-3})  # before training starts
    recorder = LrRecorder()
    trainer = plain_trainer(tiny_dir, training_args(tmp_path / "out", max_steps=STEPS), [recorder])
    callback = RuntimeParameterCallback.from_env(trainer)
    trainer.add_callback(callback)
    pacer = RequestMidRun(callback, lambda: request_update(jwt, job_id, {"learning_rate": 5e-4}), at_step=8)
    pacer.pending.append(early["id"])
    trainer.add_callback(pacer)
    trainer.train()

    row = service_http.get(
        "/rest/v1/local_training_jobs", params={"id": f"eq.{job_id}", "select": "parameter_update_outcomes"}
    ).json()[0]["parameter_update_outcomes"]
    (later_id,) = set(row) - {early["id"]}
    first, second = row[early["id"]], row[later_id]
    assert (first["status"], second["status"]) == ("applied", "applied")
    assert first["changes"]["learning_rate"] == {"old": 1e-3, "new": 2e-3}
    assert second["changes"]["learning_rate"] == {"old": 2e-3, "new": 5e-4}
    assert 0 <= first["step"] < 8 <= second["step"] < STEPS

    factors = schedule_factors("linear", WARMUP, STEPS)
    peak, expected = PEAK, {}
    changes = {first["step"]: 2e-3, second["step"]: 5e-4}
    peak = changes.get(0, peak)
    for step in range(1, STEPS + 1):
        expected[step] = peak * factors[step - 1]
        peak = changes.get(step, peak)
    assert recorder.first_group() == pytest.approx(expected)
    assert logged_lr(trainer) == pytest.approx(expected)


@pytest.mark.slow
def test_an_unreachable_database_never_disturbs_training(
    tiny_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("JOB_ID", str(uuid.uuid4()))
    monkeypatch.setenv("SUPABASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", "unused-key")
    monkeypatch.delenv("LIVEPARAMS_TOKEN", raising=False)
    recorder = LrRecorder()
    trainer = plain_trainer(tiny_dir, training_args(tmp_path / "out", max_steps=20), [recorder])
    trainer.add_callback(RuntimeParameterCallback.from_env(trainer))
    trainer.train()

    factors = schedule_factors("linear", WARMUP, 20)
    assert recorder.first_group() == pytest.approx({s: PEAK * factors[s - 1] for s in range(1, 21)})
    assert trainer.state.global_step == 20
