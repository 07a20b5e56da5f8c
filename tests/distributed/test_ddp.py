"""Two DDP ranks (torchrun, gloo, CPU) stay identical through live changes because rank 0 broadcasts them.

Rank 0 takes requests at one step boundary and every rank applies them at the next.

The broadcast costs a collective per step only while rank 0 has an update source. Every rank
agrees on each outcome: a failure on one rank fails the request on all, and no failure leaves
a collective half-entered.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from liveparams_stack.local import free_port

SCRIPT = Path(__file__).with_name("ddp_run.py")
ROOT = Path(__file__).resolve().parents[2]


def run_ranks(model_dir: str, out: Path, mode: str) -> tuple[dict, dict]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    port = str(free_port())
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", port]
    subprocess.run([*command, str(SCRIPT), model_dir, str(out), mode], env=env, check=True, timeout=180)
    return torch.load(out / "rank0.pt"), torch.load(out / "rank1.pt")


def max_difference(a: dict, b: dict) -> float:
    return max(float((a[k] - b[k]).abs().max()) for k in a)


@pytest.fixture(scope="module")
def model_dir() -> str:
    from liveparams.demo.tiny import tiny_model_dir

    return tiny_model_dir()


@pytest.mark.slow
def test_every_rank_applies_the_same_change_at_the_same_step(model_dir: str, tmp_path: Path) -> None:
    rank0, rank1 = run_ranks(model_dir, tmp_path, "broadcast")
    assert rank0["lrs"] == rank1["lrs"]
    # Taken by rank 0 after step 3, applied by every rank after step 4 (the header travels during step 4).
    assert rank0["lrs"][4] == pytest.approx(1e-3 * 3 / 5)
    assert rank0["lrs"][5] == pytest.approx(5e-3 * 4 / 5)  # in force from step 5, warmup kept
    assert max_difference(rank0["weights"], rank1["weights"]) == 0.0
    assert rank0["step_broadcasts"] == rank1["step_broadcasts"] >= 10  # a count at every step boundary
    # Both ranks applied both changes; the log says so once, on rank 0 (no duplicated lines under torchrun).
    applied = [line for line in rank0["log_lines"] if line.startswith("✅ Applied learning rate update")]
    assert len(applied) == 2
    assert not [line for line in rank1["log_lines"] if "Applied" in line]


@pytest.mark.slow
def test_when_rank0_has_no_source_no_rank_makes_a_collective_per_step(model_dir: str, tmp_path: Path) -> None:
    rank0, rank1 = run_ranks(model_dir, tmp_path, "no-source")
    assert rank0["step_broadcasts"] == rank1["step_broadcasts"] == 0
    assert max_difference(rank0["weights"], rank1["weights"]) == 0.0


@pytest.mark.slow
def test_without_the_broadcast_the_replicas_diverge(model_dir: str, tmp_path: Path) -> None:
    rank0, rank1 = run_ranks(model_dir, tmp_path, "no-broadcast")
    assert rank0["lrs"] != rank1["lrs"]
    assert max_difference(rank0["weights"], rank1["weights"]) > 1e-6


@pytest.mark.slow
def test_ranks_agree_on_every_outcome_and_no_failure_hangs_them(model_dir: str, tmp_path: Path) -> None:
    rank0, rank1 = run_ranks(model_dir, tmp_path, "faults")  # a hang fails here by the subprocess timeout

    split, unsent, plain = rank0["outcomes"]
    assert split[:2] == ("failed", 4)  # taken after step 3, decided after step 4
    assert split[2].startswith("on rank 1: weight_decay: RuntimeError: apply failed on this rank only")
    assert unsent[:2] == ("failed", 5) and "could not be sent to every rank" in unsent[2]
    assert plain[:2] == ("applied", 8)
    # Rank 0 applied the request taken at step 3, then rolled it back with rank 1: rates and decay never split.
    assert rank0["lrs"] == rank1["lrs"]
    assert rank0["lrs"][5] == pytest.approx(1e-3 * 4 / 5)  # warmup at the old peak: the change was undone
    assert rank0["weight_decay"] == rank1["weight_decay"]
    assert rank0["weight_decay"][10][0] == 0.01
    assert rank0["max_grad_norm"] == rank1["max_grad_norm"] == 1.0
    assert max_difference(rank0["weights"], rank1["weights"]) == 0.0
    # The split apply is logged once, by rank 0 (the unsent batch has its own error line).
    assert len([line for line in rank0["log_lines"] if line.startswith("Parameter update")]) == 1
    assert not [line for line in rank1["log_lines"] if line.startswith("Parameter update")]


@pytest.mark.slow
def test_a_rank_without_the_callback_leaves_no_rank_waiting_and_no_change_is_applied(
    model_dir: str, tmp_path: Path
) -> None:
    rank0, rank1 = run_ranks(model_dir, tmp_path, "rank0-only")  # a hang fails here by the subprocess timeout

    assert rank0["lrs"] == rank1["lrs"]
    assert rank0["lrs"][4] == pytest.approx(1e-3 * 3 / 5)  # the change queued after step 3 was not applied
    assert max_difference(rank0["weights"], rank1["weights"]) == 0.0
    assert rank0["step_broadcasts"] == 0
    assert any(
        line.startswith("runtime parameter updates disabled for this run: a rank lacks") for line in rank0["log_lines"]
    )


@pytest.mark.slow
def test_a_loop_without_trainer_applies_each_change_on_every_rank_at_the_same_step(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    port = str(free_port())
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", port]
    script = Path(__file__).with_name("loop_run.py")
    subprocess.run([*command, str(script), str(tmp_path)], env={**env, "OMP_NUM_THREADS": "1"}, check=True, timeout=180)
    rank0, rank1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")

    assert rank0["lrs"] == rank1["lrs"]
    # Taken by rank 0 before boundary 3, applied by every rank at boundary 4 (one step later).
    assert rank0["lrs"][3] == pytest.approx(1e-3 * 17 / 18)
    assert rank0["lrs"][4] == pytest.approx(5e-3 * 16 / 18)  # step 5 of the linear decay, at the new peak
    assert rank0["stopped"] == rank1["stopped"] == 7  # the stop taken before boundary 6 applies at 7
    assert all(torch.equal(a, b) for a, b in zip(rank0["weights"], rank1["weights"], strict=True))


@pytest.mark.slow
def test_a_pause_longer_than_the_timeout_holds_every_rank_and_changes_nothing_else(
    model_dir: str, tmp_path: Path
) -> None:
    """Paused ~12 s while liveparams' group times out after 3 s (a hold that waited in one collective dies)."""
    paused0, paused1 = run_ranks(model_dir, tmp_path / "paused", "pause")
    reference, _ = run_ranks(model_dir, tmp_path / "reference", "broadcast")  # the change taken at 3, no pause

    assert max_difference(paused0["weights"], paused1["weights"]) == 0.0
    assert paused0["lrs"] == paused1["lrs"] == reference["lrs"]
    assert paused0["losses"] == reference["losses"]
    assert max_difference(paused0["weights"], reference["weights"]) == 0.0
    statuses = [(status, step) for status, step, _ in paused0["outcomes"]]
    # Taken after step 3, so the pause applies after step 4 (one exchange later, as any request), and the change
    # made while paused and the resume apply there too; the request taken at step 6 applies after step 7.
    assert statuses == [("applied", 4)] * 3 + [("applied", 7)]


@pytest.mark.slow
def test_a_pause_no_resume_can_reach_ends_on_every_rank_at_the_same_round(model_dir: str, tmp_path: Path) -> None:
    """Rank 0's source stops receiving while every rank holds: all go on together and stay identical."""
    rank0, rank1 = run_ranks(model_dir, tmp_path / "lost", "pause-lost")

    assert max_difference(rank0["weights"], rank1["weights"]) == 0.0
    assert rank0["lrs"] == rank1["lrs"] and len(rank0["lrs"]) == 10  # every step taken, on both ranks
    assert [(status, step) for status, step, _ in rank0["outcomes"]] == [("applied", 4), ("applied", 7)]
    ended = "Paused at step 4 with no update source left to resume it: going on"
    assert ended in rank0["log_lines"] and ended in rank1["log_lines"]
