"""Four ranks (torchrun, gloo, CPU) apply every change at the same step, and roll back together.

Rank 0 takes its requests at one exchange and every rank applies them at the next, a step
boundary announced in advance (docs/architecture.md, "Several processes"): the exchange
overlaps the steps in between instead of holding each boundary. A failure on one rank still
fails the request on all, and undoes it on every rank that applied it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from liveparams_stack.local import free_port

SCRIPT = Path(__file__).with_name("agreement_run.py")
ROOT = Path(__file__).resolve().parents[2]
RANKS = 4
MAX_STEPS = 40  # as in agreement_run.py


def schedule(step: int, peak: float) -> float:
    """The rate step ``step`` + 1 uses: linear, 2 warmup steps, over ``MAX_STEPS``."""
    return peak * (MAX_STEPS - step) / (MAX_STEPS - 2)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "posts", "decided"),
    [
        ("every", list(range(11)), (4, 7, 10)),  # taken at 3, 6 and 9
        ("spaced", [0, 1, 4, 7, 10, 13], (7, 10, 13)),  # taken at 4, 7 and 10, the first exchanges after 3, 6, 9
    ],
)
def test_four_ranks_apply_at_the_same_step_and_roll_back_together(
    tmp_path: Path, mode: str, posts: list[int], decided: tuple[int, int, int]
) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(RANKS)]
    command += ["--master_port", str(free_port()), str(SCRIPT), str(tmp_path), mode]
    subprocess.run(command, env=env, check=True, timeout=240)  # a rank left waiting fails here by the timeout
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(RANKS)]
    rank0 = ranks[0]

    changed, split, stop = rank0["outcomes"]
    assert changed[:2] == ("applied", decided[0])
    assert split[:2] == ("failed", decided[1])
    assert split[2].startswith("on rank 2: weight_decay: RuntimeError: apply failed on rank 2 only")
    assert stop[:2] == ("applied", decided[2])
    assert all(r["stopped"] == decided[2] for r in ranks)
    assert all(r["posts"] == posts for r in ranks)  # train begin, then the boundaries every rank knew in advance

    lrs = rank0["lrs"]  # lrs[i] is the rate step i + 1 used
    first = decided[0]
    assert lrs[first - 1] == pytest.approx(schedule(first - 1, 1e-3))  # the step before it applied: the old peak
    assert lrs[first] == pytest.approx(schedule(first, 5e-3))  # from the next step on: the new peak
    assert lrs[decided[1]] == pytest.approx(schedule(decided[1], 5e-3))  # the failed request's rate was undone
    for other in ranks[1:]:
        assert other["lrs"] == lrs  # the same rate at every step on every rank
        assert other["weight_decay"] == rank0["weight_decay"]
        assert all(torch.equal(a, b) for a, b in zip(other["weights"], rank0["weights"], strict=True))
    assert set(rank0["weight_decay"]) == {0.01}  # applied on ranks 0, 1 and 3, rolled back there with rank 2


def test_rank0_spaces_the_exchanges_by_the_step_time_it_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    from liveparams.trainer_hooks import _distributed

    clock = iter([100.0, 100.03, 100.13, 100.73, 101.73])  # posts at steps 0, 3, 13, 14, 15
    monkeypatch.setattr(_distributed.time, "monotonic", lambda: next(clock))
    cadence = _distributed._Cadence()
    gaps = [cadence.gap(step) for step in (0, 3, 13, 14, 15)]
    every = _distributed.EXCHANGE_EVERY_S
    assert gaps == [1, round(every / 0.01), round(every / 0.01), 1, 1]  # 10 ms steps; then 600 ms and 1 s steps
