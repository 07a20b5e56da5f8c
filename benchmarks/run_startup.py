"""What ``liveparams run`` adds to a process's start-up, side by side with the same command run plainly.

Three commands, each timed from spawn to exit, plain and under ``liveparams run``
(alternating, median of ``--repeats``), with a complete configuration whose
database is not there (nothing is contacted before ``train()``):

1. ``python -c pass``: the whole price of ``liveparams run`` itself (its own
   interpreter and CLI, then the ``exec``) plus the bootstrap ``sitecustomize``;
2. the same with the bootstrap on ``PYTHONPATH`` but without the CLI: what every
   Python process the command starts pays (a torchrun rank, a data loader);
3. ``import transformers.trainer``: a training process, where the bootstrap
   patches ``Trainer.train``.

Wall-clock times on a shared machine swing by more than the bootstrap costs, so
the table also gives Python's own account (``-X importtime``, median): the
``sitecustomize`` imports at start-up, and the liveparams modules the patch
imports into a process that imports ``transformers.trainer``.

Run: ``python benchmarks/run_startup.py`` (about a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from liveparams._commands_run import BOOTSTRAP_DIR

LIVEPARAMS = str(Path(sys.executable).with_name("liveparams"))
CONFIG = {
    "JOB_ID": "5f0e2a1c-1111-4222-8333-444455556666",
    "SUPABASE_URL": "http://127.0.0.1:9",
    "SUPABASE_SERVICE_ROLE_KEY": "unused",
}


def timed(command: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - began


def compare(
    plain: list[str], instrumented: list[str], env: dict[str, str], extra: dict[str, str], repeats: int
) -> tuple[float, float]:
    """Median seconds of ``plain`` and of ``instrumented`` (with ``extra`` in its environment), runs alternating."""
    timed(plain, env)  # warm the file cache for both
    timed(instrumented, {**env, **extra})
    a, b = [], []
    for _ in range(repeats):
        a.append(timed(plain, env))
        b.append(timed(instrumented, {**env, **extra}))
    return statistics.median(a), statistics.median(b)


def import_time_us(command: list[str], env: dict[str, str], module: str, repeats: int) -> float:
    """Median ``-X importtime`` microseconds of ``module`` and its siblings of the same name, outermost only."""
    found = []
    for _ in range(repeats):
        err = subprocess.run([command[0], "-X", "importtime", *command[1:]], env=env, capture_output=True, text=True)
        rows = []  # (depth, name, cumulative µs)
        for line in err.stderr.splitlines():
            if line.startswith("import time:") and line.count("|") == 2 and "cumulative" not in line:
                _, cumulative, name = line.split("|")
                rows.append((len(name) - len(name.lstrip()), name.strip(), int(cumulative)))
        ours = [(depth, us) for depth, name, us in rows if name.split(".")[0] == module]
        outer = min((depth for depth, _ in ours), default=0)
        found.append(sum(us for depth, us in ours if depth == outer))
    return statistics.median(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    # Bytecode written as an installed package has it (pip compiles at install): no recompiling every run.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(HF_HUB_OFFLINE="1", **CONFIG)
    bootstrap = {"PYTHONPATH": os.pathsep.join(filter(None, [str(BOOTSTRAP_DIR), env.get("PYTHONPATH")]))}
    python = [sys.executable, "-c", "pass"]
    trainer = [sys.executable, "-c", "import transformers.trainer"]
    rows = [
        (
            "python -c pass, under liveparams run",
            *compare(python, [LIVEPARAMS, "run", "--", *python], env, {}, args.repeats),
        ),
        ("python -c pass, bootstrap on PYTHONPATH", *compare(python, python, env, bootstrap, args.repeats)),
        (
            "import transformers.trainer, bootstrap on PYTHONPATH",
            *compare(trainer, trainer, env, bootstrap, max(1, args.repeats // 3)),
        ),
    ]
    patched = {**env, **bootstrap}
    site_plain = import_time_us(python, env, "sitecustomize", args.repeats)
    site_ours = import_time_us(python, patched, "sitecustomize", args.repeats)
    patch_cost = import_time_us(trainer, patched, "liveparams", max(1, args.repeats // 3))
    table = Table(title=f"Process start-up, median of {args.repeats} alternating runs")
    for column in ("command", "plain", "with liveparams run", "added", "ratio"):
        table.add_column(column, justify="left" if column == "command" else "right")
    for name, plain, instrumented in rows:
        table.add_row(
            name,
            f"{plain * 1e3:.1f} ms",
            f"{instrumented * 1e3:.1f} ms",
            f"{(instrumented - plain) * 1e3:+.1f} ms",
            f"{instrumented / plain:.2f}×",
        )
    Console().print(table)
    account = Table(title="Python's account (-X importtime), median")
    for column in ("import", "plain", "with the bootstrap"):
        account.add_column(column, justify="left" if column == "import" else "right")
    account.add_row(
        "sitecustomize at start-up (ours, then the one it chains to)", f"{site_plain:.0f} µs", f"{site_ours:.0f} µs"
    )
    account.add_row("liveparams modules imported by import transformers.trainer", "0 µs", f"{patch_cost / 1e3:.1f} ms")
    Console().print(account)


if __name__ == "__main__":
    main()
