"""What close() does with a burst of outcomes still pending: how long it takes and where they end up.

A burst of requests decided at the last step boundaries before train end (a job may hold up to
``liveparams_max_pending_requests()``, 1000, undecided): for each size, a fresh job on the local stack
(or the one ``SUPABASE_URL`` etc. point to) gets that many requests; an agent with the default
configuration drains them all, reports them all applied, records ``completed`` and closes. Printed
per size: how long ``close()`` took, how many outcomes reached the rows, how many requests the
run's end marked ``cancelled`` instead, how many stayed undecided, and how the trainer detached.

Side by side with another revision: ``git archive main | tar -x -C /tmp/main`` and run both trees'
copies of this script (each imports the agent from its own tree).

Run: ``python benchmarks/close_flush.py [--sizes 100,500,1000]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent_latency import stack_env

from liveparams.agent import AgentConfig, UpdateAgent
from liveparams.contract import OutcomeStatus, UpdateOutcome

DRAIN_TIMEOUT_S = 120.0


def burst(env: dict[str, str], size: int) -> dict[str, object]:
    """One job, ``size`` requests decided at once, then close(); what close() took and what the rows say."""
    import psycopg

    from liveparams.tokens import mint_job_token

    with psycopg.connect(env["DB_URL"], autocommit=True) as db:
        row = db.execute("insert into public.local_training_jobs (status) values ('running') returning id").fetchone()
        assert row is not None
        job_id = str(row[0])
        with db.transaction():
            db.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps({"role": "service_role"}),))
            db.execute(
                "select public.request_parameter_update(%s, jsonb_build_object('max_steps', 100 + i))"
                " from generate_series(1, %s) i",
                (job_id, size),
            )
        agent = UpdateAgent(
            AgentConfig(job_id=job_id, url=env["API_URL"], key=mint_job_token(job_id, env["JWT_SECRET"]))
        )
        agent.start()
        ids: list[str] = []
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while len(ids) < size:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {len(ids)} of {size} requests reached the agent in {DRAIN_TIMEOUT_S:g} s")
            ids += [request.id for request in agent.drain()]
            time.sleep(0.01)
        agent.report([UpdateOutcome(request_id, OutcomeStatus.APPLIED, step=size) for request_id in ids])
        agent.record_end("completed", step=size)
        closing = time.perf_counter()
        agent.close()
        close_ms = (time.perf_counter() - closing) * 1e3
        counts: dict[str, int] = dict(
            db.execute(
                "select coalesce(status, 'undecided'), count(*) from public.parameter_update_requests"
                " where job_id = %s group by 1",
                (job_id,),
            ).fetchall()
        )
        detach = db.execute(
            "select trainer_detach_reason from public.local_training_jobs where id = %s", (job_id,)
        ).fetchone()
        db.execute("delete from public.local_training_jobs where id = %s", (job_id,))
    return {
        "size": size,
        "close_ms": close_ms,
        "applied": counts.get("applied", 0),
        "cancelled": counts.get("cancelled", 0),
        "undecided": counts.get("undecided", 0),
        "detach": detach[0] if detach else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,500,1000", help="outcomes pending at close(), comma-separated")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    with stack_env() as env:
        results = [burst(env, size) for size in sizes]
    budget_ms = AgentConfig.shutdown_timeout * 1e3
    print(f"{'pending at close()':>18} {'close() ms':>10} {'recorded':>9} {'cancelled by the end':>21} "
          f"{'undecided':>9}  detach")  # fmt: skip
    for r in results:
        print(f"{r['size']:>18} {r['close_ms']:>10.0f} {r['applied']:>9} {r['cancelled']:>21} {r['undecided']:>9}  "
              f"{r['detach']}")  # fmt: skip
    print(f"budget: shutdown_timeout {budget_ms:g} ms")


if __name__ == "__main__":
    main()
