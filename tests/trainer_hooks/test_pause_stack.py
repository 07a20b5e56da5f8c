"""A paused run that no ``resume`` can reach any more goes on, through the stack and the real agent.

The owner pauses a run (``command=pause`` through the RPC); then its trainer credential is
revoked, the owner deletes the job, or the fixed job token the trainer was given expires.
Nobody can resume or stop that run remotely any more, so holding would keep the process (and
its GPU) for ever: the hold ends with a warning line, and training takes every step it had left.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hooks_helpers import LrRecorder, plain_trainer, training_args

from liveparams import RuntimeParameterCallback
from liveparams.agent import AgentConfig, UpdateAgent
from liveparams.credentials import CredentialAdmin
from liveparams.tokens import mint_jwt

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.timeout(180)]  # without the fix: held for ever

STEPS = 8
WAIT_S = 60.0
FAST = {"poll_interval": 0.2, "resync_interval": 1.0, "probe_interval": 1.0, "backoff_initial": 0.1, "backoff_max": 0.5}
GOING_ON = "with no update source left to resume it: going on"
TOKEN_TTL_S = 12  # long enough to read the pause and record it on a loaded machine


def service(env: dict[str, str]) -> httpx.Client:
    key = env["SERVICE_ROLE_KEY"]
    return httpx.Client(base_url=env["API_URL"], headers={"apikey": key, "Authorization": f"Bearer {key}"}, timeout=10)


def paused_row(http: httpx.Client, job_id: str) -> dict[str, Any]:
    """The job row once it says the trainer is paused (the agent's heartbeat wrote it)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        rows = http.get("/rest/v1/local_training_jobs", params={"id": f"eq.{job_id}"}).json()
        if rows and rows[0]["trainer_paused_at"]:
            return dict(rows[0])
        time.sleep(0.1)
    raise AssertionError(f"the job row never said paused within {WAIT_S:g} s")


def train_paused_then(tiny_dir: str, out: Path, agent: UpdateAgent, cut_off: Callable[[], None]) -> LrRecorder:
    """Train ``STEPS`` steps; once the row says paused, ``cut_off()`` runs on another thread."""
    failures: list[BaseException] = []

    def when_paused() -> None:
        try:
            cut_off()
        except BaseException as exc:
            failures.append(exc)

    recorder = LrRecorder()
    trainer = plain_trainer(tiny_dir, training_args(out, max_steps=STEPS), [recorder])
    trainer.add_callback(RuntimeParameterCallback(agent, trainer=trainer))
    cutter = threading.Thread(target=when_paused, daemon=True)
    cutter.start()
    trainer.train()
    cutter.join(WAIT_S)
    assert not failures, failures
    assert trainer.state.global_step == STEPS
    return recorder


def outcome(http: httpx.Client, request_id: str) -> dict[str, Any]:
    (row,) = http.get("/rest/v1/parameter_update_requests", params={"id": f"eq.{request_id}"}).json()
    return dict(row)


@pytest.fixture
def short_http(short_env: dict[str, str]) -> Iterator[httpx.Client]:
    with service(short_env) as http:
        yield http


def test_revoking_the_trainer_credential_while_paused_ends_the_hold(
    short_env: dict[str, str],
    short_http: httpx.Client,
    tiny_dir: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Access tokens live a few seconds here: the agent learns of the revocation at its next refresh or read."""
    job = short_http.post(
        "/rest/v1/local_training_jobs", json={"status": "running"}, headers={"Prefer": "return=representation"}
    )
    job_id = str(job.json()[0]["id"])
    admin = CredentialAdmin(short_env["API_URL"], short_env["SERVICE_ROLE_KEY"])
    credential = admin.issue(job_id)
    pause = short_http.post(
        "/rest/v1/rpc/request_parameter_update", json={"p_job_id": job_id, "p_params": {"command": "pause"}}
    )
    pause.raise_for_status()
    config = AgentConfig(
        job_id=job_id,
        url=short_env["API_URL"],
        api_key=short_env["ANON_KEY"],
        credential=credential.secret,
        **FAST,  # type: ignore[arg-type]
    )
    agent = UpdateAgent(config)
    at: list[int] = []

    def revoke() -> None:
        at.append(paused_row(short_http, job_id)["trainer_pause_step"])
        assert admin.revoke(job_id) == [credential.credential_id]

    with caplog.at_level(logging.INFO, logger="liveparams"):
        recorder = train_paused_then(tiny_dir, tmp_path / "out", agent, revoke)

    paused = outcome(short_http, pause.json()["id"])
    assert (paused["status"], paused["step"]) == ("applied", at[0])
    assert max(recorder.used) == STEPS  # every step after the hold was taken
    said = [r.getMessage() for r in caplog.records]
    went_on = said.index(f"Paused at step {at[0]} {GOING_ON}")
    # Whichever the agent learns first: its session refresh is refused, or its read no longer sees the job.
    seen = ("trainer credential was revoked", f"Job {job_id} not found, or not readable with this key")
    assert any(what in line for line in said[:went_on] for what in seen), said


def test_deleting_the_job_while_paused_ends_the_hold(
    stack_env: dict[str, str],
    new_user: Callable[[], tuple[str, str]],
    new_job: Callable[..., str],
    job_token: Callable[[str], str],
    request_update: Callable[..., dict[str, Any]],
    service_http: httpx.Client,
    tiny_dir: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The owner deletes the row (RLS lets them); the agent's next read finds no job."""
    user_id, jwt = new_user()
    job_id = new_job(user_id)
    request_update(jwt, job_id, {"command": "pause"})
    config = AgentConfig(
        job_id=job_id,
        url=stack_env["API_URL"],
        api_key=stack_env["ANON_KEY"],
        key=job_token(job_id),
        **FAST,  # type: ignore[arg-type]
    )
    agent = UpdateAgent(config)
    at: list[int] = []
    owner = {"apikey": stack_env["ANON_KEY"], "Authorization": f"Bearer {jwt}"}

    def delete() -> None:
        at.append(paused_row(service_http, job_id)["trainer_pause_step"])
        with httpx.Client(base_url=stack_env["API_URL"], headers=owner, timeout=10) as http:
            gone = http.delete(
                "/rest/v1/local_training_jobs",
                params={"id": f"eq.{job_id}"},
                headers={"Prefer": "return=representation"},
            )
        assert [row["id"] for row in gone.json()] == [job_id]

    with caplog.at_level(logging.INFO, logger="liveparams"):
        recorder = train_paused_then(tiny_dir, tmp_path / "out", agent, delete)

    assert max(recorder.used) == STEPS
    said = [r.getMessage() for r in caplog.records]
    assert f"Job {job_id} not found, or not readable with this key" in said
    assert f"Paused at step {at[0]} {GOING_ON}" in said


def test_a_fixed_job_token_expiring_while_paused_ends_the_hold(
    stack_env: dict[str, str],
    new_user: Callable[[], tuple[str, str]],
    new_job: Callable[..., str],
    request_update: Callable[..., dict[str, Any]],
    service_http: httpx.Client,
    tiny_dir: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A job token cannot be refreshed: once it expired nothing can be read with it, a `resume` neither."""
    user_id, jwt = new_user()
    job_id = new_job(user_id)
    pause = request_update(jwt, job_id, {"command": "pause"})
    claims = {"role": "authenticated", "job_id": job_id, "iss": "liveparams"}
    key = mint_jwt(claims, stack_env["JWT_SECRET"], expires_in=TOKEN_TTL_S)
    config = AgentConfig(
        job_id=job_id,
        url=stack_env["API_URL"],
        api_key=stack_env["ANON_KEY"],
        key=key,
        **FAST,  # type: ignore[arg-type]
    )
    agent = UpdateAgent(config)
    at: list[int] = []

    with caplog.at_level(logging.INFO, logger="liveparams"):
        recorder = train_paused_then(
            tiny_dir, tmp_path / "out", agent, lambda: at.append(paused_row(service_http, job_id)["trainer_pause_step"])
        )

    assert outcome(service_http, pause["id"])["step"] == at[0]  # recorded while the token was good
    assert max(recorder.used) == STEPS
    assert f"Paused at step {at[0]} {GOING_ON}" in [r.getMessage() for r in caplog.records]
