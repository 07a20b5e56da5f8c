"""Every benchmark still runs: each script once with its smallest arguments (figures are not checked here).

Benchmarks are how speed is measured (docs/benchmarks.md); one that no longer starts after a
change in the code it measures is caught here rather than when someone needs its figures.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SMALLEST = {
    "attachment.py": ["--kills", "1"],
    "close_flush.py": ["--sizes", "3"],
    "agent_latency.py": ["--frames", "200", "--commits", "5", "--spacing", "0.01"],
    "drain_overhead.py": ["--quick"],
    "faults.py": ["--faults", "outcomes_5xx", "--fault-s", "1", "--per-phase", "1", "--settle-s", "60"],
    "gpu_check.py": ["--quick"],
    "history_growth.py": ["--requests", "2", "--block", "1"],
    "metrics_overhead.py": ["--steps", "5", "--repeats", "1", "--sizes", "1000,3000"],
    "push_vs_polling.py": ["--steps", "60", "--step-time", "0.01"],
    "ranks.py": ["--ranks", "2", "--steps", "20", "--before", ""],  # a CI checkout may lack the old revision
    "rest_rpc.py": ["--calls", "3", "--concurrency", "2", "--repeats", "1", "--before", ""],
    "restart.py": ["--repeats", "1"],
    "run_startup.py": ["--repeats", "1"],
    "scale.py": [
        "--jobs",
        "2",
        "--cadences",
        "fast",
        "--transports",
        "postgres_changes,broadcast",
        "--processes",
        "2",
        "--idle",
        "1",
        "--settle",
        "30",
    ],
    "realtime_latency.py": ["--calls", "3", "--cadences", "fast,100", "--max-gap-ms", "10"],
}


def test_every_benchmark_is_covered() -> None:
    assert sorted(SMALLEST) == sorted(path.name for path in BENCHMARKS.glob("*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(SMALLEST))
def test_the_benchmark_runs_and_prints_its_table(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *SMALLEST[script]],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=BENCHMARKS.parent,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert done.stdout.strip()
