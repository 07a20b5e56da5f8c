"""Requests belong to a run, as a person meets it at the terminal (issue 19).

A stop left from an ended run does not stop the next run; the owner cancels a request and
ends a run, and nobody else can; `set` says why it is refused or that it waits; `watch` into a
pipe prints; a killed trainer is shown gone at once; Ctrl-C says at which step.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_helpers import as_owner, clean_environ, liveparams, read_lines_until
from runs_helpers import WAIT_S, job_row, request_rows, trainer_state, until
from supabase import create_client

from liveparams._views import HEARTBEAT_STALE_S, PRESENCE_GRACE_S
from liveparams.agent import AgentConfig
from liveparams.contract import PARAMETERS

HERE = Path(__file__).resolve().parent


@pytest.fixture
def trainer_env(monkeypatch: pytest.MonkeyPatch, stack_env: dict[str, str], job_token: Callable[[str], str]) -> Any:
    def configure(job_id: str) -> None:
        monkeypatch.setenv("JOB_ID", job_id)
        monkeypatch.setenv("SUPABASE_URL", stack_env["API_URL"])
        monkeypatch.setenv("SUPABASE_ANON_KEY", stack_env["ANON_KEY"])
        monkeypatch.setenv("LIVEPARAMS_TOKEN", job_token(job_id))

    return configure


@pytest.mark.stack
def test_the_owner_cancels_a_request_and_ends_the_run_and_nobody_else_can(
    stack_env: dict[str, str],
    service_http: httpx.Client,
    new_user: Callable[[], tuple[str, str]],
    new_job: Callable[..., str],
) -> None:
    owner_id, owner_jwt = new_user()
    _, stranger_jwt = new_user()
    job_id = new_job(owner_id)
    owner, stranger = as_owner(stack_env, owner_jwt), as_owner(stack_env, stranger_jwt)
    not_found = f"liveparams: error: training job {job_id} not found\n"

    first = liveparams("set", job_id, "learning_rate=1e-4", env=owner)
    assert first.returncode == 0 and first.stdout.startswith("requested #1 ")
    assert "no trainer has attached yet; the request waits for the next attach" in first.stderr

    assert liveparams("request", "cancel", job_id, "1", env=stranger).stderr == not_found
    cancelled = liveparams("request", "cancel", job_id, "1", env=owner)
    assert cancelled.returncode == 0 and cancelled.stdout.startswith("cancelled #1 ")
    again = liveparams("request", "cancel", job_id, "#1", env=owner)
    assert again.returncode == 1 and "is already cancelled; only a pending request can be cancelled" in again.stderr
    assert request_rows(service_http, job_id)[1]["reason"] == "cancelled by its owner"

    assert liveparams("set", job_id, "weight_decay=0.1", env=owner).returncode == 0
    trainer_state(service_http, job_id, "attached")
    busy = liveparams("job", "end", job_id, env=owner)
    assert busy.returncode == 1 and "a trainer is attached" in busy.stderr and "command=stop" in busy.stderr

    trainer_state(service_http, job_id, "crashed", 5)  # killed for good: nobody will resume it
    assert liveparams("job", "end", job_id, env=stranger).stderr == not_found
    assert request_rows(service_http, job_id)[2]["status"] is None  # the stranger changed nothing
    ended = liveparams("job", "end", job_id, env=owner)
    assert ended.returncode == 0, ended.stderr
    assert ended.stdout.startswith(f"the run of job {job_id} ended at step 5; 1 pending request not applied.")
    row = request_rows(service_http, job_id)[2]
    assert (row["status"], row["reason"]) == ("cancelled", "not applied: the run ended at step 5")

    refused = liveparams("set", job_id, "weight_decay=0.2", env=owner)
    assert refused.returncode == 1 and "ended at step 5 (ended by its owner)" in refused.stderr
    shown = liveparams("job", "show", job_id, env=owner)
    assert "the run ended, so requests are refused until a trainer attaches" in " ".join(shown.stdout.split())

    trainer_state(service_http, job_id, "attached")  # the job's next run
    assert liveparams("set", job_id, "weight_decay=0.2", env=owner).stdout.startswith("requested #3 ")


@pytest.mark.stack
def test_watch_into_a_pipe_prints_the_table_and_a_line_per_change(
    stack_env: dict[str, str],
    service_http: httpx.Client,
    new_user: Callable[[], tuple[str, str]],
    new_job: Callable[..., str],
    request_update: Callable[..., dict[str, Any]],
) -> None:
    owner_id, owner_jwt = new_user()
    job_id = new_job(owner_id)
    before = request_update(owner_jwt, job_id, {"learning_rate": 1e-4})
    env = {**clean_environ(), **as_owner(stack_env, owner_jwt)}
    argv = [sys.executable, "-m", "liveparams.cli", "watch", job_id]  # as `liveparams watch JOB | cat`
    watcher = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert watcher.stdout is not None
        lines = read_lines_until(watcher.stdout, "live", timeout=WAIT_S)
        text = "".join(lines)
        assert f"job {job_id}" in text and before["id"][:8] in text and "pending" in text, text
        later = request_update(owner_jwt, job_id, {"weight_decay": 0.1})
        lines = read_lines_until(watcher.stdout, f"#2 {later['id'][:8]}", timeout=WAIT_S)
        assert lines[-1].rstrip() == f"#2 {later['id'][:8]} weight_decay=0.1: pending", lines
        outcome = {"status": "applied", "step": 3, "changes": {"weight_decay": {"old": 0.0, "new": 0.1}}}
        args = {"p_job_id": job_id, "p_outcomes": {later["id"]: outcome}}
        service_http.post("/rest/v1/rpc/record_parameter_update_outcomes", json=args).raise_for_status()
        lines = read_lines_until(watcher.stdout, "applied at step 3", timeout=WAIT_S)
        assert lines[-1].rstrip() == f"#2 {later['id'][:8]} weight_decay=0.1: applied at step 3: weight_decay: 0 → 0.1"
    finally:
        watcher.terminate()
        watcher.communicate(timeout=10)


def test_version_help_and_did_you_mean() -> None:
    version = liveparams("--version")
    assert version.returncode == 0 and re.fullmatch(r"liveparams \d+\.\d+\.\d+\S*\n", version.stdout)

    helped = liveparams("set", "--help")
    for spec in PARAMETERS.values():
        assert spec.name in helped.stdout
    restart_only = any(spec.restart_only for spec in PARAMETERS.values())  # none today: the line is left out
    assert ("need a restart (refused live)" in helped.stdout) == restart_only

    job_id = "3f0c5a4e-9b1d-4c2e-8f00-5a6b7c8d9e0f"
    env = {"SUPABASE_URL": "http://127.0.0.1:9", "SUPABASE_SERVICE_ROLE_KEY": "never-used"}
    typo = liveparams("set", job_id, "learnig_rate=1e-4", env=env)
    assert typo.returncode == 1
    assert typo.stderr == (
        'liveparams: error: unknown parameter "learnig_rate"; did you mean learning_rate? '
        "(`liveparams set --help` lists them)\n"
    )
    nothing_close = liveparams("set", job_id, "colour=blue", env=env)
    unknown = 'unknown parameter "colour" (`liveparams set --help` lists them)'
    assert nothing_close.stderr == f"liveparams: error: {unknown}\n"


def test_the_heartbeat_bound_is_the_databases(stack_env: dict[str, str]) -> None:
    """`job end` and the panel (the database's bound, read as the panel reads it) and the CLI (in Python) agree
    on when a silent trainer is gone, and a vanished machine reads as gone within a minute (issue 19) although
    a beat may land late."""
    anon = create_client(stack_env["API_URL"], stack_env["ANON_KEY"])  # the official client, as the panel's
    assert anon.rpc("liveparams_trainer_stale_seconds").execute().data == HEARTBEAT_STALE_S == 55
    assert 2 * AgentConfig.heartbeat_interval < HEARTBEAT_STALE_S < 60


@dataclass
class Training:
    """A user's training script running in its own process on a job, with its output in ``log``."""

    job_id: str
    owner_jwt: str
    process: subprocess.Popen[bytes]
    log: Path

    def steps(self) -> int:
        found = re.findall(r"^step (\d+)$", self.log.read_text(errors="replace"), flags=re.M)
        return int(found[-1]) if found else 0


@pytest.fixture
def training(
    tmp_path: Path,
    stack_env: dict[str, str],
    new_user: Callable[[], tuple[str, str]],
    new_job: Callable[..., str],
    job_token: Callable[[str], str],
) -> Iterator[Training]:
    """``tests/runs_trainer.py`` training on a new job of a new owner, once it has made a step."""
    owner_id, owner_jwt = new_user()
    job_id = new_job(owner_id)
    env = {
        **clean_environ(),
        "JOB_ID": job_id,
        "SUPABASE_URL": stack_env["API_URL"],
        "SUPABASE_ANON_KEY": stack_env["ANON_KEY"],
        "LIVEPARAMS_TOKEN": job_token(job_id),
        "HF_HUB_OFFLINE": "1",
    }
    log = tmp_path / "train.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, str(HERE / "runs_trainer.py")], env=env, stdout=out, stderr=out)
    running = Training(job_id, owner_jwt, process, log)
    try:
        until(lambda: running.steps() > 0, "the trainer training")
        yield running
    finally:
        process.kill()
        process.wait(10)


@pytest.mark.stack
@pytest.mark.slow
def test_a_killed_trainer_is_shown_gone_before_its_heartbeat_goes_stale_and_set_warns(
    training: Training, stack_env: dict[str, str], service_http: httpx.Client
) -> None:
    job_id, owner = training.job_id, as_owner(stack_env, training.owner_jwt)
    until(lambda: "trainer: a trainer is attached" in liveparams("job", "show", job_id, env=owner).stdout, "attached")
    time.sleep(PRESENCE_GRACE_S)  # past the moment Presence may lag the row at attach
    attached = liveparams("set", job_id, "weight_decay=0.01", env=owner)
    assert (attached.returncode, attached.stderr) == (0, ""), attached.stderr  # on the job's channel: no warning
    training.process.kill()  # kill -9: no detach, no goodbye
    training.process.wait(10)
    shown = liveparams("job", "show", job_id, env=owner)
    assert "trainer: the trainer left the job's channel (killed, or reconnecting)" in shown.stdout, shown.stdout
    asked = liveparams("set", job_id, "weight_decay=0.02", env=owner)  # what the next run would apply, unwarned
    assert asked.returncode == 0 and asked.stdout.startswith("requested #2 "), asked.stderr
    gone = "warning: the trainer left the job's channel (killed, or reconnecting); the request waits for the next"
    assert gone in asked.stderr, asked.stderr
    assert job_row(service_http, job_id)["trainer_detached_at"] is None  # the row alone would still say attached


@pytest.mark.stack
@pytest.mark.slow
def test_ctrl_c_says_at_which_step_and_keeps_the_requests_for_the_resumed_run(
    training: Training, service_http: httpx.Client, request_update: Callable[..., dict[str, Any]]
) -> None:
    job_id = training.job_id
    until(lambda: job_row(service_http, job_id)["trainer_attached_at"], "attached")
    training.process.send_signal(signal.SIGINT)  # Ctrl-C
    assert training.process.wait(WAIT_S) != 0
    (last,) = map(int, re.findall(r"^interrupted at step (\d+)$", training.log.read_text(), flags=re.M))
    assert last in (training.steps(), training.steps() + 1)  # Ctrl-C may land after the count, before "step N"
    job = job_row(service_http, job_id)
    assert (job["trainer_detach_reason"], job["trainer_detach_step"]) == ("interrupted", last)
    assert f"Training interrupted at step {last}; the job row says so" in training.log.read_text()
    waiting = request_update(training.owner_jwt, job_id, {"learning_rate": 1e-4})  # not an end: kept for the resume
    assert request_rows(service_http, job_id)[waiting["seq"]]["status"] is None
    assert job["run_ended_at"] is None


@pytest.mark.stack
def test_a_request_applied_again_after_a_resume_shows_the_step_it_is_in_force_from(
    service_http: httpx.Client,
    new_user: Callable[[], tuple[str, str]],
    new_job: Callable[..., str],
    request_update: Callable[..., dict[str, Any]],
    trainer_env: Callable[[str], None],
) -> None:
    from liveparams.agent import UpdateAgent
    from liveparams.contract import Change, OutcomeStatus, UpdateOutcome

    owner_id, owner_jwt = new_user()
    job_id = new_job(owner_id)
    trainer_env(job_id)
    stored = request_update(owner_jwt, job_id, {"learning_rate": 5e-4})
    change = {"learning_rate": Change(1e-3, 5e-4)}

    def run(replay_after_step: int | None, applied_at: int) -> None:
        agent = UpdateAgent.from_env()
        assert agent is not None
        agent.start(replay_after_step)
        (delivered,) = until(agent.drain, "the request delivered")
        agent.report([UpdateOutcome(delivered.id, OutcomeStatus.APPLIED, step=applied_at, changes=change)])
        agent.close()

    run(None, applied_at=12)
    assert request_rows(service_http, job_id)[stored["seq"]]["step"] == 12
    run(8, applied_at=9)  # resumed from the checkpoint of step 8: applied again before step 9
    assert request_rows(service_http, job_id)[stored["seq"]]["step"] == 9
