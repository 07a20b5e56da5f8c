"""What one REST RPC costs the local stack, before and after a change to its REST front (issue 23).

Each variant runs on a fresh local stack: *before*, the stack package of ``--before`` (a git
revision, extracted with ``git archive``), and *after*, this checkout's. Two RPCs the scale
benchmark is made of, each ``--calls`` times:

- ``request_parameter_update`` as the service role (a user's request: an insert, one Realtime change),
  one per job so that no job's pending-request cap is reached;
- ``record_trainer_state`` with a job token (a trainer's heartbeat: an update of the job row).

Each is sent one at a time (latency alone), then ``--concurrency`` at a time (what the front
serves when many callers wait). Reported per variant: RPC p50/p99 (ms, from the client), calls
per second, and CPU per call of the API front process and of PostgreSQL (ms, from /proc), less
what each uses idle over the same time (Realtime's change poller runs all the time). The
variants take turns ``--repeats`` times, each on a fresh stack; each figure is the median of
its repeats (the machine is shared: a single run is noise).

Run: ``python benchmarks/rest_rpc.py [--calls 300] [--concurrency 16] [--repeats 3] [--before REV]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import cpu_seconds, create_jobs, pct, stack_pids

from liveparams.tokens import mint_job_token

ROOT = Path(__file__).resolve().parents[1]

BEFORE = "d111388"  # main before the REST front sent its transaction as one pipeline
WARM_UP = 30
IDLE_S = 3.0  # how long the idle CPU of the front and of PostgreSQL is measured, before the calls


@dataclass
class Figures:
    """One RPC at one concurrency on one variant."""

    rpc: str
    concurrency: int
    p50_ms: float
    p99_ms: float
    per_s: float
    front_cpu_ms: float
    postgres_cpu_ms: float


NUMBERS = [f.name for f in fields(Figures)][2:]


async def timed_calls(
    http: httpx.AsyncClient, calls: list[tuple[str, dict[str, Any], dict[str, str]]], concurrency: int
) -> list[float]:
    """Send ``calls`` (path, body, headers) ``concurrency`` at a time; the time of each in ms."""
    queue = list(reversed(calls))
    times: list[float] = []

    async def caller() -> None:
        while queue:
            path, body, headers = queue.pop()
            begin = time.perf_counter()
            response = await http.post(path, json=body, headers=headers)
            response.raise_for_status()
            times.append((time.perf_counter() - begin) * 1e3)

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return times


def measure(env: dict[str, str], front: list[int], postgres: list[int], opts: argparse.Namespace) -> list[Figures]:
    """Every RPC at concurrency 1 and ``opts.concurrency`` against the stack in ``env``."""
    service = {"apikey": env["SERVICE_ROLE_KEY"], "Authorization": f"Bearer {env['SERVICE_ROLE_KEY']}"}
    rounds = [1, opts.concurrency]
    with psycopg.connect(env["DB_URL"], autocommit=True) as db:
        jobs = create_jobs(db, len(rounds) * (opts.calls + WARM_UP))
    tokens = {job: mint_job_token(job, env["JWT_SECRET"]) for job in jobs}
    front_idle, pg_idle = cpu_seconds(front), cpu_seconds(postgres)
    time.sleep(IDLE_S)
    front_idle, pg_idle = (cpu_seconds(front) - front_idle) / IDLE_S, (cpu_seconds(postgres) - pg_idle) / IDLE_S

    def request(job: str) -> tuple[str, dict[str, Any], dict[str, str]]:
        body = {"p_job_id": job, "p_params": {"learning_rate": 1e-4}}
        return "/rest/v1/rpc/request_parameter_update", body, service

    def heartbeat(job: str) -> tuple[str, dict[str, Any], dict[str, str]]:
        headers = {"apikey": env["ANON_KEY"], "Authorization": f"Bearer {tokens[job]}"}
        return "/rest/v1/rpc/record_trainer_state", {"p_job_id": job, "p_state": "alive", "p_step": None}, headers

    async def run_all() -> list[Figures]:
        figures: list[Figures] = []
        limits = httpx.Limits(max_connections=opts.concurrency)
        async with httpx.AsyncClient(base_url=env["API_URL"], timeout=30, limits=limits) as http:
            for name, make in (("request_parameter_update", request), ("record_trainer_state", heartbeat)):
                unused = iter(jobs)
                for concurrency in rounds:
                    await timed_calls(http, [make(next(unused)) for _ in range(WARM_UP)], concurrency)
                    calls = [make(next(unused)) for _ in range(opts.calls)]
                    front_cpu, pg_cpu = cpu_seconds(front), cpu_seconds(postgres)
                    begin = time.perf_counter()
                    times = await timed_calls(http, calls, concurrency)
                    wall = time.perf_counter() - begin
                    figures.append(
                        Figures(
                            name,
                            concurrency,
                            pct(times, 50),
                            pct(times, 99),
                            len(times) / wall,
                            (cpu_seconds(front) - front_cpu - front_idle * wall) / len(times) * 1e3,
                            (cpu_seconds(postgres) - pg_cpu - pg_idle * wall) / len(times) * 1e3,
                        )
                    )
        return figures

    return asyncio.run(run_all())


def variant(opts: argparse.Namespace) -> None:
    """In a process whose ``liveparams_stack`` is the variant's: start a stack, measure, print JSON."""
    from liveparams_stack.local import LocalStack, free_port

    api_port, db_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp).chmod(0o755)  # PostgreSQL runs as its own OS user and must reach the state directory
        with LocalStack(Path(tmp) / "stack", api_port, db_port, project_dir=ROOT, stop_with_caller=True) as stack:
            postmaster = int((Path(tmp) / "stack" / "postgres" / "postmaster.pid").read_text().split()[0])
            everything = stack_pids(api_port, postmaster)
            front = [pid for pid in everything if b"serve" in Path(f"/proc/{pid}/cmdline").read_bytes()]
            postgres = [pid for pid in everything if pid not in front]
            figures = measure(stack.env(), front, postgres, opts)
    print(json.dumps([asdict(f) for f in figures]))


def median_of(repeats: list[Figures]) -> Figures:
    """Each figure's median over the repeats of one RPC at one concurrency."""
    first = repeats[0]
    medians = [statistics.median(getattr(f, name) for f in repeats) for name in NUMBERS]
    return Figures(first.rpc, first.concurrency, *medians)


def run_variant(stack_dir: Path, opts: argparse.Namespace) -> list[Figures]:
    argv = [sys.executable, __file__, "--variant", "--calls", str(opts.calls), "--concurrency", str(opts.concurrency)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(stack_dir), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(argv, env=env, check=True, capture_output=True, text=True)
    return [Figures(**f) for f in json.loads(done.stdout.strip().splitlines()[-1])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300, help="calls of each RPC at each concurrency")
    parser.add_argument("--concurrency", type=int, default=16, help="calls in flight in the concurrent round")
    parser.add_argument("--repeats", type=int, default=3, help="turns of each variant (medians are reported)")
    parser.add_argument("--before", default=BEFORE, help=f"git revision of the 'before' stack (default {BEFORE})")
    parser.add_argument("--variant", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.variant:
        variant(opts)
        return
    runs: dict[str, list[list[Figures]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        variants = {"after (this checkout)": ROOT / "stack"}
        if opts.before:
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", opts.before, "stack"], check=True, capture_output=True
            )
            subprocess.run(["tar", "-x", "-C", scratch], input=archive.stdout, check=True)
            variants = {f"before ({opts.before})": Path(scratch) / "stack", **variants}
        for _ in range(opts.repeats):
            for label, stack_dir in variants.items():
                runs.setdefault(label, []).append(run_variant(stack_dir, opts))
    results = {label: [median_of(list(same)) for same in zip(*repeats, strict=True)] for label, repeats in runs.items()}
    print("| RPC, calls in flight | variant | p50 / p99 (ms) | calls/s | API front CPU per call (ms) |"
          " PostgreSQL CPU per call (ms) |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|")
    for index in range(len(next(iter(results.values())))):
        for label, figures in results.items():
            f = figures[index]
            print(
                f"| `{f.rpc}`, {f.concurrency} | {label} | {f.p50_ms:.1f} / {f.p99_ms:.1f} | {f.per_s:.0f} |"
                f" {f.front_cpu_ms:.2f} | {f.postgres_cpu_ms:.2f} |"
            )
    print(f"medians of {opts.repeats} turns; load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
