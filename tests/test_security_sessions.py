"""Trainer sessions on a stack whose Auth issues access tokens that live a few seconds.

A run outlives several access tokens: the agent refreshes before each expires, hands the new one
to Realtime (the channel stays up) and to REST, and a request made after the first token expired
is applied and recorded. Revoking takes effect at once; a restarted trainer resumes the session
from its session file. Against a real Supabase these run when its ``jwt_expiry`` is that short.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from liveparams.agent import AgentConfig, UpdateAgent
from liveparams.agent._credential import Credential
from liveparams.agent._rest import RestClient
from liveparams.contract import DRAIN_MAX_ITEMS, OutcomeStatus, UpdateOutcome, UpdateRequest
from liveparams.credentials import CredentialAdmin, TrainerCredential
from liveparams_stack import LocalStack
from liveparams_stack.local import free_port

pytestmark = [pytest.mark.stack]

REPO = Path(__file__).resolve().parents[1]
TOKEN_LIFETIME_S = 4  # [auth] jwt_expiry of the short-lived stack
REUSE_INTERVAL_S = 1  # [auth] refresh_token_reuse_interval there: a spent refresh token is refused after it
FAST = {"poll_interval": 0.2, "resync_interval": 2.0, "probe_interval": 1.0, "backoff_initial": 0.1, "backoff_max": 0.5}
WAIT_S = 20.0


@pytest.fixture(scope="module")
def short_env(local_stack: LocalStack | None, stack_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """A stack whose access tokens live TOKEN_LIFETIME_S: a second local stack whose supabase/config.toml
    says so (the stack reads Auth's settings there, as ``supabase start`` does), or the real stack under
    test when its own ``jwt_expiry`` is as short."""
    if local_stack is None:
        if _token_lifetime(stack_env) > 3 * TOKEN_LIFETIME_S:
            pytest.skip("needs a stack whose [auth] jwt_expiry is a few seconds")
        yield stack_env
        return
    root = tempfile.mkdtemp(prefix="liveparams-short-")
    os.chmod(root, 0o755)  # PostgreSQL may run as another OS user
    project = Path(root) / "project"
    shutil.copytree(REPO / "supabase" / "migrations", project / "supabase" / "migrations")
    config = (REPO / "supabase" / "config.toml").read_text()
    (project / "supabase" / "config.toml").write_text(
        config.replace("\njwt_expiry = 3600\n", f"\njwt_expiry = {TOKEN_LIFETIME_S}\n").replace(
            "\nrefresh_token_reuse_interval = 10\n", f"\nrefresh_token_reuse_interval = {REUSE_INTERVAL_S}\n"
        )
    )
    if (REPO / "node_modules").exists():
        (project / "node_modules").symlink_to(REPO / "node_modules")
    stack = LocalStack(Path(root) / "stack", free_port(), free_port(), project_dir=project, stop_with_caller=True)
    try:
        stack.start()
        yield stack.env()
    finally:
        stack.delete()
        shutil.rmtree(root, ignore_errors=True)


def _token_lifetime(env: dict[str, str]) -> float:
    with httpx.Client(base_url=env["API_URL"], headers=_service_headers(env)) as http:
        job = http.post("/rest/v1/local_training_jobs", json={"status": "running"}, headers=_RETURN).json()[0]["id"]
    credential = CredentialAdmin(env["API_URL"], env["SERVICE_ROLE_KEY"]).issue(job)
    return float(_refresh(env, credential.refresh_token)["expires_in"])


_RETURN = {"Prefer": "return=representation"}


def _service_headers(env: dict[str, str]) -> dict[str, str]:
    return {"apikey": env["SERVICE_ROLE_KEY"], "Authorization": f"Bearer {env['SERVICE_ROLE_KEY']}"}


def _refresh(env: dict[str, str], refresh_token: str) -> dict[str, Any]:
    response = httpx.post(
        f"{env['API_URL']}/auth/v1/token",
        params={"grant_type": "refresh_token"},
        json={"refresh_token": refresh_token},
        headers={"apikey": env["ANON_KEY"]},
    )
    body: dict[str, Any] = response.json()
    return body


class World:
    """An owner, a running job, and a trainer session for it, on the short-lived stack."""

    def __init__(self, env: dict[str, str], tmp_path: Path) -> None:
        self.env = env
        self.http = httpx.Client(base_url=env["API_URL"], headers=_service_headers(env), timeout=10)
        self.admin = CredentialAdmin(env["API_URL"], env["SERVICE_ROLE_KEY"])
        job = self.http.post("/rest/v1/local_training_jobs", json={"status": "running"}, headers=_RETURN)
        self.job_id: str = job.json()[0]["id"]
        self.credential: TrainerCredential = self.admin.issue(self.job_id)
        self.session_file = tmp_path / "session.json"

    def config(self, refresh_token: str | None = None) -> AgentConfig:
        return AgentConfig(
            job_id=self.job_id,
            url=self.env["API_URL"],
            api_key=self.env["ANON_KEY"],
            refresh_token=refresh_token or self.credential.refresh_token,
            session_file=str(self.session_file),
            **FAST,  # type: ignore[arg-type]
        )

    def request(self, params: dict[str, Any]) -> str:
        """A request through the RPC, as service_role (the job has no owner here)."""
        response = self.http.post(
            "/rest/v1/rpc/request_parameter_update", json={"p_job_id": self.job_id, "p_params": params}
        )
        response.raise_for_status()
        return str(response.json()["id"])

    def outcome(self, request_id: str) -> dict[str, Any] | None:
        rows = self.http.get(
            "/rest/v1/parameter_update_requests",
            params={"job_id": f"eq.{self.job_id}", "id": f"eq.{request_id}", "status": "not.is.null"},
        ).json()
        return rows[0] if rows else None


@pytest.fixture
def world(short_env: dict[str, str], tmp_path: Path) -> Iterator[World]:
    built = World(short_env, tmp_path)
    yield built
    built.http.close()


def wait_until(condition: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def refreshes(caplog: pytest.LogCaptureFixture) -> int:
    return sum("Trainer session refreshed" in record.getMessage() for record in caplog.records)


@pytest.mark.slow
def test_a_run_outlives_its_access_tokens_and_applies_a_request_made_after_they_expired(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """End to end, with a Trainer: the request is made once the first access token has expired and the
    session was refreshed twice; it is delivered by push (the channel never went down), applied by the
    callback, and its outcome recorded with a refreshed token."""
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForLanguageModeling,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    from liveparams import RuntimeParameterCallback
    from liveparams.demo.tiny import sft_dataset, tiny_model_dir

    caplog.set_level(logging.DEBUG, logger="liveparams.agent")
    source = Source(UpdateAgent(world.config()))
    made: dict[str, Any] = {}

    class RequestAfterExpiry(TrainerCallback):
        """At step 3, waits until the first token has expired and the session was refreshed twice,
        then makes the request and waits until it reached the agent."""

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == 3:
                expired = made["started"] + TOKEN_LIFETIME_S + 1
                wait_until(lambda: time.time() > expired and refreshes(caplog) >= 2, "two refreshes")
                made["id"] = world.request({"learning_rate": 5e-4})
                wait_until(lambda: source.arrived(made["id"]), "the request to reach the agent")

    model_dir = tiny_model_dir()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    data = sft_dataset(32).map(lambda row: tokenizer(row["text"]), remove_columns=["text"])
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=6, per_device_train_batch_size=4, learning_rate=1e-3,
        lr_scheduler_type="constant", logging_steps=1, save_strategy="no", report_to=[], use_cpu=True,
        disable_tqdm=True, seed=0,
    )  # fmt: skip
    trainer = Trainer(
        model=AutoModelForCausalLM.from_pretrained(model_dir),
        args=args,
        train_dataset=data,
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
    )
    trainer.add_callback(RuntimeParameterCallback(source, trainer=trainer))
    trainer.add_callback(RequestAfterExpiry())
    made["started"] = time.time()
    trainer.train()

    outcome = wait_until(lambda: world.outcome(made["id"]), "the outcome on the row")
    assert outcome["status"] == "applied" and outcome["step"] >= 3
    assert outcome["changes"]["learning_rate"] == {"old": 1e-3, "new": 5e-4}
    assert refreshes(caplog) >= 2
    messages = [record.getMessage() for record in caplog.records]
    assert not [m for m in messages if "Realtime push is down" in m or "subscription lost" in m], messages


class Source:
    """The agent as the callback's source; what a waiting test pulled from it is handed out first."""

    def __init__(self, agent: UpdateAgent) -> None:
        self.agent = agent
        self.buffer: list[UpdateRequest] = []

    def start(self, replay_after_step: int | None = None) -> None:
        self.agent.start(replay_after_step)

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self.agent.wait_ready(timeout)

    def record_end(self, reason: str, step: int | None = None) -> None:
        self.agent.record_end(reason, step)

    def close(self, timeout: float | None = None) -> None:
        self.agent.close(timeout)

    def report(self, outcomes: Iterable[UpdateOutcome]) -> None:
        self.agent.report(outcomes)

    def drain(self, max_items: int = DRAIN_MAX_ITEMS) -> list[UpdateRequest]:
        self.buffer += self.agent.drain(max_items)
        taken, self.buffer = self.buffer[:max_items], self.buffer[max_items:]
        return taken

    def arrived(self, request_id: str) -> bool:
        self.buffer += self.agent.drain()
        return any(request.id == request_id for request in self.buffer)


def test_a_restarted_trainer_resumes_its_session_from_the_session_file(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every refresh spends the refresh token the trainer was started with; the session file keeps the latest,
    so a restart with the same environment resumes. Without the file the spent token ends the session."""
    caplog.set_level(logging.DEBUG, logger="liveparams.agent")
    with UpdateAgent(world.config()) as first:
        assert first.wait_ready(WAIT_S)
        wait_until(lambda: refreshes(caplog) >= 3, "three refreshes")
    time.sleep(REUSE_INTERVAL_S + 1)

    with UpdateAgent(world.config()) as restarted:
        assert restarted.wait_ready(WAIT_S)
        assert restarted.status.value == "subscribed"

    caplog.clear()
    elsewhere = dataclasses.replace(world.config(), session_file=str(tmp_path / "another-machine.json"))
    with UpdateAgent(elsewhere) as without_file:
        wait_until(lambda: without_file.status.value == "revoked", "the spent token to be refused")
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert [w for w in warnings if "trainer credential was revoked" in w] == [
        "The trainer credential was revoked (refresh_token_already_used); runtime parameter updates stopped, "
        "training goes on. Issue a new one with `liveparams credential issue`"
    ]


def test_revoking_stops_the_agent_at_once_with_one_warning(world: World, caplog: pytest.LogCaptureFixture) -> None:
    with UpdateAgent(world.config()) as agent:
        assert agent.wait_ready(WAIT_S)
        assert world.admin.revoke(world.job_id) == [world.credential.credential_id]
        late = world.request({"learning_rate": 5e-4})
        wait_until(lambda: agent.status.value == "revoked", "the agent to see the revocation")
        time.sleep(0.5)
        assert agent.drain() == []  # the request made after the revocation never reached the trainer
        agent.report([UpdateOutcome(late, OutcomeStatus.APPLIED, step=1)])  # training goes on; nothing raises
    assert world.outcome(late) is None  # ...and a revoked trainer cannot record anything
    revoked = [r for r in caplog.records if "trainer credential was revoked" in r.getMessage()]
    assert len(revoked) == 1 and revoked[0].levelno == logging.WARNING


@pytest.mark.anyio
async def test_a_call_refused_for_an_expired_token_is_made_again_after_a_refresh(world: World) -> None:
    """The outcome is written, not dropped, when the token expired since the last refresh."""
    config = world.config()
    credential = Credential(config)
    rest = RestClient(config, credential)
    request_id = world.request({"weight_decay": 0.1})
    try:
        await rest.read_requests(None, None, 10)  # signs in
        await asyncio.sleep(TOKEN_LIFETIME_S + 1)  # nothing refreshes: no run() loop here
        await rest.record_outcomes({request_id: {"status": "rejected", "reason": "test"}})
    finally:
        await rest.aclose()
    outcome = world.outcome(request_id)
    assert outcome is not None and outcome["status"] == "rejected"


def test_no_credential_reaches_a_log(
    short_env: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every logger at DEBUG (ours, the official clients', httpx) through a credential's whole life: issued,
    refreshed several times, used for a request and an outcome, revoked. No password, refresh token, access
    token or project key appears. The one exception is documented (docs/security.md): the websockets
    library writes each frame it sends at DEBUG, the join's access token included."""
    caplog.set_level(logging.DEBUG)
    caplog.handler.addFilter(lambda record: not record.name.startswith("websockets"))
    password = f"pw-{uuid.uuid4().hex}{uuid.uuid4().hex}"
    monkeypatch.setattr("liveparams.credentials.secrets.token_urlsafe", lambda size: password)
    world = World(short_env, tmp_path)
    config = world.config()
    seen: set[str] = {config.refresh_token or ""}
    with UpdateAgent(config) as agent:

        async def keep(access_token: str) -> None:
            seen.add(access_token)
            seen.add(json.loads(world.session_file.read_text())["refresh_token"])

        agent._worker.credential.on_token(keep)  # the test's window on the tokens the agent is given
        assert agent.wait_ready(WAIT_S)
        request_id = world.request({"learning_rate": 5e-4})
        wait_until(lambda: [r.id for r in agent.drain()] == [request_id], "the request")
        agent.report([UpdateOutcome(request_id, OutcomeStatus.REJECTED, reason="test")])
        wait_until(lambda: world.outcome(request_id), "the outcome")
        wait_until(lambda: refreshes(caplog) >= 2, "two refreshes")
        world.admin.revoke(world.job_id)
        wait_until(lambda: agent.status.value == "revoked", "the revocation")
    assert len(seen) >= 5  # the first refresh token, and two access and refresh tokens after it
    secrets = {password, *seen, short_env["SERVICE_ROLE_KEY"], short_env.get("SECRET_KEY", "")} - {""}
    logged = [f"{record.name}: {record.getMessage()} {record.args!r}" for record in caplog.records]
    leaks = [line[:300] for line in logged if any(secret in line for secret in secrets)]
    assert leaks == []
