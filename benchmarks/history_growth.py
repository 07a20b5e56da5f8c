"""Does the cost of one request grow with the job's history? (issue 10)

Jobs with 0 (fresh), 10, 1,000 and 10,000 earlier requests, each decided as a trainer
would (an outcome with its changes), each with a subscribed agent on a job token.
Requests go to the jobs in turns, a block at a time, so that every size is measured
side by side under the same machine load. Per size:

- **bytes received by the agent per new request**: everything its sockets (Realtime and
  REST) received during its blocks, divided by the requests made; counted by a TCP
  forwarder in front of the API, so nothing in the agent or the clients is touched;
- **commit → queue** p50 and p99: from the RPC's commit until ``drain()`` returns it;
- **request RPC** and **outcome recording** time: ``request_parameter_update`` and
  ``record_parameter_update_outcomes`` (one outcome) timed in PostgreSQL, p50;
- **longest GIL hold** seen by a training-like thread (tiny steps in a loop): the longest
  gap between two of its steps while the agent received and queued the requests;
- **checkpoint size**: the trainer callback's checkpointed record (``state()``) after it decided
  the job's requests in order, saving a checkpoint every block (a fixed save interval under a
  steady stream of requests), as JSON.

The verdict compares 10,000 earlier requests with the fresh job: within 1.5× passes.

``--flood`` instead sends 10,000 requests in a minute to one job whose training-like thread
drains every step and applies the newest value per parameter (superseding the rest), as the
trainer callback does: how many the flood guard refused, the longest ``drain()`` and step gap of
the training thread, and whether the value in force at the end is the newest one accepted.

Run: ``python benchmarks/history_growth.py [--requests 60] [--block 10]``,
or ``python benchmarks/history_growth.py --flood [--total 10000] [--seconds 60] [--step-time 0.01]``
(a local stack is started unless ``SUPABASE_URL``, ``SUPABASE_DB_URL`` and ``SUPABASE_JWT_SECRET`` are set).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from agent_latency import stack_env

from liveparams.agent import AgentConfig, UpdateAgent
from liveparams.tokens import mint_job_token
from liveparams_stack.local import free_port

SIZES = (0, 10, 1_000, 10_000)
BOUND = 1.5
LOST_S = 45  # a request not drained by then is lost: past the agent's 30 s safety re-read (p99 shows a late one)


class CountingForwarder:
    """TCP forwarders to the API, one port per agent, counting the bytes each agent receives."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, name="bench.forwarder", daemon=True).start()
        self.received: dict[int, int] = {}

    def open(self) -> int:
        """A new listening port; bytes sent to its clients are counted under it."""
        port = free_port()
        self.received[port] = 0

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            up_reader, up_writer = await asyncio.open_connection(*self._target)

            async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, count: bool) -> None:
                try:
                    while data := await src.read(65536):
                        if count:
                            self.received[port] += len(data)
                        dst.write(data)
                        await dst.drain()
                except (ConnectionError, OSError):
                    pass
                dst.close()

            await asyncio.gather(pipe(reader, up_writer, False), pipe(up_reader, writer, True))

        async def listen() -> None:
            await asyncio.start_server(handle, "127.0.0.1", port)

        asyncio.run_coroutine_threadsafe(listen(), self._loop).result(10)
        return port


class GilProbe:
    """A thread taking tiny steps, like a training loop between kernels; records the longest gap between steps."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._stop = threading.Event()
        threading.Thread(target=self._run, name="bench.training", daemon=True).start()

    def _run(self) -> None:
        last = time.perf_counter()
        while not self._stop.is_set():
            sum(range(50))
            now = time.perf_counter()
            self.longest = max(self.longest, now - last)
            last = now

    def reset(self) -> None:
        self.longest = 0.0

    def stop(self) -> None:
        self._stop.set()


@dataclass
class Job:
    size: int
    job_id: str
    agent: UpdateAgent
    port: int
    decided_ids: list[str]
    to_queue: list[float] = field(default_factory=list)
    request_rpc: list[float] = field(default_factory=list)
    outcome_rpc: list[float] = field(default_factory=list)
    received: int = 0
    requests: int = 0
    gil: float = 0.0


NEW_JOB = "insert into public.local_training_jobs (status) values ('running') returning id"


def scalar(db: Any, statement: str, args: tuple[Any, ...] = ()) -> Any:
    """The first column of the one row ``statement`` returns."""
    return db.execute(statement, args).fetchone()[0]


def create_job(db: Any, size: int, env: dict[str, str], port: int) -> Job:
    """A running job with ``size`` decided requests already on it, and its agent (not started)."""
    job_id = str(scalar(db, NEW_JOB))
    db.execute(
        """
        insert into public.parameter_update_requests
          (job_id, id, seq, params, requested_at, requested_by, status, step, changes, decided_at)
        select %s, gen_random_uuid()::text, i, jsonb_build_object('learning_rate', 1e-4 / i), now(), 'bench',
               'applied', i,
               jsonb_build_object('learning_rate', jsonb_build_object('old', 1e-4, 'new', 1e-4 / i)), now()
          from generate_series(1, %s) i
        """,
        (job_id, size),
    )
    ids = [r[0] for r in db.execute("select id from public.parameter_update_requests where job_id = %s", (job_id,))]
    config = AgentConfig(job_id=job_id, url=f"http://127.0.0.1:{port}", key=mint_job_token(job_id, env["JWT_SECRET"]))
    return Job(size, job_id, UpdateAgent(config), port, ids)


# Times a statement inside PostgreSQL. Timing it from Python would add the GIL switch interval
# (5 ms) whenever the training-like probe thread holds the GIL as the answer arrives.
_TIMED = """
create or replace function pg_temp.liveparams_timed(statement text, out result jsonb, out ms float8)
language plpgsql as $$
declare started timestamptz := clock_timestamp();
begin
  execute statement into result;
  ms := extract(epoch from clock_timestamp() - started) * 1000;
end $$
"""


def timed_sql(db: Any, claims: dict[str, Any], statement: str, args: tuple[Any, ...]) -> tuple[Any, float]:
    """``statement`` (one jsonb value) run as the caller ``claims`` describe, and its time in PostgreSQL (ms)."""
    import psycopg

    inlined = psycopg.ClientCursor(db).mogrify(statement, args)
    with db.transaction():
        db.execute(_TIMED)
        db.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
        result, elapsed = db.execute("select * from pg_temp.liveparams_timed(%s)", (inlined,)).fetchone()
    return result, float(elapsed)


def one_request(db: Any, job: Job, i: int) -> None:
    stored, rpc_ms = timed_sql(
        db,
        {"role": "service_role"},
        "select public.request_parameter_update(%s, %s::jsonb)",
        (job.job_id, json.dumps({"learning_rate": 1e-4 / (2 + i % 7)})),
    )
    committed = time.perf_counter()
    while not (taken := job.agent.drain()):
        if time.perf_counter() - committed > LOST_S:
            raise SystemExit(f"a request on the job with {job.size} earlier requests did not arrive within {LOST_S} s")
        time.sleep(0.0002)
    job.to_queue.append((time.perf_counter() - committed) * 1e3)
    job.request_rpc.append(rpc_ms)
    outcome = {taken[0].id: {"status": "applied", "step": 10**6 + i, "at": "2026-11-28T08:00:00.000Z",
                             "changes": {"learning_rate": {"old": 1e-4, "new": stored["learning_rate"]}}}}  # fmt: skip
    _, outcome_ms = timed_sql(
        db,
        {"role": "authenticated", "job_id": job.job_id, "iss": "liveparams", "iat": int(time.time())},  # a job token
        "select public.record_parameter_update_outcomes(%s, %s::jsonb)",
        (job.job_id, json.dumps(outcome)),
    )
    job.outcome_rpc.append(outcome_ms)


class Trainer:
    """A training-like thread: steps of ``step_time``, draining at each step end and deciding like the callback."""

    def __init__(self, agent: UpdateAgent, step_time: float) -> None:
        self.agent = agent
        self.step_time = step_time
        self.lr = 1e-3
        self.longest_drain = 0.0
        self.longest_step_gap = 0.0
        self.decided = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench.trainer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from liveparams.contract import Change, OutcomeStatus, UpdateOutcome

        step, last = 0, time.perf_counter()
        while not self._stop.is_set():
            time.sleep(self.step_time)  # forward and backward
            step += 1
            start = time.perf_counter()
            requests = self.agent.drain()
            self.longest_drain = max(self.longest_drain, time.perf_counter() - start)
            if requests:
                newest = requests[-1]
                outcomes = [
                    UpdateOutcome(r.id, OutcomeStatus.SUPERSEDED, step=step, superseded_by=newest.id)
                    for r in requests[:-1]
                ]
                new_lr = float(newest.params["learning_rate"])
                changes = {"learning_rate": Change(self.lr, new_lr)}
                outcomes.append(UpdateOutcome(newest.id, OutcomeStatus.APPLIED, step=step, changes=changes))
                self.lr = new_lr
                self.agent.report(outcomes)
                self.decided += len(requests)
            now = time.perf_counter()
            self.longest_step_gap = max(self.longest_step_gap, now - last - self.step_time)
            last = now

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def flood(total: int, seconds: float, step_time: float) -> None:
    import psycopg

    with stack_env() as env, psycopg.connect(env["DB_URL"], autocommit=True) as db:
        job_id = str(scalar(db, NEW_JOB))
        agent = UpdateAgent(
            AgentConfig(job_id=job_id, url=env["API_URL"], key=mint_job_token(job_id, env["JWT_SECRET"]))
        )
        agent.start()
        if not agent.wait_ready(60):
            raise SystemExit("the agent did not subscribe")
        trainer = Trainer(agent, step_time)
        accepted, refused, newest = 0, 0, None
        begin = time.perf_counter()
        for i in range(total):
            value = round(1e-4 + i * 1e-9, 12)
            try:
                timed_sql(
                    db,
                    {"role": "service_role"},
                    "select public.request_parameter_update(%s, %s::jsonb)",
                    (job_id, json.dumps({"learning_rate": value})),
                )
                accepted, newest = accepted + 1, value
            except psycopg.Error as exc:
                if exc.sqlstate != "PT429":
                    raise
                refused += 1
            pause = begin + (i + 1) * seconds / total - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        sent_in = time.perf_counter() - begin
        deadline = time.monotonic() + 60
        pending = 1
        while pending and time.monotonic() < deadline:
            time.sleep(0.2)
            pending = scalar(
                db,
                "select count(*) from public.parameter_update_requests where job_id = %s and status is null",
                (job_id,),
            )
        trainer.stop()
        agent.close()
        in_force = scalar(
            db,
            "select parameters_in_force ->> 'learning_rate' from public.local_training_jobs where id = %s",
            (job_id,),
        )
        db.execute("delete from public.local_training_jobs where id = %s", (job_id,))
    print(
        f"flood: {total:,} requests sent in {sent_in:.1f} s to one job; training-like steps of {step_time * 1e3:g} ms"
    )
    print(f"  accepted {accepted:,}, refused by the flood guard (HTTP 429) {refused:,}, undecided at the end {pending}")
    print(f"  longest drain() {trainer.longest_drain * 1e3:.2f} ms, longest extra step gap "
          f"{trainer.longest_step_gap * 1e3:.1f} ms")  # fmt: skip
    print(f"  newest accepted learning_rate {newest}, in force at the end {in_force}: "
          f"{'same' if in_force is not None and float(in_force) == newest else 'DIFFERENT'}")  # fmt: skip


def checkpoint_bytes(decided_ids: list[str]) -> int:
    """The trainer callback's checkpoint (``state()`` as JSON) after it decided ``decided_ids`` in order.

    Its record keeps the last outcomes decided, a fixed number of them (``_record``), whatever the history.
    """
    from liveparams.contract import Change, OutcomeStatus, UpdateOutcome, UpdateRequest
    from liveparams.trainer_hooks import RuntimeParameterCallback

    callback = RuntimeParameterCallback()
    for seq, request_id in enumerate(decided_ids, start=1):
        request = UpdateRequest(request_id, {"learning_rate": 1e-4}, "2026-11-28T08:00:00+00:00", seq)
        change = {"learning_rate": Change(2e-4, 1e-4)}
        callback.record.decide(request, UpdateOutcome(request_id, OutcomeStatus.APPLIED, step=seq, changes=change))
    return len(json.dumps(callback.state()))


def percentile(samples: list[float], q: int) -> float:
    return statistics.quantiles(sorted(samples), n=100, method="inclusive")[q - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=60, help="requests per job size")
    parser.add_argument("--block", type=int, default=10, help="requests per turn on one job")
    parser.add_argument("--spacing", type=float, default=0.01, help="seconds between requests")
    parser.add_argument("--flood", action="store_true", help="the flood run instead (see above)")
    parser.add_argument("--total", type=int, default=10_000, help="requests of the flood run")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the flood run sends them over")
    parser.add_argument("--step-time", type=float, default=0.01, help="seconds per step of the flood run's trainer")
    args = parser.parse_args()
    if args.flood:
        flood(args.total, args.seconds, args.step_time)
        return

    import httpx
    import psycopg

    with stack_env() as env, psycopg.connect(env["DB_URL"], autocommit=True) as db:
        api = httpx.URL(env["API_URL"])
        forwarder = CountingForwarder(api.host, api.port or 80)
        jobs = [create_job(db, size, env, forwarder.open()) for size in SIZES]
        for job in jobs:
            job.agent.start()
        for job in jobs:
            if not job.agent.wait_ready(60):
                raise SystemExit(f"the agent of the job with {job.size} earlier requests did not subscribe")
            # Warm-up, not counted. It may wait: the stack pushes the history just inserted in SQL to the
            # agents that subscribed before its poll decoded it (10,000 INSERT events), which holds the GIL
            # that every agent thread shares for several seconds.
            one_request(db, job, 0)
            for samples in (job.to_queue, job.request_rpc, job.outcome_rpc):
                samples.clear()
        probe = GilProbe()
        for turn in range(0, args.requests, args.block):
            for job in jobs:
                before = forwarder.received[job.port]
                probe.reset()
                for i in range(turn, min(turn + args.block, args.requests)):
                    one_request(db, job, i)
                    time.sleep(args.spacing)
                time.sleep(0.05)  # let what the block caused arrive
                job.gil = max(job.gil, probe.longest)
                job.received += forwarder.received[job.port] - before
                job.requests += min(args.block, args.requests - turn)
        probe.stop()
        for job in jobs:
            job.agent.close()
            db.execute("delete from public.local_training_jobs where id = %s", (job.job_id,))

    new_ids = [f"new-{i}" for i in range(args.requests)]
    metrics: list[tuple[str, str, Any]] = [
        ("bytes received by the agent per request", "B", lambda j: j.received / j.requests),
        ("commit → queue p50", "ms", lambda j: percentile(j.to_queue, 50)),
        ("commit → queue p99", "ms", lambda j: percentile(j.to_queue, 99)),
        ("request RPC p50", "ms", lambda j: percentile(j.request_rpc, 50)),
        ("outcome recording p50", "ms", lambda j: percentile(j.outcome_rpc, 50)),
        ("longest GIL hold of a training thread", "ms", lambda j: j.gil * 1e3),
        # the job's history, then the requests this run made (decided by a trainer too)
        ("checkpoint size", "B", lambda j: checkpoint_bytes(j.decided_ids + new_ids)),
    ]
    header = "".join(f"{f'{size:,} earlier':>15}" for size in SIZES)
    print(f"{'measurement':42}{'unit':>5}{header}{'10k / fresh':>13}  verdict (≤ {BOUND}×)")
    for name, unit, value in metrics:
        values = [value(job) for job in jobs]
        ratio = values[-1] / values[0] if values[0] else float("inf")
        cells = "".join(f"{v:>15,.1f}" for v in values)
        print(f"{name:42}{unit:>5}{cells}{ratio:>12.2f}×  {'met' if ratio <= BOUND else 'MISSED'}")
    print(f"({args.requests} requests per size, in blocks of {args.block}, taken in turns)")


if __name__ == "__main__":
    main()
