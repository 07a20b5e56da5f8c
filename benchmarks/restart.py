"""An in-process restart vs a relaunch from the checkpoint, side by side, on the tiny model.

The same change, ``gradient_accumulation_steps`` 2 → 4 at step S of the demo's SFT run
(``liveparams.demo.tiny.demo_sft_trainer``, CPU), applied two ways:

1. **in-process**: the request reaches the callback at step S, the run saves
   ``checkpoint-S``, leaves the loop, and ``liveparams.train`` calls ``train()`` again
   from it with the new value. Timed from step S's end to step S+1's start.
2. **relaunch**: what a user does by hand today: the run saves ``checkpoint-S`` and
   ends (``command: stop``), then the same script is started again with the new value
   and ``resume_from_checkpoint``. Timed from step S's end to the exit of the first
   process, plus from the second's spawn to its step S+1's start.

Each runs in a fresh process (imports paid as a training script pays them), ``--repeats``
times, alternating; the table gives the median and the range. (A relaunch also resumes at
the wrong samples, see docs/parameters.md; only its time is measured here.)

Run: ``python benchmarks/restart.py`` (about two minutes on 2 CPU cores).
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
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rich.console import Console
from rich.table import Table

STEP = 4  # S: 64 samples consumed at batch 8 and accumulation 2, a whole number of the new 32-sample steps
OLD, NEW = 2, 4


def _child(mode: str, out: str) -> None:
    """One training process; prints one JSON line of wall-clock instants (``time.time()``)."""
    from gpu_check import ScriptedSource
    from transformers import TrainerCallback

    import liveparams
    from liveparams.demo.tiny import demo_sft_trainer

    marks: dict[str, float] = {}

    class Clock(TrainerCallback):
        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == STEP:
                marks.setdefault("resumed", time.time())

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == STEP:
                marks.setdefault("left", time.time())
                if mode != "resume":
                    source.push(**({"command": "stop"} if mode == "stop" else {"gradient_accumulation_steps": NEW}))

    source = ScriptedSource()
    accumulation = NEW if mode == "resume" else OLD
    trainer = demo_sft_trainer(out, STEP + 2, [], gradient_accumulation_steps=accumulation, logging_steps=1000)
    trainer.add_callback(Clock())
    trainer.add_callback(liveparams.RuntimeParameterCallback(source, trainer=trainer))
    if mode == "resume":
        trainer.train(resume_from_checkpoint=str(Path(out) / f"checkpoint-{STEP}"))
    else:
        liveparams.train(trainer)
    if mode == "in-process":  # a refused change would time nothing
        assert [o.status.value for o in source.outcomes] == ["applied"], source.outcomes
    print(json.dumps(marks), flush=True)


def _run(mode: str, out: str) -> tuple[dict[str, float], float, float]:
    """The child's marks, and the wall-clock instants it was spawned at and exited at."""
    spawned = time.time()
    done = subprocess.run([sys.executable, __file__, "--child", mode, out], capture_output=True, text=True, check=True)
    exited = time.time()
    return json.loads(done.stdout.strip().splitlines()[-1]), spawned, exited


def measure() -> tuple[float, float]:
    """Seconds from step S's end to step S+1's start: in-process, and by a relaunch."""
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        marks, _, _ = _run("in-process", a)
        in_process = marks["resumed"] - marks["left"]
        stopped, _, exited = _run("stop", b)
        resumed, spawned, _ = _run("resume", b)
        relaunch = (exited - stopped["left"]) + (resumed["resumed"] - spawned)
    return in_process, relaunch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "OUT"), help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        _child(*options.child)
        return
    runs = [measure() for _ in range(options.repeats)]
    table = Table(title=f"gradient_accumulation_steps {OLD} → {NEW} at step {STEP}, tiny model, CPU")
    for column in ("way", "step S end → step S+1 start (median)", "range"):
        table.add_column(column)
    for name, times in (
        ("in-process restart", [r[0] for r in runs]),
        ("relaunch from the checkpoint", [r[1] for r in runs]),
    ):
        table.add_row(name, f"{statistics.median(times):.2f} s", f"{min(times):.2f}–{max(times):.2f} s")
    Console().print(table)


if __name__ == "__main__":
    main()
