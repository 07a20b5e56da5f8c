"""Many concurrent jobs on one local stack: correctness, latency and what they cost (issue 23).

For each job count (``--jobs 1,100,1000``), each Realtime cadence (``--cadences fast,100``:
the stack's fast default, and hosted Realtime's 100 ms poll with its 500 ms idle back-off) and
each request transport of the agent (``--transports postgres_changes,broadcast``):

- N running jobs, each with its own ``UpdateAgent`` on its own job token (the trainer
  credential), spread over ``--processes`` worker processes as real trainers would be, with
  the agent's production timers (heartbeats on the job row, liveness probes, safety re-reads);
- **idle**: ``--idle`` seconds with every agent ready and nothing sent: CPU of the stack
  (API front + PostgreSQL) and of the agents' processes (their main threads wait on a pipe,
  so it is the agents alone), database transactions per second, WAL bytes per second;
- **load**: ``--requests`` requests per job from one client (the service role through the
  REST RPC), one job after another, each as soon as the one before returned or, with
  ``--request-rate``, at that rate (compare variants whose RPCs differ in speed at one rate:
  sent as fast as they return, a faster RPC offers more load to the rest of the path); each
  worker takes a training-like step every ``--step-time`` seconds, drains its agents and
  reports each request ``applied``, and every ``--log-every`` steps hands each agent a metrics
  log (live metrics, as a Trainer's ``on_log``).
  Pass: every request drained exactly once, by its own job's agent, and every outcome
  recorded on its row. Reported: request RPC time (HTTP, from the client), commit → drain
  (RPC returned → the worker's drain returned it; at most one step later than the queue),
  the same stack and database figures;
- **a frozen front** (``--stall S``, after the idle phase): the API front stopped (SIGSTOP) for S
  seconds, then the agents followed until all have been subscribed for 30 s: the most degraded at
  once, since when half, 90 % and 99 % of them and all were back, the stack's load meanwhile, and
  the subscriptions rebuilt by cause (a probe unanswered, the client gave up reconnecting, its
  reconnects outlasted ``recovery_grace``, the client otherwise lost, an open that failed),
  counted from the agents' log lines;
- **polling at the same load**: the old design, one REST GET of the job's latest request per
  job every 10 steps, modelled at ``--poll-step-rate`` steps per second per job, for as long as
  the idle phase: the same stack and database figures and the GET's time.

Realtime messages per job are counted from what the agent does: each delivered request is
one message (``postgres_changes``, or a broadcast on ``job:<id>``); idle, one liveness probe
(a broadcast to itself: one message in, one out) every ``probe_interval``. Phoenix heartbeats
are not counted (hosted Realtime does not bill them).

Run: ``python benchmarks/scale.py [--jobs 1,100,1000] [--cadences fast,100] [--transports postgres_changes]
[--processes 4]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from liveparams.agent import AgentConfig, Transport, UpdateAgent
from liveparams.tokens import mint_job_token

if TYPE_CHECKING:
    import psycopg

TICK = os.sysconf("SC_CLK_TCK")
MAX_RPC_FAILURES = 5  # past this the stack is broken at this load: stop sending, report what was measured
SELF = Path(__file__).resolve()


# ---- worker process: N agents and a training-like loop ------------------------------------------------------


def worker() -> None:
    """Reads the spec (api_url, jobs: [[id, token]], transport, step_time, log_every, start_gap) on stdin."""
    from liveparams.contract import OutcomeStatus, UpdateOutcome

    spec = json.loads(sys.stdin.readline())
    rebuilds = Rebuilds()
    supervisor = logging.getLogger("liveparams.agent._worker")
    supervisor.setLevel(logging.DEBUG)
    supervisor.addHandler(rebuilds)
    # Trainers run on machines of their own; here 1,000 agent threads share 2 cores with the one-process
    # stack, and the scheduler, which shares CPU by thread, would starve it (docs/benchmarks.md).
    os.nice(spec["nice"])
    started = time.perf_counter()
    transport = Transport(spec["transport"])
    agents = [
        UpdateAgent(AgentConfig(job_id=job, url=spec["api_url"], key=token, transport=transport))
        for job, token in spec["jobs"]
    ]
    for agent in agents:
        agent.start()
        time.sleep(spec["start_gap"])  # jobs starting over time rather than all in the same second
    unready = [a.job_id for a in agents if not a.wait_ready(600)]
    print(json.dumps({"ready_s": time.perf_counter() - started, "unready": unready}), flush=True)
    while sys.stdin.readline().strip() == "status":  # idle until "run"; "status": agents in each, rebuilds so far
        statuses = Counter(agent.status.value for agent in agents)
        print(json.dumps({"statuses": statuses, "rebuilds": rebuilds.counts}), flush=True)
    stop = threading.Event()

    def wait_for_stop() -> None:
        sys.stdin.readline()
        stop.set()

    threading.Thread(target=wait_for_stop, daemon=True).start()
    seen: list[tuple[str, str, float]] = []
    step = 0
    while not stop.is_set():
        time.sleep(spec["step_time"])
        step += 1
        for index, agent in enumerate(agents):
            # What a Trainer's on_log hands the agent (metrics are on by default); jobs do not log in lockstep.
            if (step + index) % spec["log_every"] == 0:
                agent.publish_metrics(step, {"loss": 1.0 / step, "learning_rate": 1e-4, "epoch": step / 1e4})
            taken = agent.drain()
            if taken:
                now = time.time()
                seen += [(agent.job_id, r.id, now) for r in taken]
                agent.report([UpdateOutcome(r.id, OutcomeStatus.APPLIED, step=step, changes={}) for r in taken])
    with ThreadPoolExecutor(64) as closing:  # one after another, 250 closes of up to 2 s each took minutes
        list(closing.map(UpdateAgent.close, agents))
    print(json.dumps({"seen": seen}), flush=True)


REBUILD_CAUSES = (  # what in the supervisor's "lost" line names the cause; anything else: "client lost"
    ("probe", "probe unanswered"),
    ("gave up", "client gave up"),
    ("did not recover", "reconnect outlasted the grace"),
)


class Rebuilds(logging.Handler):
    """Counts the supervisor's rebuilds of a subscription (``agent/_worker.py``'s log lines), by cause."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("Realtime subscription lost"):
            message = record.getMessage()
            cause = next((c for key, c in REBUILD_CAUSES if key in message), "client lost")
            self.counts[cause] += 1
        elif record.msg.startswith("Realtime subscription failed"):
            self.counts["open failed"] += 1


class Workers:
    """The worker processes: start → ready line; "run" → training loop; "stop" → the drained requests."""

    def __init__(
        self,
        api_url: str,
        jobs: list[tuple[str, str]],
        transport: Transport,
        processes: int,
        step_time: float,
        log_every: int,
        start_rate: float,
        nice: int,
    ) -> None:
        start_gap = processes / start_rate if start_rate else 0.0
        self.procs: list[subprocess.Popen[str]] = []
        for i in range(processes):
            share = jobs[i::processes]
            if not share:
                continue
            proc = subprocess.Popen(
                [sys.executable, str(SELF), "--worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
            assert proc.stdin is not None
            spec = {"api_url": api_url, "jobs": share, "transport": transport.value, "step_time": step_time,
                    "log_every": log_every, "start_gap": start_gap, "nice": nice}  # fmt: skip
            proc.stdin.write(json.dumps(spec) + "\n")
            proc.stdin.flush()
            self.procs.append(proc)

    def _lines(self) -> list[dict[str, Any]]:
        return [json.loads(p.stdout.readline()) for p in self.procs if p.stdout is not None]

    def ready(self) -> tuple[float, list[str]]:
        lines = self._lines()
        return max(line["ready_s"] for line in lines), [j for line in lines for j in line["unready"]]

    def tell(self, word: str) -> None:
        for p in self.procs:
            assert p.stdin is not None
            p.stdin.write(word + "\n")
            p.stdin.flush()

    def finish(self) -> list[tuple[str, str, float]]:
        self.tell("stop")
        seen = [(job, request, at) for line in self._lines() for job, request, at in line["seen"]]
        for p in self.procs:
            p.wait(60)
        return seen

    def statuses(self) -> tuple[Counter[str], Counter[str]]:
        """How many agents are in each ``AgentStatus``, and the rebuilds so far by cause, all processes together."""
        self.tell("status")
        statuses: Counter[str] = Counter()
        rebuilds: Counter[str] = Counter()
        for line in self._lines():
            statuses.update(line["statuses"])
            rebuilds.update(line["rebuilds"])
        return statuses, rebuilds

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]


# ---- measuring -------------------------------------------------------------------------------------------


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def create_jobs(db: psycopg.Connection[Any], n: int) -> list[str]:
    """The ids of ``n`` new running jobs."""
    rows = db.execute(
        "insert into public.local_training_jobs (status) select 'running' from generate_series(1, %s) returning id",
        (n,),
    )
    return [str(row[0]) for row in rows]


def stack_pids(api_port: int, postmaster: int) -> list[int]:
    """The API front and PostgreSQL with every backend (children of the postmaster)."""
    pids = [postmaster]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == postmaster or (b"serve" in cmdline and str(api_port).encode() in cmdline):
            pids.append(int(entry.name))
    return pids


def front_pid(api_port: int) -> int:
    """The API front's process (``python -m liveparams_stack serve --port N``)."""
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0") if entry.name.isdigit() else []
        except OSError:
            continue
        if b"serve" in cmdline and str(api_port).encode() in cmdline:
            return int(entry.name)
    raise SystemExit(f"no API front on port {api_port}")


@dataclass
class Window:
    """Stack CPU, agents' CPU, transactions and WAL over a stretch of time."""

    seconds: float = 0.0
    stack_cpu: float = 0.0
    agents_cpu: float = 0.0
    xacts: int = 0
    wal_bytes: float = 0.0

    def per_s(self, value: float) -> float:
        return value / self.seconds if self.seconds else 0.0


class Meter:
    def __init__(self, db: Any, stack: list[int], agents: list[int]) -> None:
        self.db, self.stack, self.agents = db, stack, agents

    def _sample(self) -> tuple[float, float, float, int, str]:
        xacts, lsn = self.db.execute(
            "select xact_commit + xact_rollback, pg_current_wal_lsn()::text"
            " from pg_stat_database where datname = current_database()"
        ).fetchone()
        return time.monotonic(), cpu_seconds(self.stack), cpu_seconds(self.agents), int(xacts), lsn

    def start(self) -> None:
        self._begin = self._sample()

    def stop(self) -> Window:
        end = self._sample()
        (wal,) = self.db.execute("select pg_wal_lsn_diff(%s, %s)", (end[4], self._begin[4])).fetchone()
        b = self._begin
        return Window(end[0] - b[0], end[1] - b[1], end[2] - b[2], end[3] - b[3], float(wal))


def pct(samples: list[float], q: int) -> float:
    if len(samples) < 2:
        return samples[0] if samples else float("nan")
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


# ---- one run ---------------------------------------------------------------------------------------------


@dataclass
class Result:
    jobs: int
    cadence: str
    ready_s: float = 0.0
    idle: Window = field(default_factory=Window)
    load: Window = field(default_factory=Window)
    polling: Window = field(default_factory=Window)
    rpc_ms: list[float] = field(default_factory=list)
    to_drain_ms: list[float] = field(default_factory=list)
    get_ms: list[float] = field(default_factory=list)
    lost: int = 0
    duplicated: int = 0
    crossed: int = 0
    unrecorded: int = 0
    sent: int = 0
    rpc_failed: int = 0
    probes_per_s: float = 0.0
    stall: Stall | None = None


@dataclass
class Stall:
    """What a frozen API front (SIGSTOP, as in a long GC pause or a starved host) did to the attached agents."""

    seconds: float
    most_degraded: int = 0  # the most agents polling over REST at once (push down)
    recovered_s: float = float("nan")  # SIGCONT → every agent subscribed again (nan: not within the wait)
    back_s: dict[int, float] = field(default_factory=dict)  # percent → since when at least that share is subscribed
    after: Window = field(default_factory=Window)  # the stack from SIGCONT to 30 s after every agent is back
    rebuilds: Counter[str] = field(default_factory=Counter)  # subscriptions rebuilt from the freeze on, by cause


BACK_PERCENTS = (50, 90, 99)


def stall_front(front: int, workers: Workers, meter: Meter, seconds: float, wait: float = 300.0) -> Stall:
    """Freeze the front for ``seconds``, then follow the agents until all have been subscribed for 30 s."""
    stall = Stall(seconds)
    _, before = workers.statuses()
    os.kill(front, signal.SIGSTOP)
    time.sleep(seconds)
    os.kill(front, signal.SIGCONT)
    resumed = time.monotonic()
    meter.start()
    since: float | None = None  # seconds after SIGCONT since which every agent is seen subscribed
    while (elapsed := time.monotonic() - resumed) < wait:
        counts, rebuilds = workers.statuses()
        stall.rebuilds = rebuilds - before
        stall.most_degraded = max(stall.most_degraded, counts.get("degraded", 0))
        share = 100 * counts.get("subscribed", 0) / max(sum(counts.values()), 1)
        for percent in BACK_PERCENTS:
            if share < percent:
                stall.back_s.pop(percent, None)
            else:
                stall.back_s.setdefault(percent, elapsed)
        if counts.get("subscribed", 0) < sum(counts.values()):
            since = None
        elif since is None:
            since = elapsed
        elif elapsed - since >= 30:
            stall.recovered_s = since
            break
        time.sleep(1.0)
    stall.after = meter.stop()
    return stall


def run(
    env: dict[str, str], api_port: int, postmaster: int, n: int, cadence: str, transport: Transport, args: Any
) -> Result:
    import httpx
    import psycopg

    result = Result(n, f"{cadence}, {transport.value}")
    with psycopg.connect(env["DB_URL"], autocommit=True) as db:
        jobs = create_jobs(db, n)
        workers = Workers(
            env["API_URL"],
            [(j, mint_job_token(j, env["JWT_SECRET"])) for j in jobs],
            transport,
            args.processes,
            args.step_time,
            args.log_every,
            args.start_rate,
            args.nice,
        )
        result.ready_s, unready = workers.ready()
        if unready:
            raise SystemExit(f"{len(unready)} of {n} agents did not become ready")
        result.probes_per_s = 2 / AgentConfig(job_id=jobs[0], url="http://x", key="x").probe_interval
        meter = Meter(db, stack_pids(api_port, postmaster), workers.pids())
        meter.start()
        time.sleep(args.idle)
        result.idle = meter.stop()
        if args.stall:
            result.stall = stall_front(front_pid(api_port), workers, meter, args.stall)

        workers.tell("run")
        headers = {"apikey": env["SERVICE_ROLE_KEY"], "Authorization": f"Bearer {env['SERVICE_ROLE_KEY']}"}
        committed: dict[str, float] = {}  # request → when its RPC returned
        meter.start()
        with httpx.Client(base_url=env["API_URL"], headers=headers, timeout=30) as http:
            first = time.perf_counter()
            for i in range(args.requests):
                for k, job in enumerate(jobs):
                    if result.rpc_failed >= MAX_RPC_FAILURES:
                        break
                    if args.request_rate:  # open loop: the same offered load whatever the RPC's speed
                        time.sleep(max(0.0, first + (i * n + k) / args.request_rate - time.perf_counter()))
                    begin = time.perf_counter()
                    try:
                        response = http.post(
                            "/rest/v1/rpc/request_parameter_update",
                            json={"p_job_id": job, "p_params": {"learning_rate": 1e-4 / (i + 2)}},
                        )
                        response.raise_for_status()
                    except httpx.HTTPError as exc:  # counted, and the run goes on: where it breaks is the figure
                        result.rpc_failed += 1
                        if result.rpc_failed == 1:
                            said = exc.response.text if isinstance(exc, httpx.HTTPStatusError) else ""
                            print(f"first failed request RPC: {exc!r} {said}", file=sys.stderr, flush=True)
                        continue
                    result.rpc_ms.append((time.perf_counter() - begin) * 1e3)
                    committed[response.json()["id"]] = time.time()
        # Who owns each request is the database's word: an RPC that timed out may still have committed its row.
        owner_of = {
            str(request): str(job)
            for request, job in db.execute(
                "select id, job_id from public.parameter_update_requests where job_id = any(%s::uuid[])", (jobs,)
            )
        }
        result.sent = len(owner_of)
        deadline = time.monotonic() + args.settle
        while time.monotonic() < deadline:
            (result.unrecorded,) = db.execute(
                "select count(*) from public.parameter_update_requests where job_id = any(%s::uuid[])"
                " and status is null",
                (jobs,),
            ).fetchone() or (0,)
            if not result.unrecorded:
                break
            time.sleep(0.2)
        result.load = meter.stop()
        seen = workers.finish()
        counts: dict[str, int] = {}
        for job, request_id, at in seen:
            counts[request_id] = counts.get(request_id, 0) + 1
            if owner_of.get(request_id) != job:
                result.crossed += 1
            elif counts[request_id] == 1 and request_id in committed:
                result.to_drain_ms.append((at - committed[request_id]) * 1e3)
        result.lost = sum(1 for r in owner_of if r not in counts)
        result.duplicated = sum(c - 1 for c in counts.values())

        # The old design at the same load: a GET per job every 10 steps.
        meter.agents = []
        rate = n * args.poll_step_rate / 10
        meter.start()
        with httpx.Client(base_url=env["API_URL"], headers=headers, timeout=30) as http, ThreadPoolExecutor(8) as pool:

            def poll(job: str) -> None:
                begin = time.perf_counter()
                http.get(
                    "/rest/v1/parameter_update_requests",
                    params={"job_id": f"eq.{job}", "select": "params,requested_at", "order": "seq.desc", "limit": "1"},
                ).raise_for_status()
                result.get_ms.append((time.perf_counter() - begin) * 1e3)

            begin = time.monotonic()
            for k in range(int(rate * args.idle)):
                pause = begin + k / rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                pool.submit(poll, jobs[k % n])
        result.polling = meter.stop()
        db.execute("delete from public.local_training_jobs where id = any(%s::uuid[])", (jobs,))
    return result


def report(results: list[Result], args: Any) -> None:
    rows: list[tuple[str, Any]] = [
        ("agents ready (s from the first start, slowest process)", lambda r: f"{r.ready_s:.1f}"),
        ("requests sent / lost / duplicated / wrong job / unrecorded",
         lambda r: f"{r.sent}/{r.lost}/{r.duplicated}/{r.crossed}/{r.unrecorded}"),
        ("request RPCs failed (no answer in 30 s, or 5xx)", lambda r: f"{r.rpc_failed}"),
        ("request RPC p50 / p99 (ms)", lambda r: f"{pct(r.rpc_ms, 50):.1f} / {pct(r.rpc_ms, 99):.1f}"),
        ("commit → drain p50 / p99 (ms)", lambda r: f"{pct(r.to_drain_ms, 50):.0f} / {pct(r.to_drain_ms, 99):.0f}"),
        ("stack CPU idle / load / polling (cores)", lambda r: " / ".join(
            f"{w.per_s(w.stack_cpu):.2f}" for w in (r.idle, r.load, r.polling))),
        ("agent CPU idle, per agent (ms/s)", lambda r: f"{r.idle.per_s(r.idle.agents_cpu) / r.jobs * 1e3:.2f}"),
        ("DB transactions/s idle / load / polling", lambda r: " / ".join(
            f"{w.per_s(w.xacts):.0f}" for w in (r.idle, r.load, r.polling))),
        ("WAL KB/s idle / load / polling", lambda r: " / ".join(
            f"{w.per_s(w.wal_bytes) / 1e3:.1f}" for w in (r.idle, r.load, r.polling))),
        ("Realtime msgs/s per job idle / active", lambda r: f"{r.probes_per_s:.2f} / "
            f"{r.probes_per_s + args.requests / max(r.load.seconds, 1e-9):.2f}"),
        ("polling GET p50 / p99 (ms)", lambda r: f"{pct(r.get_ms, 50):.1f} / {pct(r.get_ms, 99):.1f}"),
    ]  # fmt: skip
    if args.stall:
        rows += [
            (f"front frozen {args.stall:g} s: most agents degraded at once", lambda r: f"{r.stall.most_degraded}"),
            ("  then every agent subscribed again after (s)", lambda r: f"{r.stall.recovered_s:.1f}"),
            ("  50 / 90 / 99 % of them subscribed again after (s)", lambda r: " / ".join(
                f"{r.stall.back_s.get(p, float('nan')):.1f}" for p in BACK_PERCENTS)),
            ("  rebuilt: probe / gave up / outlasted grace / lost / open", lambda r: " / ".join(
                str(r.stall.rebuilds[cause]) for cause in (*(c for _, c in REBUILD_CAUSES), "client lost",
                                                           "open failed"))),
            ("  stack CPU (cores) / DB transactions/s until 30 s after", lambda r: (
                f"{r.stall.after.per_s(r.stall.after.stack_cpu):.2f} / "
                f"{r.stall.after.per_s(r.stall.after.xacts):.0f}")),
        ]  # fmt: skip
    header = "".join(f"{f'{r.jobs} jobs, {r.cadence}':>34}" for r in results)
    print(f"{'measurement':60}{header}")
    for name, cell in rows:
        print(f"{name:60}" + "".join(f"{cell(r):>34}" for r in results))
    print(
        f"({args.processes} agent processes, started {f'{args.start_rate:g}/s' if args.start_rate else 'at once'},"
        f" {args.requests} requests per job"
        f" {f'at {args.request_rate:g}/s' if args.request_rate else 'one after another'},"
        f" steps of {args.step_time * 1e3:g} ms, a metrics log every"
        f" {args.log_every} steps, agents at nice {args.nice},"
        f" idle {args.idle:g} s; polling: a GET per job every 10 steps at {args.poll_step_rate:g} steps/s)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", default="1,100,1000", help="comma-separated job counts")
    parser.add_argument("--cadences", default="fast,100", help="fast and/or a poll interval in ms")
    parser.add_argument(
        "--transports", default="postgres_changes", help="postgres_changes and/or broadcast (LIVEPARAMS_TRANSPORT)"
    )
    parser.add_argument("--processes", type=int, default=4, help="agent processes")
    parser.add_argument("--requests", type=int, default=3, help="requests per job")
    parser.add_argument("--step-time", type=float, default=0.02, help="seconds per training-like step")
    parser.add_argument(
        "--log-every", type=int, default=500, help="steps between two metric logs (Trainer's default logging_steps)"
    )
    parser.add_argument(
        "--start-rate", type=float, default=0.0, help="agents started per second, all processes together (0: at once)"
    )
    parser.add_argument("--nice", type=int, default=0, help="niceness of the agent processes (10: the stack first)")
    parser.add_argument(
        "--request-rate",
        type=float,
        default=0.0,
        help="requests sent per second (0: each as soon as the one before returned, so faster RPCs offer more load)",
    )
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of the idle and polling phases")
    parser.add_argument("--settle", type=float, default=120.0, help="seconds to wait for every outcome")
    parser.add_argument("--poll-step-rate", type=float, default=1.0, help="steps per second of the polling model")
    parser.add_argument(
        "--stall", type=float, default=0.0, help="seconds to freeze the API front after the idle phase (0: none)"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker()
        return
    from liveparams_stack.local import LocalStack, free_port

    results: list[Result] = []
    for cadence in args.cadences.split(","):
        api_port, db_port = free_port(), free_port()
        poll_ms = None if cadence == "fast" else int(cadence)
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp).chmod(0o755)  # PostgreSQL runs as its own OS user and must reach the state directory
            with LocalStack(
                Path(tmp) / "stack", api_port, db_port, realtime_poll_ms=poll_ms, stop_with_caller=True
            ) as stack:
                pid_file = Path(tmp) / "stack" / "postgres" / "postmaster.pid"
                postmaster = int(pid_file.read_text().split()[0])
                for n in (int(j) for j in args.jobs.split(",")):
                    for transport in (Transport(t) for t in args.transports.split(",")):
                        label = "fast" if poll_ms is None else f"{poll_ms} ms"
                        results.append(run(stack.env(), api_port, postmaster, n, label, transport, args))
                        report(results, args)  # so far: a long run that is cut short keeps what it measured


if __name__ == "__main__":
    main()
