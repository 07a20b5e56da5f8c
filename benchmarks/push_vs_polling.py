"""The old polling design against liveparams, side by side, on one local stack and the same training.

Both designs train the tiny model (``liveparams.demo.tiny``) with the same SFT config (linear
schedule with warmup, as the demo) for ``--steps`` optimizer steps, each step made
``--step-time`` seconds longer by a sleeping callback so that wall-clock figures mean
something. Meanwhile a scripted user, as the job's owner, asks for new learning rates through
the ``request_parameter_update`` RPC at known steps — two of them between two polls. Each request
is ``{"learning_rate": x, "learning_rate_mode": "constant"}``: "use x from now on", which is
what a user of the old design meant, so "the new LR is in force" is simply "the optimizer used x".

- **polling (seed design)**: a faithful re-implementation of the seed's
  ``RuntimeParameterUpdateCallback``: every 10 steps, in ``on_step_end``, a blocking REST GET
  of the row with the service-role key; the latest entry is taken if its ``requested_at`` is
  newer than the last one applied, and ``param_groups[i]['lr']`` is written directly.
- **liveparams**: ``RuntimeParameterCallback.from_env(trainer)`` with a job-scoped token.

Measured per design: request commit (RPC returned) → first optimizer step that used the new
rate, in ms and steps; how many steps the rate stayed in force and what ended it; requests
lost; mean step time and time spent inside the design's ``on_step_end``; whether outcomes were
written back to the row.

Run: ``python benchmarks/push_vs_polling.py [--steps 200] [--step-time 0.1]`` (starts a
throw-away local stack; about a minute with the defaults).
"""

from __future__ import annotations

import argparse
import itertools
import logging
import math
import os
import statistics
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from datasets.utils.logging import disable_progress_bar as disable_datasets_progress_bar
from rich.console import Console
from rich.table import Table
from transformers import TrainerCallback
from transformers.utils import logging as hf_logging

from liveparams import RuntimeParameterCallback
from liveparams.demo.tiny import demo_sft_trainer, tiny_model_dir
from liveparams.tokens import mint_job_token
from liveparams_stack import LocalStack
from liveparams_stack.keys import ANON_KEY, JWT_SECRET, SERVICE_ROLE_KEY
from liveparams_stack.users import create_user

TABLE = "local_training_jobs"
REQUESTS = "parameter_update_requests"
POLL_INTERVAL = 10  # the seed's check_interval
# (fraction of the run, step offset past a multiple of 10, learning rate). The pair shares a fraction:
# both land between the same two polls, so the old design sees only the second.
PLAN = ((0.10, 1, 2e-3), (0.35, 5, 5e-4), (0.60, 2, 8e-4), (0.60, 6, 3e-4), (0.85, 8, 1.5e-3))

logger = logging.getLogger("push_vs_polling")


# ---- the scripted user ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedRequest:
    step: int  # sent as soon as this many optimizer steps are done
    learning_rate: float


@dataclass
class SentRequest:
    planned: PlannedRequest
    request_id: str
    committed_at: float  # time.monotonic() when the RPC returned: the commit is no later
    step_at_commit: int  # optimizer steps done at that moment


def plan_requests(steps: int) -> list[PlannedRequest]:
    return [PlannedRequest(round(f * steps / POLL_INTERVAL) * POLL_INTERVAL + off, lr) for f, off, lr in PLAN]


class ScriptedUser(threading.Thread):
    """Makes the planned requests through the RPC as the job's owner, at the planned steps."""

    def __init__(
        self, api_url: str, owner_jwt: str, job_id: str, plan: list[PlannedRequest], steps_done: Callable[[], int]
    ) -> None:
        super().__init__(name="scripted-user", daemon=True)
        self.http = httpx.Client(
            base_url=api_url, headers={"apikey": ANON_KEY, "Authorization": f"Bearer {owner_jwt}"}, timeout=10
        )
        self.job_id, self.plan, self.steps_done = job_id, plan, steps_done
        self.sent: list[SentRequest] = []
        self.finished = threading.Event()  # set by the driver when training ends
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            for planned in self.plan:
                while self.steps_done() < planned.step:
                    if self.finished.wait(0.002):
                        return
                params = {"learning_rate": planned.learning_rate, "learning_rate_mode": "constant"}
                response = self.http.post(
                    "/rest/v1/rpc/request_parameter_update", json={"p_job_id": self.job_id, "p_params": params}
                )
                committed_at, step = time.monotonic(), self.steps_done()
                response.raise_for_status()
                self.sent.append(SentRequest(planned, response.json()["id"], committed_at, step))
        except Exception as exc:
            self.error = exc
        finally:
            self.http.close()


# ---- the training side ---------------------------------------------------------------------------


class StepRecorder(TrainerCallback):
    """Paces each step by ``step_time`` and records the learning rate every optimizer step used, and when."""

    def __init__(self, step_time: float) -> None:
        self.step_time = step_time
        self.steps_done = 0
        self.lr_used: dict[int, float] = {}
        self.used_at: dict[int, float] = {}

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        time.sleep(self.step_time)  # the forward/backward a real model would spend

    def on_optimizer_step(self, args: Any, state: Any, control: Any, optimizer: Any = None, **kwargs: Any) -> None:
        # After optimizer.step(), before the scheduler steps: the rate this step (global_step + 1) used.
        self.lr_used[state.global_step + 1] = float(optimizer.param_groups[0]["lr"])
        self.used_at[state.global_step + 1] = time.monotonic()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.steps_done = state.global_step


class SeedPollingCallback(TrainerCallback):
    """The seed's ``RuntimeParameterUpdateCallback``, as its write-up describes it (reference only)."""

    def __init__(self, job_id: str, supabase_url: str, supabase_key: str, check_interval: int = POLL_INTERVAL):
        self.job_id = job_id
        self.check_interval = check_interval
        self.last_applied_update: datetime | None = None
        self.supabase_url = supabase_url
        self.supabase_key = supabase_key

    def _check_for_parameter_updates(self) -> dict[str, Any] | None:
        # The seed read the last entry of the row's array; on today's schema that is the job's latest request row.
        response = httpx.get(
            f"{self.supabase_url}/rest/v1/{REQUESTS}",
            params={"job_id": f"eq.{self.job_id}", "select": "params,requested_at", "order": "seq.desc", "limit": "1"},
            headers={"apikey": self.supabase_key, "Authorization": f"Bearer {self.supabase_key}"},
            timeout=10,
        )
        response.raise_for_status()
        rows = response.json()
        if not rows:
            return None
        latest: dict[str, Any] = {**rows[0]["params"], "requested_at": rows[0]["requested_at"]}
        requested_at = datetime.fromisoformat(latest["requested_at"].replace("Z", "+00:00"))
        if self.last_applied_update is not None and requested_at <= self.last_applied_update:
            return None  # already applied
        logger.info("New parameter update found: %s", latest)
        self.last_applied_update = requested_at
        return latest

    def _apply_parameter_updates(self, updates: dict[str, Any], optimizer: Any) -> None:
        if "learning_rate" in updates and optimizer:
            new_lr = float(updates["learning_rate"])
            if new_lr <= 0:
                logger.error("Invalid learning rate: must be positive")
                return
            old_lr = optimizer.param_groups[0]["lr"]
            for param_group in optimizer.param_groups:
                param_group["lr"] = new_lr  # the naive change: the next scheduler.step() overwrites it
            logger.info("✅ Applied learning rate update: %.2e → %.2e", old_lr, new_lr)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step % self.check_interval != 0:
            return
        try:
            updates = self._check_for_parameter_updates()
            if updates:
                self._apply_parameter_updates(updates, kwargs.get("optimizer"))
        except Exception as exc:
            logger.error("Error processing updates: %s", exc)


def time_on_step_end(callback: TrainerCallback, spent: dict[int, float]) -> TrainerCallback:
    """Wrap the callback's ``on_step_end`` (Trainer looks it up per call) to record seconds spent, per step."""
    hook = callback.on_step_end

    def timed(args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return hook(args, state, control, **kwargs)
        finally:
            spent[state.global_step] = time.perf_counter() - start

    callback.on_step_end = timed  # type: ignore[method-assign]
    return callback


def train(output: str, steps: int, recorder: StepRecorder, design: Callable[[Any], TrainerCallback]) -> TrainerCallback:
    """One run with the demo's SFT config; ``design`` builds the update callback from the trainer."""
    trainer = demo_sft_trainer(output, steps, callbacks=[recorder], logging_steps=10)
    callback = design(trainer)
    trainer.add_callback(callback)
    trainer.train()
    return callback


# ---- one design, end to end ----------------------------------------------------------------------


@dataclass
class DesignRun:
    name: str
    sent: list[SentRequest]
    lr_used: dict[int, float]
    used_at: dict[int, float]
    hook_s: dict[int, float]
    outcomes: dict[str, Any]  # what the row says, by request id


@dataclass(frozen=True)
class Bench:
    api_url: str
    owner_jwt: str
    steps: int
    step_time: float
    workdir: str


def run_design(bench: Bench, name: str, job_id: str, design: Callable[[Any], TrainerCallback]) -> DesignRun:
    recorder = StepRecorder(bench.step_time)
    user = ScriptedUser(bench.api_url, bench.owner_jwt, job_id, plan_requests(bench.steps), lambda: recorder.steps_done)
    hook_s: dict[int, float] = {}
    user.start()
    try:
        train(str(Path(bench.workdir) / name), bench.steps, recorder, lambda t: time_on_step_end(design(t), hook_s))
    finally:
        user.finished.set()
        user.join(15)
    if user.error is not None:
        raise RuntimeError(f"the scripted user failed in the {name} run") from user.error
    return DesignRun(name, user.sent, recorder.lr_used, recorder.used_at, hook_s, read_outcomes(bench, job_id))


def service_headers() -> dict[str, str]:
    return {"apikey": SERVICE_ROLE_KEY, "Authorization": f"Bearer {SERVICE_ROLE_KEY}"}


def read_outcomes(bench: Bench, job_id: str) -> dict[str, Any]:
    """The outcomes recorded on the job's requests, by request id (the old design records none)."""
    response = httpx.get(
        f"{bench.api_url}/rest/v1/{REQUESTS}",
        params={"job_id": f"eq.{job_id}", "status": "not.is.null", "select": "id,status,step,changes,reason"},
        headers=service_headers(),
        timeout=10,
    )
    response.raise_for_status()
    return {row["id"]: row for row in response.json()}


def create_owner_and_jobs(api_url: str, names: list[str]) -> tuple[str, dict[str, str]]:
    """An owner (made by the Auth admin API) with one running job per design; returns its JWT and the jobs."""
    owner_id, owner_jwt = create_user(api_url, "bench@liveparams.test")
    jobs = {}
    for name in names:
        response = httpx.post(
            f"{api_url}/rest/v1/{TABLE}",
            json={"user_id": owner_id, "status": "running", "name": f"push vs polling: {name}"},
            headers={**service_headers(), "Prefer": "return=representation"},
            timeout=10,
        )
        response.raise_for_status()
        jobs[name] = str(response.json()[0]["id"])
    return owner_jwt, jobs


# ---- analysis ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestResult:
    latency_ms: float | None  # None: the rate was never used
    latency_steps: int | None
    in_force: int  # consecutive steps that used the rate
    ended_by: str  # "scheduler", "next request", "end of run", or "" when never used
    recorded: bool  # an outcome for it is on the row


def analyse(run: DesignRun, steps: int) -> list[RequestResult]:
    requested = {s.planned.learning_rate for s in run.sent}
    results = []
    for sent in run.sent:
        lr = sent.planned.learning_rate
        recorded = sent.request_id in run.outcomes
        used = [s for s in range(sent.step_at_commit + 1, steps + 1) if math.isclose(run.lr_used.get(s, 0.0), lr)]
        if not used:
            results.append(RequestResult(None, None, 0, "", recorded))
            continue
        first = last = used[0]
        while last + 1 <= steps and math.isclose(run.lr_used.get(last + 1, 0.0), lr):
            last += 1
        if last == steps:
            ended_by = "end of run"
        elif any(math.isclose(run.lr_used[last + 1], other) for other in requested - {lr}):
            ended_by = "next request"
        else:
            ended_by = "scheduler"
        latency_ms = (run.used_at[first] - sent.committed_at) * 1000
        results.append(RequestResult(latency_ms, first - sent.step_at_commit, last - first + 1, ended_by, recorded))
    return results


@dataclass(frozen=True)
class Summary:
    latency_ms: list[float]
    latency_steps: list[int]
    in_force: list[int]
    ended_by_scheduler: int
    lost: int
    recorded: int
    sent: int
    mean_step_ms: float
    median_step_ms: float
    hook_mean_ms: float
    hook_max_ms: float
    hook_typical_ms: float  # median over poll steps (seed) or over all steps (liveparams: an empty drain)


def summarise(run: DesignRun, steps: int, work_every: int) -> Summary:
    """``work_every``: the steps at which the design's hook does its routine work (the seed: a poll every 10)."""
    results = analyse(run, steps)
    used = [r for r in results if r.latency_ms is not None]
    times = [run.used_at[s] for s in sorted(run.used_at)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    hooks = list(run.hook_s.values())
    typical = [t for s, t in run.hook_s.items() if s % work_every == 0]
    return Summary(
        latency_ms=[r.latency_ms for r in used if r.latency_ms is not None],
        latency_steps=[r.latency_steps for r in used if r.latency_steps is not None],
        in_force=[r.in_force for r in used],
        ended_by_scheduler=sum(r.ended_by == "scheduler" for r in used),
        lost=sum(r.latency_ms is None and not r.recorded for r in results),
        recorded=sum(r.recorded for r in results),
        sent=len(results),
        mean_step_ms=statistics.mean(gaps) * 1000,
        median_step_ms=statistics.median(gaps) * 1000,
        hook_mean_ms=statistics.mean(hooks) * 1000,
        hook_max_ms=max(hooks) * 1000,
        hook_typical_ms=statistics.median(typical) * 1000,
    )


def p50_max(values: list[float] | list[int]) -> str:
    if not values:
        return "–"
    return f"{statistics.median(values):.0f} / {max(values):.0f}"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.0f}×" if b > 0 else "–"


def render(console: Console, polling: Summary, push: Summary, args: argparse.Namespace) -> None:
    table = Table(
        title=f"{args.steps} steps, +{args.step_time * 1000:.0f} ms simulated per step, "
        f"{polling.sent} learning-rate requests per design (two between two polls)"
    )
    table.add_column("", no_wrap=True)
    table.add_column(f"polling every {POLL_INTERVAL} steps (seed)", justify="right")
    table.add_column("liveparams (push)", justify="right")
    table.add_column("polling / liveparams", justify="right")

    def in_force(s: Summary) -> str:
        return f"{min(s.in_force, default=0)} / {max(s.in_force, default=0)}" if s.in_force else "–"

    table.add_row(
        "commit → new LR first used, ms (p50/max)",
        p50_max(polling.latency_ms),
        p50_max(push.latency_ms),
        ratio(statistics.median(polling.latency_ms), statistics.median(push.latency_ms))
        if polling.latency_ms and push.latency_ms
        else "–",
    )
    table.add_row(
        "… in steps after the commit (p50/max)",
        p50_max(polling.latency_steps),
        p50_max(push.latency_steps),
        "",
    )
    table.add_row("steps the new LR stayed in force (min/max)", in_force(polling), in_force(push), "")
    table.add_row(
        "… ended by the LR scheduler overwriting it",
        f"{polling.ended_by_scheduler} of {len(polling.in_force)}",
        f"{push.ended_by_scheduler} of {len(push.in_force)}",
        "",
    )
    table.add_row("requests lost", f"{polling.lost} of {polling.sent}", f"{push.lost} of {push.sent}", "")
    table.add_row(
        "training step, ms (mean/median)",
        f"{polling.mean_step_ms:.1f} / {polling.median_step_ms:.1f}",
        f"{push.mean_step_ms:.1f} / {push.median_step_ms:.1f}",
        "",
    )
    table.add_row(
        "in the design's on_step_end, ms/step (mean)",
        f"{polling.hook_mean_ms:.3f}",
        f"{push.hook_mean_ms:.3f}",
        ratio(polling.hook_mean_ms, push.hook_mean_ms),
    )
    table.add_row(
        "… a poll's GET vs an empty drain, ms (median)",
        f"{polling.hook_typical_ms:.2f}",
        f"{push.hook_typical_ms:.3f}",
        ratio(polling.hook_typical_ms, push.hook_typical_ms),
    )
    table.add_row("… longest on_step_end, ms", f"{polling.hook_max_ms:.1f}", f"{push.hook_max_ms:.1f}", "")
    table.add_row(
        "outcome written back to the row",
        f"{'yes' if polling.recorded == polling.sent else 'no'} ({polling.recorded} of {polling.sent})",
        f"{'yes' if push.recorded == push.sent else 'no'} ({push.recorded} of {push.sent})",
        "",
    )
    console.print(table)
    console.print(
        "commit = the RPC returned (the commit is no later); first used = the optimizer step that used the new rate. "
        "liveparams' longest on_step_end is a step where it applied a request and queued its outcome; "
        "the seed's is a step with a poll (a blocking GET)."
    )


# ---- main ----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="optimizer steps per design (at least 60)")
    parser.add_argument("--step-time", type=float, default=0.1, help="seconds of simulated compute added per step")
    args = parser.parse_args()
    if args.steps < 60:
        parser.error("--steps must be at least 60 (the requests are spread over the run)")

    console = Console()
    if not console.is_terminal:
        console.width = 130  # a piped table keeps one line per row
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("ignore")
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    disable_datasets_progress_bar()
    tiny_model_dir()  # built once, before anything is timed

    with tempfile.TemporaryDirectory(prefix="liveparams-push-vs-polling-") as root:
        Path(root).chmod(0o755)  # PostgreSQL runs as the `postgres` user when this runs as root
        with LocalStack.on_free_ports(Path(root) / "stack", stop_with_caller=True) as stack:
            owner_jwt, jobs = create_owner_and_jobs(stack.api_url, ["polling", "liveparams"])
            bench = Bench(stack.api_url, owner_jwt, args.steps, args.step_time, root)

            console.print(f"[bold]polling (seed design)[/]: {args.steps} steps …")
            seed_job = jobs["polling"]
            polling = run_design(
                bench, "polling", seed_job, lambda _: SeedPollingCallback(seed_job, stack.api_url, SERVICE_ROLE_KEY)
            )

            console.print(f"[bold]liveparams[/]: {args.steps} steps …")
            os.environ.update(
                JOB_ID=jobs["liveparams"],
                SUPABASE_URL=stack.api_url,
                SUPABASE_ANON_KEY=ANON_KEY,
                LIVEPARAMS_TOKEN=mint_job_token(jobs["liveparams"], JWT_SECRET),
            )
            push = run_design(bench, "liveparams", jobs["liveparams"], RuntimeParameterCallback.from_env)

    render(console, summarise(polling, args.steps, POLL_INTERVAL), summarise(push, args.steps, 1), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
