"""How long a request takes to reach the agent's queue.

Two measurements, printed as one table, and how long ``close()`` of the subscribed agent took:

- **frame → queue** (goal p99 ≤ 1 ms): the agent's Realtime callback fed the payload dicts the
  official client hands it, each the INSERT of one request row, timed until the request is on
  the queue. Also the cost of a duplicate event (a held event released late, or one a re-read took).
- **commit → queue** (goal p99 ≤ 50 ms): on the local stack (or the one ``SUPABASE_URL`` etc.
  point to, see ``--help``), a request is committed through the RPC in PostgreSQL and timed until
  ``drain()`` returns it, through wal2json, the Realtime server, the official client and the agent.

Run: ``python benchmarks/agent_latency.py [--frames 5000] [--commits 200]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "agent"))  # the tests' payload builder

from realtime_payloads import postgres_change, request_row

from liveparams.agent import AgentConfig, UpdateAgent
from liveparams.agent._intake import Intake


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(x for x in samples_ms if x == x)  # NaN: a request whose callback was not seen
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"n": len(ordered), "p50": q[49], "p90": q[89], "p99": q[98], "max": ordered[-1]}


def bench_frames(n: int) -> tuple[list[float], list[float]]:
    """Return (new request → queued, duplicate event) durations in ms."""
    intake = Intake(queue_size=1024, max_request_bytes=4096, reject=lambda outcome: None, resync=lambda: None)
    intake.ingest_read({"latest_seq": 0, "requests": []}, limit=500)
    adding = [postgres_change(request_row(f"r{i}", i + 1, {"learning_rate": 1e-4 / (1 + i % 7)})) for i in range(n)]
    new, noop = [], []
    for payload in adding:
        start = time.perf_counter_ns()
        intake.on_change(payload)
        intake.queue.get_nowait()
        new.append((time.perf_counter_ns() - start) / 1e6)
        start = time.perf_counter_ns()
        intake.on_change(payload)  # the same row again: a duplicate
        noop.append((time.perf_counter_ns() - start) / 1e6)
    return new, noop


@contextmanager
def stack_env() -> Iterator[dict[str, str]]:
    """An API URL, DB URL and JWT secret: from the environment, or a fresh local stack."""
    if all(os.environ.get(k) for k in ("SUPABASE_URL", "SUPABASE_DB_URL", "SUPABASE_JWT_SECRET")):
        yield {
            "API_URL": os.environ["SUPABASE_URL"],
            "DB_URL": os.environ["SUPABASE_DB_URL"],
            "JWT_SECRET": os.environ["SUPABASE_JWT_SECRET"],
        }
        return
    from liveparams_stack.local import LocalStack, free_port

    api_port, db_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp).chmod(0o755)  # PostgreSQL runs as its own OS user and must reach the state directory
        with LocalStack(Path(tmp) / "stack", api_port, db_port, stop_with_caller=True) as stack:
            yield stack.env()


def bench_commits(n: int, spacing_s: float) -> tuple[list[float], list[float], float]:
    """Return (commit → Realtime callback, commit → drain()) durations and the final close() in ms.

    The callback time is taken by wrapping the agent's own callback before start (the clients are
    not touched), which splits the latency into the server's part and the agent's part.
    """
    import psycopg

    from liveparams.tokens import mint_job_token

    with stack_env() as env, psycopg.connect(env["DB_URL"], autocommit=True) as db:
        row = db.execute("insert into public.local_training_jobs (status) values ('running') returning id").fetchone()
        assert row is not None
        job_id = str(row[0])
        agent = UpdateAgent(
            AgentConfig(job_id=job_id, url=env["API_URL"], key=mint_job_token(job_id, env["JWT_SECRET"]))
        )
        callbacks: list[float] = []
        intake = agent._worker.intake
        handler = intake.on_change

        def timed(payload: Mapping[str, Any]) -> None:
            callbacks.append(time.perf_counter())
            handler(payload)

        intake.on_change = timed  # type: ignore[method-assign]
        with agent:
            if not agent.wait_ready(30):
                raise SystemExit("the agent did not subscribe within 30 s")
            to_callback, to_queue = [], []
            for i in range(n):
                with db.transaction():
                    db.execute(
                        "select set_config('request.jwt.claims', %s, true)", (json.dumps({"role": "service_role"}),)
                    )
                    db.execute(
                        "select public.request_parameter_update(%s, %s::jsonb)",
                        (job_id, json.dumps({"learning_rate": 1e-4 / (1 + i % 7)})),
                    )
                seen = len(callbacks)
                committed = time.perf_counter()
                while not agent.drain():
                    if time.perf_counter() - committed > 10:
                        raise SystemExit(f"request {i} did not arrive within 10 s")
                    time.sleep(0.0002)
                to_queue.append((time.perf_counter() - committed) * 1e3)
                to_callback.append((callbacks[seen] - committed) * 1e3 if len(callbacks) > seen else float("nan"))
                time.sleep(spacing_s)
            closing = time.perf_counter()
            agent.close()
            close_ms = (time.perf_counter() - closing) * 1e3
        db.execute("delete from public.local_training_jobs where id = %s", (job_id,))
    return to_callback, to_queue, close_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=5000, help="callback invocations to time")
    parser.add_argument("--commits", type=int, default=200, help="requests to commit on the stack (0 to skip)")
    parser.add_argument("--spacing", type=float, default=0.02, help="seconds between commits")
    args = parser.parse_args()

    rows: list[tuple[str, dict[str, float], float | None]] = []
    new, noop = bench_frames(args.frames)
    rows.append(("frame → queue (new request)", percentiles(new), 1.0))
    rows.append(("frame → nothing (a duplicate event)", percentiles(noop), None))
    if args.commits:
        to_callback, to_queue, close_ms = bench_commits(args.commits, args.spacing)
        agent_part = [q - c for q, c in zip(to_queue, to_callback, strict=True)]
        rows.append(("commit → agent callback (server's part)", percentiles(to_callback), None))
        rows.append(("agent callback → drain() (agent's part)", percentiles(agent_part), None))
        rows.append(("commit → queue (local stack, end to end)", percentiles(to_queue), 50.0))

    print(f"{'measurement':44} {'n':>6} {'p50 ms':>9} {'p90 ms':>9} {'p99 ms':>9} {'max ms':>9}  goal")
    for name, p, goal in rows:
        verdict = "" if goal is None else f"p99 ≤ {goal:g} ms: {'met' if p['p99'] <= goal else 'MISSED'}"
        print(f"{name:44} {p['n']:>6} {p['p50']:>9.3f} {p['p90']:>9.3f} {p['p99']:>9.3f} {p['max']:>9.3f}  {verdict}")
    if args.commits:
        budget_ms = AgentConfig.shutdown_timeout * 1e3
        verdict = "met" if close_ms <= budget_ms else "MISSED"
        print(f"close() of a subscribed agent: {close_ms:.1f} ms (budget shutdown_timeout {budget_ms:g} ms: {verdict})")


if __name__ == "__main__":
    main()
