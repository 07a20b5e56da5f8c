"""What live metrics cost: time per training step with them on vs off, and what a job stores as it grows.

Three tables:

1. What the training thread pays per ``on_log``: Trainer's ``CallbackHandler.on_log`` dispatch with
   the callback and an ``UpdateAgent`` whose metrics are off vs on (on: the point is filtered and
   appended to the agent's bounded queue; the agent thread sends it later). Median of 5 repeats.
2. Time per step of a tiny Trainer run on CPU that logs every step (``logging_steps=1``), with the
   real ``UpdateAgent`` on a local stack as the callback's source: metrics off
   (``AgentConfig(metrics=False)``) and on (points queued on the training thread, broadcast every
   second and stored every 10 s by the agent thread). The variants alternate, best of the repeats.
   Wall time, and the CPU time of this process (training thread, torch's threads and the agent
   thread): on a shared machine the local stack's own work for each message (a process beside
   the training, here; Supabase's servers in production) shows in wall time, not in CPU time.
3. Rows and bytes a job stores after 1,000 and 100,000 logged steps (four metrics a point), written
   through ``record_training_metrics`` as the agent would (at most 1,000 points a call); the table
   keeps at most ``liveparams_max_metric_rows()`` rows per job, so both cost the same.

Run: ``python benchmarks/metrics_overhead.py`` (a few minutes on 2 cores; a local stack is started
unless ``SUPABASE_URL``, ``SUPABASE_DB_URL`` and ``SUPABASE_JWT_SECRET`` are set).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
import timeit
import uuid
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx
import psycopg
from agent_latency import stack_env
from rich.console import Console
from rich.table import Table
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    DataCollatorForLanguageModeling,
    Trainer,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)
from transformers.trainer_callback import CallbackHandler, DefaultFlowCallback

from liveparams import RuntimeParameterCallback
from liveparams.agent import AgentConfig, UpdateAgent
from liveparams.demo.tiny import sft_dataset, tiny_model_dir
from liveparams.tokens import mint_job_token

POINTS_PER_CALL = 1000
LOG_CALLS = 20_000
LOGS = {"loss": 2.31, "grad_norm": 1.12, "learning_rate": 5e-5, "epoch": 0.25}


def on_log_cost_us(metrics: bool | None) -> float:
    """Median µs per ``on_log`` dispatch: defaults only (None), or with the callback and an agent.

    The agent points at a port nothing listens on: its thread runs (and fails to send, quietly),
    which is what the training thread shares the process with; the queue stays bounded.
    """
    args = TrainingArguments(output_dir=tempfile.mkdtemp(prefix="liveparams-bench-"), report_to=[])
    state, control = TrainerState(global_step=1, max_steps=10**9), TrainerControl()
    callbacks: list[Any] = []
    agent = None
    if metrics is not None:
        job_id = str(uuid.uuid4())
        agent = UpdateAgent(AgentConfig(job_id=job_id, url="http://127.0.0.1:9", key="benchmark-key", metrics=metrics))
        callbacks.append(RuntimeParameterCallback(agent))
    handler = CallbackHandler([DefaultFlowCallback, *callbacks], None, None, None, None)
    for callback in callbacks:
        callback.on_train_begin(args, state, control)
    runs = timeit.repeat(lambda: handler.on_log(args, state, control, dict(LOGS)), number=LOG_CALLS, repeat=5)
    if agent is not None:
        agent.close(0.5)
    return statistics.median(runs) / LOG_CALLS * 1e6


def new_job(db: Any) -> str:
    row = db.execute("insert into public.local_training_jobs (status) values ('running') returning id").fetchone()
    return str(row[0])


def step_times_ms(env: dict[str, str], db: Any, steps: int, repeats: int) -> dict[str, tuple[float, float]]:
    """Best over repeats of the mean (wall, process CPU) ms per step, metrics off and on, alternating."""
    model_dir, out = tiny_model_dir(), tempfile.mkdtemp(prefix="liveparams-bench-")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    data = sft_dataset(64).map(lambda row: tokenizer(row["text"]), remove_columns=["text"])
    args = TrainingArguments(
        output_dir=out,
        max_steps=steps,
        per_device_train_batch_size=4,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
    )
    times: dict[str, list[tuple[float, float]]] = {"metrics off": [], "metrics on": []}
    schedule = [("warm-up", False)] + [(name, name == "metrics on") for _ in range(repeats) for name in times]
    for name, metrics in schedule:
        job_id = new_job(db)
        key = mint_job_token(job_id, env["JWT_SECRET"])
        agent = UpdateAgent(AgentConfig(job_id=job_id, url=env["API_URL"], key=key, metrics=metrics))
        trainer = Trainer(
            model=AutoModelForCausalLM.from_pretrained(model_dir),
            args=args,
            train_dataset=data,
            data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
            callbacks=[RuntimeParameterCallback(agent)],
        )
        start, cpu = time.perf_counter(), time.process_time()
        trainer.train()
        if name in times:
            wall_ms, cpu_ms = (time.perf_counter() - start) / steps * 1e3, (time.process_time() - cpu) / steps * 1e3
            times[name].append((wall_ms, cpu_ms))
    return {name: (min(w for w, _ in values), min(c for _, c in values)) for name, values in times.items()}


def stored(db: Any, job_id: str) -> tuple[int, int]:
    """Rows of the job, and their bytes (heap tuples as PostgreSQL stores them, TOAST included)."""
    row = db.execute(
        "select count(*), coalesce(sum(pg_column_size(m.*)), 0) from public.training_metrics m where job_id = %s",
        (job_id,),
    ).fetchone()
    return int(row[0]), int(row[1])


def storage(env: dict[str, str], db: Any, sizes: list[int]) -> dict[int, tuple[int, int, float]]:
    """Per size: rows, bytes, and the mean ms of one write call, after that many logged steps."""
    results: dict[int, tuple[int, int, float]] = {}
    with httpx.Client(base_url=env["API_URL"], timeout=60) as http:
        for size in sizes:
            job_id = new_job(db)
            token = mint_job_token(job_id, env["JWT_SECRET"])
            headers = {"apikey": token, "Authorization": f"Bearer {token}"}
            calls: list[float] = []
            for first in range(1, size + 1, POINTS_PER_CALL):
                points = [
                    {"step": s, "metrics": {"loss": 1 / s, "learning_rate": 1e-3, "grad_norm": 0.5, "epoch": s / 1000}}
                    for s in range(first, min(first + POINTS_PER_CALL, size + 1))
                ]
                began = time.perf_counter()
                body = {"p_job_id": job_id, "p_points": points}
                response = http.post("/rest/v1/rpc/record_training_metrics", json=body, headers=headers)
                calls.append((time.perf_counter() - began) * 1e3)
                response.raise_for_status()
            rows, size_bytes = stored(db, job_id)
            results[size] = (rows, size_bytes, sum(calls[-10:]) / len(calls[-10:]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150, help="steps of each timed run")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per variant")
    parser.add_argument("--sizes", default="1000,100000", help="logged steps of the stored jobs")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    logging.getLogger("liveparams").setLevel(logging.CRITICAL)  # the unreachable agents of table 1 say so
    hooks = Table(title=f"on_log dispatch (what the training thread pays), median of 5 x {LOG_CALLS} calls")
    hooks.add_column("callbacks")
    hooks.add_column("µs / log", justify="right")
    costs = {label: on_log_cost_us(metrics) for label, metrics in (("defaults", None), ("off", False), ("on", True))}
    hooks.add_row("Trainer defaults only", f"{costs['defaults']:.2f}")
    hooks.add_row("+ callback and agent, metrics off", f"{costs['off']:.2f}")
    hooks.add_row("+ callback and agent, metrics on", f"{costs['on']:.2f}")
    hooks.add_row("metrics on − off", f"{costs['on'] - costs['off']:+.2f}")

    with stack_env() as env, psycopg.connect(env["DB_URL"], autocommit=True) as db:
        measured = step_times_ms(env, db, args.steps, args.repeats)
        grown = storage(env, db, sizes)

    runs = Table(title=f"tiny Trainer run, CPU, logging every step, {args.steps} steps, best of {args.repeats}")
    runs.add_column("run")
    runs.add_column("wall ms / step", justify="right")
    runs.add_column("process CPU ms / step", justify="right")
    (off, off_cpu), (on, on_cpu) = measured["metrics off"], measured["metrics on"]
    runs.add_row("callback + agent, metrics off", f"{off:.1f}", f"{off_cpu:.1f}")
    runs.add_row("callback + agent, metrics on", f"{on:.1f}", f"{on_cpu:.1f}")
    runs.add_row(
        "difference",
        f"{on - off:+.1f} ({(on / off - 1) * 100:+.1f} %)",
        f"{on_cpu - off_cpu:+.1f} ({(on_cpu / off_cpu - 1) * 100:+.1f} %)",
    )

    rows = Table(title="stored per job (record_training_metrics, 1,000 points a call)")
    for column in ("logged steps", "rows", "bytes", "ms / write (last 10)"):
        rows.add_column(column, justify="right")
    for size, (count, size_bytes, write_ms) in grown.items():
        rows.add_row(f"{size:,}", f"{count:,}", f"{size_bytes:,}", f"{write_ms:.1f}")

    console = Console()
    console.print(hooks)
    console.print(runs)
    console.print(rows)


if __name__ == "__main__":
    main()
