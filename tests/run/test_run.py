"""``liveparams run -- <command>``: scripts that know nothing of liveparams get live updates, through the stack.

Each run changes the learning rate mid-run through the RPC, then stops the run with
``command=stop``; the rates the optimizer used must be those of a run started with the
new rate at that step (the same linear schedule, the new peak).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hooks_helpers import BASE_ARGS
from run_helpers import BIN, NEW_LR, UNREACHABLE, Running, child_env, is_step_line, liveparams_run, restarted_schedule

from liveparams_stack.local import free_port

SCRIPT = Path(__file__).with_name("train_script.py")
MAX_STEPS = 3000  # far more steps than the test needs: the stop request ends the run


def restarted_with(step: int, last: int) -> dict[int, float]:
    return restarted_schedule(step, last, MAX_STEPS, peak=BASE_ARGS["learning_rate"], warmup=BASE_ARGS["warmup_steps"])


def used_rates(path: Path) -> dict[int, float]:
    return {int(step): lr for step, lr in json.loads(path.read_text())["lrs"].items()}


@pytest.mark.stack
@pytest.mark.slow
def test_an_unmodified_trainer_script_gets_live_updates(
    model_dir: str, tmp_path: Path, stack: dict[str, Any], changed_mid_run: Callable[[Running], dict[str, Any]]
) -> None:
    script = [sys.executable, str(SCRIPT), model_dir, str(tmp_path), str(MAX_STEPS)]
    command = liveparams_run(*script, job=stack["job_id"])
    row = changed_mid_run(Running(command, stack["env"], is_step_line))

    assert row["status"] == "applied" and row["changes"]["learning_rate"]["new"] == NEW_LR
    used = used_rates(tmp_path / "rank0.json")
    assert 1 <= row["step"] < max(used) < MAX_STEPS  # changed mid-run, then stopped
    assert used == pytest.approx(restarted_with(row["step"], max(used)))


@pytest.mark.stack
@pytest.mark.slow
def test_under_torchrun_both_ranks_apply_the_change_at_the_same_step(
    model_dir: str, tmp_path: Path, stack: dict[str, Any], changed_mid_run: Callable[[Running], dict[str, Any]]
) -> None:
    torchrun = [str(BIN / "torchrun"), "--nproc_per_node", "2", "--master_port", str(free_port())]
    command = liveparams_run(*torchrun, str(SCRIPT), model_dir, str(tmp_path), str(MAX_STEPS), job=stack["job_id"])
    row = changed_mid_run(Running(command, stack["env"], is_step_line))

    assert row["status"] == "applied"
    rank0, rank1 = used_rates(tmp_path / "rank0.json"), used_rates(tmp_path / "rank1.json")
    assert rank0 == rank1
    assert 1 <= row["step"] < max(rank0) < MAX_STEPS
    assert rank0 == pytest.approx(restarted_with(row["step"], max(rank0)))


def test_a_script_that_adds_the_callback_itself_gets_one_even_across_two_trains(model_dir: str, tmp_path: Path) -> None:
    """No stack needed: an unreachable database still gives every trainer its callback, which is what is counted."""
    for flags, out in (([], tmp_path / "plain"), (["--own-callback"], tmp_path / "own")):
        out.mkdir()
        command = liveparams_run(sys.executable, str(SCRIPT), model_dir, str(out), "3", "--twice", *flags)
        subprocess.run(command, env=child_env(**UNREACHABLE), check=True, timeout=300, capture_output=True)
        callbacks = json.loads((out / "rank0.json").read_text())["callbacks"]
        assert [names.count("RuntimeParameterCallback") for names in callbacks] == [1, 1], flags


def logged_rates(output: str) -> dict[int, float]:
    """Step → learning rate from the log lines Trainer prints with ``--disable_tqdm`` and ``--logging_steps 1``."""
    lines = [ast.literal_eval(line) for line in output.splitlines() if line.startswith("{") and "learning_rate" in line]
    # An applied change is logged too, as {'liveparams/learning_rate': …} (for report_to's trackers): not a step's log.
    logs = [log for log in lines if "learning_rate" in log]
    return {step: float(log["learning_rate"]) for step, log in enumerate(logs, start=1)}


@pytest.mark.stack
@pytest.mark.slow
def test_trls_own_cli_gets_live_updates(
    model_dir: str, tmp_path: Path, stack: dict[str, Any], changed_mid_run: Callable[[Running], dict[str, Any]]
) -> None:
    from liveparams.demo.tiny import sft_dataset

    data = tmp_path / "data"
    data.mkdir()
    (data / "train.jsonl").write_text("".join(json.dumps({"text": row["text"]}) + "\n" for row in sft_dataset(64)))
    options = {
        "model_name_or_path": model_dir,
        "dataset_name": str(data),
        "output_dir": str(tmp_path / "out"),
        "max_steps": MAX_STEPS,
        "learning_rate": BASE_ARGS["learning_rate"],
        "warmup_steps": BASE_ARGS["warmup_steps"],
        "lr_scheduler_type": "linear",
        "per_device_train_batch_size": 4,
        "max_length": 32,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "seed": 0,
        "disable_tqdm": True,
        "use_cpu": True,
    }
    trl = [str(BIN / "trl"), "sft", *(f"--{k}={v}" for k, v in options.items())]
    started = lambda line: line.startswith("{") and "learning_rate" in line  # noqa: E731
    running = Running(liveparams_run(*trl, job=stack["job_id"]), stack["env"], started)
    row = changed_mid_run(running)

    assert row["status"] == "applied"
    logged = logged_rates("".join(running.lines))
    assert 1 <= row["step"] < max(logged) < MAX_STEPS
    # Trainer prints each rate to 4 significant digits; the change is 4× the rate.
    assert logged == pytest.approx(restarted_with(row["step"], max(logged)), rel=1e-3)
