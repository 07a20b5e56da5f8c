"""What rank agreement costs the training thread per step, at 2, 4 and 8 gloo ranks, before and after (issue 23).

Each rank runs a plain loop with ``LoopUpdates`` (the callback Trainer runs, driven the same
way); rank 0 has an in-memory source. Between two step boundaries the loop sleeps
``--compute-ms``, standing in for the forward and backward (a GPU step leaves the CPU to the
other ranks much as a sleep does), then all-reduces one number, as DDP all-reduces the
gradients, which keeps the ranks in step as in a real run. The clock is the training thread's own: the wall time it
spends inside the callback's ``on_step_end`` (the critical path a step pays; the time
between boundaries is not counted), and the CPU time that thread used there.

- *nothing queued* (idle): 200 boundaries with no request, after 20 of warm-up. The mean is
  the cost per step: where the exchanges are spaced, most boundaries cost almost nothing and
  the exchanges cost more, so the median alone would flatter;
- *a request*: one learning-rate request queued before every ``--every``-th boundary; its cost
  is the time of every boundary from the one it was queued before to the one that applies it,
  on the slowest rank, and its latency is how many boundaries later it applies (and about how
  many ms, at the measured step time).

The variants, each run in turn with every world size: *before*, the code of ``--before``
(a git revision: the synchronous exchange at every boundary), extracted with ``git archive``
and imported instead of this tree's; *after* with an exchange at every boundary
(``EXCHANGE_EVERY_S = 0``), the overlap alone; and *after* as it ships, the exchanges spaced
by rank 0 (and with each ``--spacings`` value of ``EXCHANGE_EVERY_S``). Each configuration
starts its ranks with ``torchrun``. The machine's cores are shared by all ranks: with more
ranks than cores, a rank waiting for a peer that is not scheduled shows up as wall time,
which is why the training thread's CPU time is given too.

Run: ``python benchmarks/ranks.py [--ranks 2,4,8] [--steps 200] [--compute-ms 10] [--every 20] [--spacings 0.1]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "2ab4cee"  # main before the overlapped exchange: the synchronous header at every step boundary
WARM_UP = 20  # boundaries before the clock starts
REQUESTS = 10  # requests in the "a request" phase


def timed(hook: Callable[..., Any], wall: list[float], cpu: list[float]) -> Callable[..., Any]:
    """``hook``, recording the wall and thread CPU time (µs) of each call on the calling thread."""

    def clocked(*args: Any, **kwargs: Any) -> Any:
        start_cpu, start = time.thread_time_ns(), time.perf_counter_ns()
        result = hook(*args, **kwargs)
        wall.append((time.perf_counter_ns() - start) / 1e3)
        cpu.append((time.thread_time_ns() - start_cpu) / 1e3)
        return result

    return clocked


def worker(out_dir: str, steps: int, compute_ms: float, every: int, exchange_every_s: float | None) -> None:
    """One rank (started by torchrun): the idle phase, then the request phase; writes rank<N>.json."""
    import torch
    import torch.distributed as dist
    from gpu_check import ScriptedSource
    from transformers import get_scheduler

    import liveparams
    from liveparams import LoopUpdates, RuntimeParameterCallback

    if exchange_every_s is not None:
        from liveparams.trainer_hooks import _distributed

        _distributed.EXCHANGE_EVERY_S = exchange_every_s
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    total = WARM_UP + steps + every * (REQUESTS + 2)  # room for the last request to apply
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=0, num_training_steps=total + 1)
    source = ScriptedSource() if rank == 0 else None
    callback = RuntimeParameterCallback(source)
    wall: list[float] = []
    cpu: list[float] = []
    callback.on_step_end = timed(callback.on_step_end, wall, cpu)  # type: ignore[method-assign]
    live = LoopUpdates(optimizer, scheduler, max_steps=total, callback=callback)
    taken: list[int] = []  # boundaries before which a request was queued
    began = time.perf_counter()
    with live:
        dist.barrier()
        while live.global_step < total:
            time.sleep(compute_ms / 1e3)
            dist.all_reduce(torch.zeros(1))  # as DDP's gradient all-reduce: the ranks step in lockstep
            optimizer.step()
            scheduler.step()
            boundary = live.global_step + 1
            if boundary > WARM_UP + steps and (boundary - WARM_UP - steps) % every == 0 and len(taken) < REQUESTS:
                taken.append(boundary)
                if source is not None:
                    source.push(learning_rate=9e-4 if len(taken) % 2 else 8e-4)
            live.step()
    result = {
        "code": str(Path(liveparams.__file__).resolve().parents[1]),
        "ms_per_step": (time.perf_counter() - began) / total * 1e3,
        "exchange_every_s": getattr(sys.modules["liveparams.trainer_hooks._distributed"], "EXCHANGE_EVERY_S", None),
        "wall": wall,  # wall[i] is boundary i + 1 (train begin is not on_step_end)
        "cpu": cpu,
        "taken": taken,
        "applied": [o.step for o in source.outcomes] if source is not None else [],
        "statuses": [o.status.value for o in source.outcomes] if source is not None else [],
    }
    (Path(out_dir) / f"rank{rank}.json").write_text(json.dumps(result))
    dist.barrier()
    dist.destroy_process_group()


def launch(
    code: Path, ranks: int, out: Path, opts: argparse.Namespace, exchange_every_s: float | None
) -> list[dict[str, Any]]:
    """Run ``ranks`` workers under torchrun with ``code`` first on PYTHONPATH; every rank's result."""
    out.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(ranks)]
    command += [__file__, "--worker", str(out), "--steps", str(opts.steps)]
    command += ["--compute-ms", str(opts.compute_ms), "--every", str(opts.every)]
    command += [] if exchange_every_s is None else ["--exchange-every-s", str(exchange_every_s)]
    subprocess.run(command, env=env, check=True, timeout=900, stdout=subprocess.DEVNULL)
    results = [json.loads((out / f"rank{r}.json").read_text()) for r in range(ranks)]
    if any(Path(r["code"]) != code.resolve() for r in results):
        raise RuntimeError(f"the ranks imported liveparams from {results[0]['code']}, not {code}")
    return results


def summarize(results: list[dict[str, Any]], steps: int) -> dict[str, float]:
    """Idle figures over every rank's idle boundaries; per request, the slowest rank's queued-to-applied sum."""
    idle = slice(WARM_UP, WARM_UP + steps)
    walls = sorted(w for r in results for w in r["wall"][idle])
    cpus = [c for r in results for c in r["cpu"][idle]]
    rank0 = results[0]
    if rank0["statuses"] != ["applied"] * REQUESTS:  # two requests in one exchange: the later supersedes
        raise RuntimeError(f"expected {REQUESTS} requests applied one by one, got {rank0['statuses']}: raise --every")
    pairs = list(zip(rank0["taken"], rank0["applied"], strict=True))
    lag = statistics.median(applied - taken for taken, applied in pairs)
    return {
        "idle_mean": statistics.fmean(walls),
        "idle_p50": walls[len(walls) // 2],
        "idle_p99": walls[min(len(walls) - 1, int(len(walls) * 0.99))],
        "idle_cpu_mean": statistics.fmean(cpus),
        # boundaries taken..applied (1-based) on the slowest rank: every one the request made the thread wait in
        "request": statistics.median(max(sum(r["wall"][t - 1 : a]) for r in results) for t, a in pairs),
        "lag": lag,
        "lag_ms": lag * statistics.fmean(r["ms_per_step"] for r in results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", default="2,4,8", help="comma-separated world sizes (default 2,4,8)")
    parser.add_argument("--steps", type=int, default=200, help="idle boundaries timed per run (default 200)")
    parser.add_argument("--compute-ms", type=float, default=10.0, help="sleep standing in for a step (default 10)")
    parser.add_argument("--every", type=int, default=20, help="boundaries between requests (default 20)")
    parser.add_argument(
        "--before", default=BEFORE, help=f"git revision of the 'before' code (default {BEFORE}; '' leaves it out)"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # set by launch(): this process is one rank
    parser.add_argument("--spacings", default="", help="other EXCHANGE_EVERY_S values to run, comma-separated")
    parser.add_argument("--exchange-every-s", type=float, help=argparse.SUPPRESS)  # set by launch()
    opts = parser.parse_args()
    if opts.worker:
        worker(opts.worker, opts.steps, opts.compute_ms, opts.every, opts.exchange_every_s)
        return

    from rich.console import Console
    from rich.table import Table

    scratch = Path(tempfile.mkdtemp(prefix="liveparams-ranks-"))
    variants: dict[str, tuple[Path, float | None]] = {  # name: (code, EXCHANGE_EVERY_S; None: as it is)
        "after: overlapped, every boundary": (ROOT, 0.0),
        "after: overlapped, spaced as shipped": (ROOT, None),
        **{f"after: overlapped, spaced {float(v):g} s": (ROOT, float(v)) for v in opts.spacings.split(",") if v},
    }
    if opts.before:
        before = scratch / "before"
        before.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", opts.before], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(before)], input=archive.stdout, check=True)
        variants = {f"before ({opts.before}): synchronous, every boundary": (before, None), **variants}

    table = Table(
        title=f"Rank agreement on the training thread: gloo on CPU ({os.cpu_count()} cores), a "
        f"{opts.compute_ms:g} ms sleep per step; µs inside on_step_end, all ranks' boundaries"
    )
    columns = ("ranks", "code", "idle: mean µs/step", "p50", "p99", "CPU mean", "a request: µs", "applies after")
    for column in columns:
        table.add_column(column, justify="left" if column == "code" else "right")
    for ranks in (int(n) for n in opts.ranks.split(",")):
        for n, (name, (code, spacing)) in enumerate(variants.items()):
            results = launch(code, ranks, scratch / f"{ranks}-{n}", opts, spacing)
            figures = summarize(results, opts.steps)
            spaced = results[0]["exchange_every_s"]
            table.add_row(
                str(ranks),
                name + (f" ({spaced:g} s)" if name.endswith("as shipped") else ""),
                f"{figures['idle_mean']:.1f}",
                f"{figures['idle_p50']:.1f}",
                f"{figures['idle_p99']:.0f}",
                f"{figures['idle_cpu_mean']:.1f}",
                f"{figures['request']:.0f}",
                f"{figures['lag']:g} steps, {figures['lag_ms']:.0f} ms",
            )
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
