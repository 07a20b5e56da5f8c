"""Through the whole path: RPC on the local stack → agent (Realtime) → callback → Trainer → outcome on the row."""

from __future__ import annotations

import functools
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hooks_helpers import LrRecorder, logged_lr, plain_trainer, schedule_factors, training_args
from transformers import TrainerCallback

from liveparams import RuntimeParameterCallback
from liveparams.agent import UpdateAgent
from liveparams.contract import DRAIN_MAX_ITEMS, UpdateOutcome, UpdateRequest

STEPS, WARMUP, PEAK = 20, 5, 1e-3
ARRIVAL_DEADLINE_S = 20.0  # generous: a loaded 2-core CI machine; an idle one takes milliseconds


class Arrivals:
    """The real agent as the callback's source, which the test can wait on without taking requests from the callback.

    :meth:`wait_for` pulls from the agent's queue into a buffer that the callback's next drain
    returns first; ``handed`` lists the ids the callback has drained, in order.
    """

    def __init__(self, agent: UpdateAgent) -> None:
        self.agent = agent
        self.buffer: list[UpdateRequest] = []
        self.handed: list[str] = []

    def start(self, replay_after_step: int | None = None) -> None:
        self.agent.start(replay_after_step)

    @property
    def job_id(self) -> str:
        return self.agent.job_id

    def wait_initial_read(self, timeout: float | None = None) -> bool:
        return self.agent.wait_initial_read(timeout)

    def record_end(self, reason: str, step: int | None = None) -> None:
        self.agent.record_end(reason, step)

    def close(self, timeout: float | None = None) -> None:
        self.agent.close(timeout)

    def drain(self, max_items: int = DRAIN_MAX_ITEMS) -> list[UpdateRequest]:
        self.buffer += self.agent.drain(max_items)
        taken, self.buffer = self.buffer[:max_items], self.buffer[max_items:]
        self.handed += [r.id for r in taken]
        return taken

    def report(self, outcomes: Iterable[UpdateOutcome]) -> None:
        self.agent.report(outcomes)

    def wait_for(self, request_id: str) -> None:
        deadline = time.monotonic() + ARRIVAL_DEADLINE_S
        while request_id not in self.handed and all(r.id != request_id for r in self.buffer):
            if time.monotonic() > deadline:
                raise AssertionError(f"request {request_id} did not reach the agent within {ARRIVAL_DEADLINE_S} s")
            time.sleep(0.01)
            self.buffer += self.agent.drain()


class RequestMidRun(TrainerCallback):
    """Makes a request through the RPC at one step; at each step boundary, waits until pending requests arrived.

    Added after the callback under test, so it runs after the callback's drain at the same boundary and
    records at which step the callback took each request (``handed_at``) and at which one the request was
    first seen in the source (``arrived_at``). Nothing depends on how long delivery takes.
    """

    def __init__(self, source: Arrivals, submit: Callable[[], dict[str, Any]], at_step: int, pending: list[str]):
        self.source, self.submit, self.at_step, self.pending = source, submit, at_step, pending
        self.handed_at: dict[str, int] = {}
        self.arrived_at: dict[str, int] = {}

    def _boundary(self, step: int) -> None:
        for request_id in self.source.handed[len(self.handed_at) :]:
            self.handed_at[request_id] = step
        if step == self.at_step:
            self.pending.append(self.submit()["id"])
        for request_id in self.pending:
            self.source.wait_for(request_id)
            self.arrived_at[request_id] = step
        self.pending = []

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._boundary(state.global_step)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._boundary(state.global_step)


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
    agent = UpdateAgent.from_env()
    assert agent is not None
    source, recorder = Arrivals(agent), LrRecorder()
    trainer = plain_trainer(tiny_dir, training_args(tmp_path / "out", max_steps=STEPS), [recorder])
    trainer.add_callback(RuntimeParameterCallback(source, trainer=trainer))
    submit = functools.partial(request_update, jwt, job_id, {"learning_rate": 5e-4})
    pacer = RequestMidRun(source, submit, at_step=8, pending=[early["id"]])
    trainer.add_callback(pacer)
    trainer.train()

    job = service_http.get(
        "/rest/v1/local_training_jobs",
        params={"id": f"eq.{job_id}", "select": "trainer_detach_reason,trainer_detach_step,status"},
    ).json()[0]
    assert job == {"trainer_detach_reason": "completed", "trainer_detach_step": STEPS, "status": "running"}
    decided = service_http.get(
        "/rest/v1/parameter_update_requests", params={"job_id": f"eq.{job_id}", "status": "not.is.null"}
    ).json()
    row = {request["id"]: request for request in decided}
    (later_id,) = set(row) - {early["id"]}
    first, second = row[early["id"]], row[later_id]
    assert (first["status"], second["status"]) == ("applied", "applied")
    assert first["changes"]["learning_rate"] == {"old": 1e-3, "new": 2e-3}
    assert second["changes"]["learning_rate"] == {"old": 2e-3, "new": 5e-4}
    # Each is applied at the step boundary where the callback drained it, at the latest the first after it arrived.
    for request_id, outcome in ((early["id"], first), (later_id, second)):
        assert outcome["step"] == pacer.handed_at[request_id] <= pacer.arrived_at[request_id] + 1
    assert second["step"] > 8  # made after the callback's drain at step 8

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
