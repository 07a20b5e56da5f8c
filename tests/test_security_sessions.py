"""Trainer credentials on a stack whose Auth issues access tokens that live a few seconds.

A run outlives several access tokens: the agent refreshes before each expires, hands the new one
to Realtime (the channel stays up) and to REST, and a request made after the first token expired
is applied and recorded. The credential is the job's for its whole life: each start signs in
again, in a fresh HOME, several processes at once, and a wrong JOB_ID is refused before anything
is sent. Revoking takes effect at once. Against a real Supabase these run when its ``jwt_expiry``
is that short.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from auth_helpers import SHORT_TOKEN_LIFETIME_S as TOKEN_LIFETIME_S
from cli_helpers import clean_environ

from liveparams.agent import AgentConfig, UpdateAgent
from liveparams.agent._credential import Credential
from liveparams.agent._rest import RestClient
from liveparams.contract import DRAIN_MAX_ITEMS, OutcomeStatus, UpdateOutcome, UpdateRequest
from liveparams.credentials import CredentialAdmin, TrainerCredential

pytestmark = [pytest.mark.stack]

FAST = {"poll_interval": 0.2, "resync_interval": 2.0, "probe_interval": 1.0, "backoff_initial": 0.1, "backoff_max": 0.5}
WAIT_S = 20.0
_RETURN = {"Prefer": "return=representation"}


def _service_headers(env: dict[str, str]) -> dict[str, str]:
    return {"apikey": env["SERVICE_ROLE_KEY"], "Authorization": f"Bearer {env['SERVICE_ROLE_KEY']}"}


class World:
    """A running job and a trainer credential for it, on the short-lived stack."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.http = httpx.Client(base_url=env["API_URL"], headers=_service_headers(env), timeout=10)
        self.admin = CredentialAdmin(env["API_URL"], env["SERVICE_ROLE_KEY"])
        self.job_id = self.new_job()
        self.credential: TrainerCredential = self.admin.issue(self.job_id)

    def new_job(self) -> str:
        job = self.http.post("/rest/v1/local_training_jobs", json={"status": "running"}, headers=_RETURN)
        return str(job.json()[0]["id"])

    def config(self) -> AgentConfig:
        return AgentConfig(
            job_id=self.job_id,
            url=self.env["API_URL"],
            api_key=self.env["ANON_KEY"],
            credential=self.credential.secret,
            **FAST,  # type: ignore[arg-type]
        )

    def trainer_env(self) -> dict[str, str]:
        """What the training process is given: the job, the project's URL and public key, the credential."""
        return {
            "JOB_ID": self.job_id,
            "SUPABASE_URL": self.env["API_URL"],
            "SUPABASE_ANON_KEY": self.env["ANON_KEY"],
            "LIVEPARAMS_CREDENTIAL": self.credential.secret,
        }

    def job(self, job_id: str) -> dict[str, Any]:
        rows = self.http.get("/rest/v1/local_training_jobs", params={"id": f"eq.{job_id}"}).json()
        return dict(rows[0])

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
def world(short_env: dict[str, str]) -> Iterator[World]:
    built = World(short_env)
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


TRAINER = """
import logging, sys
from liveparams.agent import UpdateAgent
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
logging.getLogger("liveparams.agent").setLevel(logging.DEBUG)
agent = UpdateAgent.from_env()
if agent is None:
    print("disabled", flush=True)
    sys.exit(0)
agent.start()
print("ready" if agent.wait_ready(30) else "not ready", flush=True)
for line in sys.stdin:
    print(" ".join(r.id for r in agent.drain()) if line.strip() == "drain" else agent.status.value, flush=True)
agent.close()
"""


class TrainerProcess:
    """A training process as a person starts one: only its environment, in a fresh, empty HOME."""

    def __init__(self, env: dict[str, str], home: Path) -> None:
        home.mkdir()
        self.home = home
        self.log_path = home.parent / f"{home.name}.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-c", TRAINER],
            env={**clean_environ(), **env, "HOME": str(home)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )

    def first_line(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def ask(self, question: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(question + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_for(self, request_id: str) -> None:
        """Until the request reached this process's agent."""
        received: list[str] = []

        def arrived() -> bool:
            received.extend(self.ask("drain").split())
            return request_id in received

        wait_until(arrived, f"request {request_id} in {self.home.name}")

    def refreshes(self) -> int:
        return self.log().count("Trainer session refreshed")

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)
        self._log.close()


@pytest.fixture
def trainers() -> Iterator[list[TrainerProcess]]:
    started: list[TrainerProcess] = []
    yield started
    for trainer in started:
        if trainer.process.poll() is None:
            trainer.process.kill()
            trainer.process.wait()


def test_the_same_credential_starts_three_times_in_fresh_homes_two_at_once(
    world: World, tmp_path: Path, trainers: list[TrainerProcess]
) -> None:
    """A restart, a new machine and a second process are the same case: each signs in with the credential and
    has a session of its own. The later starts come after the first process refreshed its session several
    times, and none ends another's; every one receives a request; nothing is written to their HOMEs."""
    first = TrainerProcess(world.trainer_env(), tmp_path / "home-1")
    trainers.append(first)
    assert first.first_line() == "ready", first.log()
    wait_until(lambda: first.refreshes() >= 3, "three refreshes of the first process")

    together = [TrainerProcess(world.trainer_env(), tmp_path / f"home-{n}") for n in (2, 3)]
    trainers.extend(together)
    assert [trainer.first_line() for trainer in together] == ["ready", "ready"], [t.log() for t in together]
    wait_until(lambda: all(t.refreshes() >= 2 for t in together) and first.refreshes() >= 5, "more refreshes")

    request_id = world.request({"learning_rate": 5e-4})
    for trainer in trainers:
        trainer.wait_for(request_id)
        assert trainer.ask("status") == "subscribed"
    for trainer in trainers:
        trainer.close()
        assert "revoked" not in trainer.log() and "session ended" not in trainer.log(), trainer.log()
        assert not any(trainer.home.iterdir())  # no state file: the credential is all a start needs


def test_a_wrong_job_id_fails_before_anything_is_sent_then_the_right_one_works(
    world: World, tmp_path: Path, trainers: list[TrainerProcess]
) -> None:
    """The mistyped id is another real job: refused at start, naming both ids, and that job is untouched.
    The same credential then starts the right job as if nothing had happened."""
    other_job = world.new_job()
    wrong = TrainerProcess({**world.trainer_env(), "JOB_ID": other_job}, tmp_path / "wrong")
    trainers.append(wrong)
    assert wrong.first_line() == "disabled"
    wrong.close()
    said = [line for line in wrong.log().splitlines() if line.startswith("WARNING")]
    assert len(said) == 1 and f"credential of job {world.job_id}, but JOB_ID is {other_job}" in said[0], said
    assert world.job(other_job)["trainer_attached_at"] is None

    right = TrainerProcess(world.trainer_env(), tmp_path / "right")
    trainers.append(right)
    assert right.first_line() == "ready", right.log()
    right.wait_for(world.request({"weight_decay": 0.01}))
    right.close()


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
    world = World(short_env)
    config = world.config()
    seen: set[str] = {world.credential.secret}
    with UpdateAgent(config) as agent:
        credential = agent._worker.credential

        async def keep(access_token: str) -> None:
            seen.add(access_token)
            assert credential._session is not None
            seen.add(credential._session.refresh_token)

        credential.on_token(keep)  # the test's window on the tokens the agent is given
        assert agent.wait_ready(WAIT_S)
        request_id = world.request({"learning_rate": 5e-4})
        wait_until(lambda: [r.id for r in agent.drain()] == [request_id], "the request")
        agent.report([UpdateOutcome(request_id, OutcomeStatus.REJECTED, reason="test")])
        wait_until(lambda: world.outcome(request_id), "the outcome")
        wait_until(lambda: refreshes(caplog) >= 2, "two refreshes")
        world.admin.revoke(world.job_id)
        wait_until(lambda: agent.status.value == "revoked", "the revocation")
    assert len(seen) >= 5  # the credential, and two access and refresh tokens after it
    secrets = {password, *seen, short_env["SERVICE_ROLE_KEY"], short_env.get("SECRET_KEY", "")} - {""}
    logged = [f"{record.name}: {record.getMessage()} {record.args!r}" for record in caplog.records]
    leaks = [line[:300] for line in logged if any(secret in line for secret in secrets)]
    assert leaks == []
