"""Four ranks (torchrun, gloo, CPU) apply every change at the same step, and roll back together.

Rank 0 takes its requests at one step boundary and every rank applies them at the next
(docs/architecture.md, "Several processes"): the exchange overlaps a step instead of holding
each boundary. A failure on one rank still fails the request on all, and undoes it on every
rank that applied it.
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


@pytest.mark.slow
def test_four_ranks_apply_at_the_same_step_and_roll_back_together(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(RANKS)]
    command += ["--master_port", str(free_port()), str(SCRIPT), str(tmp_path)]
    subprocess.run(command, env=env, check=True, timeout=240)  # a rank left waiting fails here by the timeout
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(RANKS)]
    rank0 = ranks[0]

    # Taken at boundaries 3, 6 and 9, decided at 4, 7 and 10 on every rank.
    changed, split, stop = rank0["outcomes"]
    assert changed[:2] == ("applied", 4)
    assert split[:2] == ("failed", 7)
    assert split[2].startswith("on rank 2: weight_decay: RuntimeError: apply failed on rank 2 only")
    assert stop[:2] == ("applied", 10)
    assert all(r["stopped"] == 10 for r in ranks)

    lrs = rank0["lrs"]  # lrs[i] is the rate step i + 1 used
    assert lrs[3] == pytest.approx(1e-3 * 17 / 18)  # step 4 ran before the change applied: the old peak
    assert lrs[4] == pytest.approx(5e-3 * 16 / 18)  # step 5 on: the new peak, on the same linear decay
    assert lrs[7] == pytest.approx(5e-3 * 13 / 18)  # the failed request's rate was undone where it applied
    for other in ranks[1:]:
        assert other["lrs"] == lrs  # the same rate at every step on every rank
        assert other["weight_decay"] == rank0["weight_decay"]
        assert all(torch.equal(a, b) for a, b in zip(other["weights"], rank0["weights"], strict=True))
    assert set(rank0["weight_decay"]) == {0.01}  # applied on ranks 0, 1 and 3, rolled back there with rank 2
