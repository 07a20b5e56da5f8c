"""The fault matrix: each fault with requests before, during and after it, against a real tiny training.

Each fault gets a fresh job with its own trainer credential and a trainer process (the demo's
tiny SFT run, ``RuntimeParameterCallback`` with the project's own agent) that trains until told
to stop. The job's owner sends ``{"learning_rate": x, "learning_rate_mode": "constant"}``
requests through the ``request_parameter_update`` RPC before, during and after the fault (each
with its own ``p_request_id``, so a send retried across an outage cannot make a second row).
Then the rows, the trainer's own log of what it drained and applied, and the job row are read.

Faults: ``postgres`` (PostgreSQL stopped and started again), ``api`` (the stack's HTTP/WebSocket
front stopped and started again), ``kill9`` (the trainer SIGKILLs itself after applying a change
and before handing its outcome to the agent, then resumes from its last checkpoint), ``partition``
(the trainer reaches the stack through a TCP proxy that stops forwarding, new connections
included), ``expiry`` (a stack whose access tokens live a few seconds: the trainer's token expires
again and again), ``revoke`` (``CredentialAdmin.revoke``, what ``liveparams credential revoke``
calls, mid-run), ``outcomes_5xx`` (the outcome RPC answers 503 for a while), ``flood`` (many
requests at once across many jobs, a trainer on some of them).

Pass, per fault: nothing lost, nothing applied twice, every outcome recorded (after ``revoke``:
the requests made after it stay pending, the trainer can no longer read them), no
``on_step_end`` of the callback longer than 100 ms, and the job row's trainer state true at the end.

Run: ``python benchmarks/faults.py [--faults postgres,api,...] [--fault-s 300]``; the tests in
tests/test_faults.py run the same scenarios, short, and assert the same checks except timing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from liveparams._views import trainer_attachment
from liveparams.credentials import CredentialAdmin
from liveparams.tokens import mint_jwt
from liveparams_stack import LocalStack
from liveparams_stack.keys import ANON_KEY, JWT_SECRET, SERVICE_ROLE_KEY
from liveparams_stack.users import create_user

HOOK_LIMIT_MS = 100.0
KILL9_SAVE_STEPS = 5  # the killed trainer checkpoints this often
OUTCOMES_RPC_PATH = "rpc/record_parameter_update_outcomes"
FAULTS = ("postgres", "api", "kill9", "partition", "expiry", "revoke", "outcomes_5xx", "flood")
# Agent settings for short runs (CI): recover within seconds rather than the production back-off.
QUICK_AGENT = {"poll_interval": 0.5, "probe_interval": 1.0, "probe_timeout": 1.0, "recovery_grace": 1.0}
QUICK_AGENT |= {"backoff_initial": 0.2, "backoff_max": 2.0}


@dataclass
class Sizes:
    """How long and how many: the benchmark's defaults, or the tests' short ones."""

    fault_s: float = 60.0  # how long a fault lasts (the partition: --partition-s)
    partition_s: float = 300.0
    per_phase: int = 3  # requests before, during and after
    settle_s: float = 120.0  # how long every outcome may take to be recorded after the fault
    step_s: float = 0.05  # a training step's stand-in compute (sleep), on top of the tiny model's
    flood_requests: int = 10_000
    flood_jobs: int = 100
    flood_trainers: int = 4
    flood_s: float = 60.0
    agent: dict[str, float] = field(default_factory=dict)  # AgentConfig overrides for the trainers


# -- the trainer process -------------------------------------------------------------------------


def trainer_main(argv: list[str]) -> None:
    """``faults.py trainer EVENTS STOP OUT [--kill-at ID] [--resume] [--save-steps N] ...``: train until STOP exists.

    Writes one JSON line per event to EVENTS (flushed at once: a SIGKILL loses nothing written):
    ``drained`` (id, step), ``reported`` (id, status, step), ``killing`` (id), ``step`` (step, lr,
    hook_ms: the callback's ``on_step_end``, step_ms: the step without the stand-in compute, t).
    """
    parser = argparse.ArgumentParser()
    parser.add_argument("events")
    parser.add_argument("stop")
    parser.add_argument("out")
    parser.add_argument("--kill-at", default=None)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--save-steps", type=int, default=0)
    parser.add_argument("--step-s", type=float, default=0.05)
    parser.add_argument("--agent", default="{}")
    opts = parser.parse_args(argv)

    import torch
    from transformers import TrainerCallback

    from liveparams import RuntimeParameterCallback
    from liveparams.agent import AgentConfig, UpdateAgent
    from liveparams.demo.tiny import demo_sft_trainer

    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # Open for the process's life: each line is written at once, up to a SIGKILL.
    events = Path(opts.events).open("a", buffering=1)  # noqa: SIM115

    def log(**event: Any) -> None:
        events.write(json.dumps({**event, "pid": os.getpid()}) + "\n")

    config = AgentConfig.from_env()
    assert config is not None, "JOB_ID, SUPABASE_URL, SUPABASE_ANON_KEY and LIVEPARAMS_CREDENTIAL are needed"
    agent = UpdateAgent(replace(config, **json.loads(opts.agent)))

    class Logged:
        """The agent as the callback's source, logging what the callback drains and reports."""

        def __init__(self) -> None:
            self.step = 0

        job_id = property(lambda self: agent.job_id)

        def start(self, replay_after_step: int | None = None) -> None:
            agent.start(replay_after_step)

        def wait_initial_read(self, timeout: float | None = None) -> bool:
            return agent.wait_initial_read(timeout)

        def record_end(self, reason: str, step: int | None = None) -> None:
            agent.record_end(reason, step)

        def close(self, timeout: float | None = None) -> None:
            agent.close(timeout)

        def publish_metrics(self, step: int, metrics: Any) -> None:
            agent.publish_metrics(step, metrics)  # as in production: the faults hit the metrics sender too

        def drain(self, max_items: int = 64) -> list[Any]:
            taken = agent.drain(max_items)
            for request in taken:
                log(event="drained", id=request.id, step=self.step)
            return taken

        def report(self, outcomes: Any) -> None:
            outcomes = list(outcomes)
            for outcome in outcomes:
                if outcome.request_id == opts.kill_at:
                    log(event="killing", id=outcome.request_id, status=outcome.status.value, step=outcome.step)
                    os.kill(os.getpid(), signal.SIGKILL)  # applied, its outcome not yet with the agent
            agent.report(outcomes)
            for outcome in outcomes:
                log(event="reported", id=outcome.request_id, status=outcome.status.value, step=outcome.step)

    source = Logged()

    class Clock(TrainerCallback):
        """Before the callback: paces the step and starts the clocks."""

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            time.sleep(opts.step_s)
            self.began = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.hook_start = time.perf_counter()
            source.step = state.global_step

    clock = Clock()

    class Stop(TrainerCallback):
        """After the callback: logs the step, and stops training when the STOP file exists."""

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            optimizer = kwargs.get("optimizer")
            lr = float(optimizer.param_groups[0]["lr"]) if optimizer is not None else None
            log(event="begin", step=state.global_step, lr=lr)  # a resumed run applies at its first boundary

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            optimizer = kwargs.get("optimizer")
            now = time.perf_counter()
            lr = float(optimizer.param_groups[0]["lr"]) if optimizer is not None else None
            hook_ms, step_ms = (now - clock.hook_start) * 1e3, (now - clock.began) * 1e3
            log(event="step", step=state.global_step, lr=lr, hook_ms=hook_ms, step_ms=step_ms, t=time.time())
            if os.path.exists(opts.stop):
                control.should_training_stop = True

    overrides: dict[str, Any] = {"logging_steps": 10_000}
    if opts.save_steps:
        overrides |= {"save_strategy": "steps", "save_steps": opts.save_steps, "save_total_limit": 2}
    trainer = demo_sft_trainer(opts.out, max_steps=1_000_000, callbacks=[clock], **overrides)
    trainer.add_callback(RuntimeParameterCallback(source, trainer=trainer))
    trainer.add_callback(Stop())
    log(event="started", t=time.time())
    trainer.train(resume_from_checkpoint=True if opts.resume else None)
    log(event="ended", step=trainer.state.global_step, t=time.time())
    events.close()


@dataclass
class Trainer:
    """A trainer process on one job, and its event log."""

    job: Job
    url: str
    root: Path
    sizes: Sizes
    process: subprocess.Popen[bytes] | None = None
    runs: int = 0

    @property
    def events_path(self) -> Path:
        return self.root / "events.jsonl"

    def start(self, kill_at: str | None = None, resume: bool = False, save_steps: int = 0) -> None:
        stop = self.root / "stop"
        stop.unlink(missing_ok=True)
        argv = [sys.executable, __file__, "trainer", str(self.events_path), str(stop), str(self.root / "out")]
        argv += ["--step-s", str(self.sizes.step_s), "--agent", json.dumps(self.sizes.agent)]
        argv += ["--save-steps", str(save_steps)] + (["--kill-at", kill_at] if kill_at else [])
        argv += ["--resume"] if resume else []
        env = {**os.environ, "JOB_ID": self.job.id, "SUPABASE_URL": self.url, "SUPABASE_ANON_KEY": ANON_KEY}
        env |= {"LIVEPARAMS_CREDENTIAL": self.job.credential, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        env.pop("LIVEPARAMS_TOKEN", None)
        with (self.root / "trainer.log").open("ab") as out:
            self.process = subprocess.Popen(argv, env=env, stdout=out, stderr=out)
        self.runs += 1
        pid = self.process.pid
        self.wait_for(lambda e: e["event"] == "step" and e["pid"] == pid, 180, "the trainer's first step")

    def events(self) -> list[dict[str, Any]]:
        if not self.events_path.exists():
            return []
        lines = self.events_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.endswith("}")]

    def wait_for(self, seen: Callable[[dict[str, Any]], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not any(seen(e) for e in self.events()):
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the trainer exited ({self.process.returncode}) before {what}: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"no {what} within {timeout:.0f} s: {self.log_tail()}")
            time.sleep(0.1)

    def stop(self, timeout: float = 120) -> None:
        (self.root / "stop").touch()
        assert self.process is not None
        self.process.wait(timeout)

    def log_tail(self) -> str:
        path = self.root / "trainer.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


# -- jobs and requests ---------------------------------------------------------------------------


@dataclass
class Job:
    id: str
    owner_jwt: str
    credential: str


def new_job(api_url: str, name: str) -> Job:
    """A running job owned by a new user, and a trainer credential for it."""
    owner_id, _ = create_user(api_url)
    # The owner's own token, minted to outlive the run: a short-lived stack's sign-in lasts seconds.
    claims = {"sub": owner_id, "role": "authenticated", "aud": "authenticated"}
    owner_jwt = mint_jwt(claims, JWT_SECRET, expires_in=3600)
    headers = {
        "apikey": SERVICE_ROLE_KEY,
        "Authorization": f"Bearer {SERVICE_ROLE_KEY}",
        "Prefer": "return=representation",
    }
    row = {"user_id": owner_id, "name": name, "status": "running"}
    response = httpx.post(f"{api_url}/rest/v1/local_training_jobs", json=row, headers=headers, timeout=30)
    response.raise_for_status()
    job_id = str(response.json()[0]["id"])
    return Job(job_id, owner_jwt, CredentialAdmin(api_url, SERVICE_ROLE_KEY).issue(job_id).secret)


@dataclass
class Sent:
    id: str
    lr: float
    phase: str


class Requests:
    """The owner's side: requests through the RPC, each retried with its own id until the stack takes it."""

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url
        self.sent: dict[str, list[Sent]] = {}  # job id -> its requests, in order
        self._count = 0
        self._lock = threading.Lock()
        # One client for every sender thread: a new one per request loaded the CA bundle each time,
        # and 16 threads doing that under the GIL sent a few hundred of the flood's 10,000 in minutes.
        self._http = httpx.Client(timeout=30)

    def send(self, job: Job, phase: str, timeout: float = 600, request_id: str | None = None) -> Sent:
        with self._lock:
            # A distinct rate per request, within the parameter's range for the flood's 10,000 too
            # (×1.01 per request passed the maximum of 1.0 at the 695th).
            self._count += 1
            sent = Sent(request_id or str(uuid.uuid4()), round(1e-3 * (1 + self._count * 1e-4), 12), phase)
        body = {"p_job_id": job.id, "p_params": {"learning_rate": sent.lr, "learning_rate_mode": "constant"}}
        body["p_request_id"] = sent.id
        headers = {"apikey": ANON_KEY, "Authorization": f"Bearer {job.owner_jwt}"}
        deadline = time.monotonic() + timeout
        while True:
            try:
                response = self._http.post(
                    f"{self.api_url}/rest/v1/rpc/request_parameter_update", json=body, headers=headers
                )
                if response.status_code < 500:
                    response.raise_for_status()
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the request RPC did not succeed within {timeout:.0f} s")
            time.sleep(0.5)
        with self._lock:
            self.sent.setdefault(job.id, []).append(sent)
        return sent


def rows(api_url: str, job_id: str) -> dict[str, dict[str, Any]]:
    headers = {"apikey": SERVICE_ROLE_KEY, "Authorization": f"Bearer {SERVICE_ROLE_KEY}"}
    params = {"job_id": f"eq.{job_id}", "select": "id,status,step,changes"}
    response = httpx.get(f"{api_url}/rest/v1/parameter_update_requests", params=params, headers=headers, timeout=30)
    response.raise_for_status()
    return {row["id"]: row for row in response.json()}


def job_row(api_url: str, job_id: str) -> dict[str, Any]:
    headers = {"apikey": SERVICE_ROLE_KEY, "Authorization": f"Bearer {SERVICE_ROLE_KEY}"}
    response = httpx.get(f"{api_url}/rest/v1/local_training_jobs", params={"id": f"eq.{job_id}"}, headers=headers)
    response.raise_for_status()
    row: dict[str, Any] = response.json()[0]
    return row


def wait_recorded(api_url: str, job_id: str, ids: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = rows(api_url, job_id)
        if all(found.get(i, {}).get("status") for i in ids):
            return
        time.sleep(0.5)


# -- a partition: a TCP proxy that can stop forwarding ------------------------------------------


class Proxy:
    """127.0.0.1:<port> → the stack. ``partition()`` stops all forwarding (open connections hang,
    new ones are accepted and held), ``heal()`` resumes it: what a network partition looks like to TCP."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.loop = asyncio.new_event_loop()
        self.open = asyncio.Event()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self.loop).result(10)
        self.heal()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def partition(self) -> None:
        self.loop.call_soon_threadsafe(self.open.clear)

    def heal(self) -> None:
        self.loop.call_soon_threadsafe(self.open.set)

    async def _serve(self) -> None:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", self.port)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self.open.wait()
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self.open.wait()
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self._server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


# -- one fault -----------------------------------------------------------------------------------


@dataclass
class Result:
    fault: str
    phases: dict[str, dict[str, int]]  # phase -> sent, applied, recorded, pending
    duplicates: int
    lost: int
    crossed: int
    max_hook_ms_fault: float
    max_hook_ms: float
    max_step_ms_fault: float
    state: str
    expected_state: str
    expected_pending: int
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # checks particular to the fault that failed

    @property
    def passed(self) -> bool:
        pending = sum(p["pending"] for p in self.phases.values())
        return (
            not self.failures
            and self.duplicates == 0
            and self.lost == 0
            and self.crossed == 0
            and pending == self.expected_pending
            and self.state in self.expected_state.split("|")
        )

    @property
    def passed_timing(self) -> bool:
        return self.max_hook_ms <= HOOK_LIMIT_MS


@dataclass
class Context:
    """What a fault may act on: the stack (None when it cannot be restarted), its fault injection, the proxy."""

    stack: LocalStack
    api_url: str
    sizes: Sizes
    root: Path
    proxy: Proxy | None = None
    short_api_url: str | None = None  # a stack whose access tokens live a few seconds (expiry)

    def inject(self, action: str, **body: Any) -> None:
        httpx.post(f"{self.stack.api_url}/_liveparams/faults/{action}", json=body, timeout=10).raise_for_status()


@contextlib.contextmanager
def in_background(work: Callable[[], None]) -> Iterator[None]:
    """Run ``work`` (a fault that takes its time, e.g. a restart with a pause) while the block sends requests."""
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()


def run_fault(name: str, ctx: Context) -> Result:
    if name == "flood":
        return run_flood(ctx)
    sizes = ctx.sizes
    api_url = ctx.short_api_url if name == "expiry" and ctx.short_api_url else ctx.api_url
    root = ctx.root / name
    root.mkdir(parents=True, exist_ok=True)
    job = new_job(api_url, f"fault {name}")
    proxy = Proxy(int(api_url.rsplit(":", 1)[1])) if name == "partition" else None
    trainer = Trainer(job, proxy.url if proxy else api_url, root, sizes)
    requests = Requests(api_url)
    victim = str(uuid.uuid4())  # kill9: the request whose outcome the trainer dies before recording
    killing = name == "kill9"
    trainer.start(kill_at=victim if killing else None, save_steps=KILL9_SAVE_STEPS if killing else 0)
    try:
        before = [requests.send(job, "before") for _ in range(sizes.per_phase)]
        wait_recorded(api_url, job.id, [s.id for s in before], sizes.settle_s)
        t0 = time.time()
        during = fault_phase(name, ctx, job, trainer, requests, proxy, victim)
        t1 = time.time()
        after = [requests.send(job, "after") for _ in range(sizes.per_phase)]
        expect_pending = len(during) + len(after) if name == "revoke" else 0
        wanted = [s.id for s in before + during + after] if name != "revoke" else [s.id for s in before]
        wait_recorded(api_url, job.id, wanted, sizes.settle_s)
        if name == "revoke":
            time.sleep(min(10.0, sizes.settle_s))  # give a request that should stay pending the chance not to
        trainer.stop()
    finally:
        if trainer.process is not None and trainer.process.poll() is None:
            trainer.process.kill()
        if proxy is not None:
            proxy.close()
    return judge(name, api_url, job, trainer, requests, t0, t1, expect_pending)


def fault_phase(
    name: str, ctx: Context, job: Job, trainer: Trainer, requests: Requests, proxy: Proxy | None, victim: str
) -> list[Sent]:
    """Inject the fault, send the "during" requests while it lasts, end it; returns those requests."""
    sizes, n = ctx.sizes, ctx.sizes.per_phase
    spaced = max(sizes.fault_s / (n + 1), 0.0)

    def send_spread(seconds: float) -> list[Sent]:
        sent = []
        for _ in range(n):
            time.sleep(seconds / (n + 1))
            sent.append(requests.send(job, "during"))
        return sent

    if name == "postgres":
        with in_background(lambda: ctx.stack.restart_database(sizes.fault_s)):
            time.sleep(0.5)
            return send_spread(sizes.fault_s)
    if name == "api":
        with in_background(lambda: ctx.stack.restart_api(sizes.fault_s)):
            time.sleep(0.5)
            return send_spread(sizes.fault_s)
    if name == "partition":
        assert proxy is not None
        proxy.partition()
        sent = send_spread(sizes.partition_s)
        time.sleep(sizes.partition_s / (n + 1))  # the partition lasts partition_s in all
        proxy.heal()
        return sent
    if name == "outcomes_5xx":
        ctx.inject("rest_errors", seconds=sizes.fault_s, status=503, path=OUTCOMES_RPC_PATH)
        sent = send_spread(sizes.fault_s)
        time.sleep(spaced)
        return sent
    if name == "expiry":
        return send_spread(sizes.fault_s)  # the short-lived stack's tokens expire every few seconds meanwhile
    if name == "revoke":
        CredentialAdmin(ctx.api_url, SERVICE_ROLE_KEY).revoke(job.id)
        return send_spread(sizes.fault_s)
    if name == "kill9":
        past_checkpoint = KILL9_SAVE_STEPS + 1  # a checkpoint to resume from exists
        trainer.wait_for(lambda e: e["event"] == "step" and e["step"] >= past_checkpoint, 120, "a checkpoint")
        killed = requests.send(job, "during", request_id=victim)
        trainer.wait_for(lambda e: e["event"] == "killing", sizes.settle_s, "the kill")
        assert trainer.process is not None
        trainer.process.wait(30)
        trainer.start(resume=True, save_steps=KILL9_SAVE_STEPS)
        return [killed]
    raise ValueError(f"unknown fault {name!r}")


def judge(
    name: str, api_url: str, job: Job, trainer: Trainer, requests: Requests, t0: float, t1: float, pending: int
) -> Result:
    found = rows(api_url, job.id)
    events = trainer.events()
    applied: dict[tuple[int, str], int] = {}  # (process, request) -> times applied; a resumed run applies
    for e in events:  # again what its checkpoint rewound past, which counts once per run
        if e["event"] == "reported" and e["status"] == "applied":
            applied[e["pid"], e["id"]] = applied.get((e["pid"], e["id"]), 0) + 1
    applied_ids = {request_id for _, request_id in applied}
    sent = requests.sent.get(job.id, [])
    phases: dict[str, dict[str, int]] = {}
    for s in sent:
        phase = phases.setdefault(s.phase, {"sent": 0, "applied": 0, "recorded": 0, "pending": 0})
        phase["sent"] += 1
        phase["applied"] += int(s.id in applied_ids)
        status = found.get(s.id, {}).get("status")
        phase["recorded"] += int(bool(status))
        phase["pending"] += int(not status)
    lost = sum(1 for s in sent if s.id not in found)
    crossed = len({e["id"] for e in events if e["event"] == "drained"} - {s.id for s in sent})
    steps = [e for e in events if e["event"] == "step"]
    in_fault = [e for e in steps if t0 <= e["t"] <= t1] or steps
    statuses = Counter(str(found.get(s.id, {}).get("status") or "pending") for s in sent)
    notes: list[str] = ["outcomes on the rows: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))]
    failures: list[str] = []
    if name == "kill9":
        (victim,) = [s for s in sent if s.phase == "during"]
        (killed,) = [e for e in events if e["event"] == "killing"]
        in_resumed = [
            e
            for e in events
            if e["event"] == "reported"
            and e["status"] == "applied"
            and e["id"] == victim.id
            and e["pid"] != killed["pid"]
        ]
        step = found[victim.id]["step"]
        lrs = [
            e["lr"]
            for e in events
            if e["event"] in ("begin", "step") and e["pid"] != killed["pid"] and e["step"] == step
        ]
        notes.append(
            f"killed after applying it at step {killed['step']}; the resumed run applied it "
            f"{len(in_resumed)} time(s), recorded {found[victim.id]['status']} at step {step}, "
            f"its optimizer's lr then {lrs[-1] if lrs else None} (requested {victim.lr})"
        )
        if len(in_resumed) != 1 or not lrs or abs(lrs[-1] - victim.lr) > 1e-9 * victim.lr:
            failures.append("the killed change was not applied exactly once by the resumed run's optimizer")
    ended = [e for e in events if e["event"] == "ended"]
    expected_state = f"completed at step {ended[-1]['step']}" if ended else "(the trainer did not end)"
    if name == "revoke":
        # The revoked trainer can no longer write to the row, its end included: the row says attached
        # until its last heartbeat (before the revoke) is stale, then that the trainer went silent.
        expected_state = "attached|silent"
        notes.append("after revoke: requests stay pending (the trainer cannot read them); its end is not written")
    state = trainer_attachment(job_row(api_url, job.id), datetime.now(timezone.utc)).label
    return Result(
        fault=name,
        phases=phases,
        duplicates=sum(1 for count in applied.values() if count > 1),  # twice within one run
        lost=lost,
        crossed=crossed,
        max_hook_ms_fault=max((e["hook_ms"] for e in in_fault), default=0.0),
        max_hook_ms=max((e["hook_ms"] for e in steps), default=0.0),
        max_step_ms_fault=max((e["step_ms"] for e in in_fault), default=0.0),
        state=state,
        expected_state=expected_state,
        expected_pending=pending,
        notes=notes,
        failures=failures,
    )


def run_flood(ctx: Context) -> Result:
    """``flood_requests`` over ``flood_jobs`` jobs within ``flood_s``; trainers on the first ``flood_trainers``."""
    sizes, api_url = ctx.sizes, ctx.api_url
    jobs = [new_job(api_url, f"flood {i}") for i in range(sizes.flood_jobs)]
    requests = Requests(api_url)
    trainers = []
    for i, job in enumerate(jobs[: sizes.flood_trainers]):
        root = ctx.root / f"flood-{i}"
        root.mkdir(parents=True, exist_ok=True)
        trainers.append(Trainer(job, api_url, root, sizes))
        trainers[-1].start()
    try:
        t0 = time.time()
        spacing = sizes.flood_s / sizes.flood_requests
        with ThreadPoolExecutor(16) as pool:
            futures = []
            for i in range(sizes.flood_requests):
                futures.append(pool.submit(requests.send, jobs[i % len(jobs)], "during"))
                time.sleep(max(0.0, t0 + i * spacing - time.time()))
            for future in futures:
                future.result()
        t1 = time.time()
        for trainer in trainers:
            wait_recorded(api_url, trainer.job.id, [s.id for s in requests.sent[trainer.job.id]], sizes.settle_s)
        for trainer in trainers:
            trainer.stop()
    finally:
        for trainer in trainers:
            if trainer.process is not None and trainer.process.poll() is None:
                trainer.process.kill()
    results = [judge("flood", api_url, t.job, t, requests, t0, t1, 0) for t in trainers]
    stored = sum(len(rows(api_url, job.id)) for job in jobs)
    phases = {"during": {key: sum(r.phases["during"][key] for r in results) for key in results[0].phases["during"]}}
    phases["untrained"] = {"sent": sizes.flood_requests - phases["during"]["sent"], "applied": 0, "recorded": 0}
    phases["untrained"]["pending"] = 0  # jobs with no trainer: their requests are only checked stored
    notes = [f"{sizes.flood_requests} requests over {len(jobs)} jobs in {t1 - t0:.1f} s; trainers on {len(trainers)}"]
    states = {r.state in r.expected_state.split("|") for r in results}
    return Result(
        fault="flood",
        phases=phases,
        duplicates=sum(r.duplicates for r in results),
        lost=sizes.flood_requests - stored,
        crossed=sum(r.crossed for r in results),
        max_hook_ms_fault=max(r.max_hook_ms_fault for r in results),
        max_hook_ms=max(r.max_hook_ms for r in results),
        max_step_ms_fault=max(r.max_step_ms_fault for r in results),
        state=results[0].state if states == {True} else "; ".join(r.state for r in results),
        expected_state=results[0].expected_state if states == {True} else "; ".join(r.expected_state for r in results),
        expected_pending=0,
        notes=notes,
    )


# -- the benchmark -------------------------------------------------------------------------------


def print_table(result: Result) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"fault: {result.fault} — {'PASS' if result.passed and result.passed_timing else 'FAIL'}")
    for column in ("phase", "sent", "applied", "recorded", "pending"):
        table.add_column(column, justify="right" if column != "phase" else "left")
    for phase, counts in result.phases.items():
        table.add_row(phase, *(str(counts[k]) for k in ("sent", "applied", "recorded", "pending")))
    console = Console(width=120)
    console.print(table)
    console.print(
        f"  lost {result.lost} · applied twice {result.duplicates} · crossed {result.crossed} · "
        f"pending {sum(p['pending'] for p in result.phases.values())} (expected {result.expected_pending})\n"
        f"  longest on_step_end during the fault {result.max_hook_ms_fault:.1f} ms, "
        f"whole run {result.max_hook_ms:.1f} ms"
        f" (limit {HOOK_LIMIT_MS:.0f}); longest step during the fault {result.max_step_ms_fault:.1f} ms\n"
        f"  trainer state afterwards: {result.state!r} (expected {result.expected_state!r})"
    )
    for note in result.notes:
        console.print(f"  {note}")
    for failure in result.failures:
        console.print(f"  FAILED: {failure}")


@contextlib.contextmanager
def stacks(root: Path, short: bool) -> Iterator[tuple[LocalStack, LocalStack | None]]:
    from liveparams_stack.local import free_port
    from liveparams_stack.projects import project_with_auth

    main = LocalStack(root / "stack", free_port(), free_port(), enable_faults=True, stop_with_caller=True)
    short_stack = None
    if short:
        project = project_with_auth(root / "short-project", jwt_expiry=4, refresh_token_reuse_interval=1)
        short_stack = LocalStack(root / "short", free_port(), free_port(), project_dir=project, stop_with_caller=True)
    try:
        main.start()
        if short_stack is not None:
            short_stack.start()
        yield main, short_stack
    finally:
        main.delete()
        if short_stack is not None:
            short_stack.delete()


def main() -> None:
    if sys.argv[1:2] == ["trainer"]:
        trainer_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faults", default=",".join(FAULTS))
    parser.add_argument("--fault-s", type=float, default=60.0)
    parser.add_argument("--partition-s", type=float, default=300.0)
    parser.add_argument("--per-phase", type=int, default=3)
    parser.add_argument("--flood-requests", type=int, default=10_000)
    parser.add_argument("--flood-jobs", type=int, default=100)
    parser.add_argument("--flood-trainers", type=int, default=4)
    parser.add_argument("--flood-s", type=float, default=60.0)
    parser.add_argument("--settle-s", type=float, default=180.0)
    args = parser.parse_args()
    names = [n for n in args.faults.split(",") if n]
    sizes = Sizes(
        fault_s=args.fault_s,
        partition_s=args.partition_s,
        per_phase=args.per_phase,
        settle_s=args.settle_s,
        flood_requests=args.flood_requests,
        flood_jobs=args.flood_jobs,
        flood_trainers=args.flood_trainers,
        flood_s=args.flood_s,
    )
    failed = False
    with tempfile.TemporaryDirectory(prefix="liveparams-faults-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)  # PostgreSQL may run as another OS user
        with stacks(root, "expiry" in names) as (stack, short_stack):
            ctx = Context(stack, stack.api_url, sizes, root, short_api_url=short_stack.api_url if short_stack else None)
            for name in names:
                started = time.monotonic()
                try:
                    result = run_fault(name, ctx)
                except Exception as exc:  # one fault's harness failing must not lose the others' figures
                    print(f"fault {name}: the run failed: {str(exc)[-2000:]}\n", flush=True)
                    failed = True
                    continue
                print_table(result)
                print(f"  ({time.monotonic() - started:.0f} s)\n", flush=True)
                failed |= not (result.passed and result.passed_timing)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
