"""``liveparams run``: a restart-only setting sent through the stack restarts the run in-process, as the rule says.

An unmodified script (``restart_script.py``) trains under ``liveparams run``; the test
asks for a new accumulation or batch size through the RPC, then stops the run. What the
run consumed (every micro-batch's rows and loss, every step's rate) must equal, with
``==``, the reference run of the rule: trained to the step the change was applied at with
the old settings, saved, and gone on from the same samples with the new ones, to the same
last step. Where the samples the epoch consumed are not a whole number of the new steps the
trainer refuses the request with that reason, and the test asks again, as a user would.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_helpers import as_owner, liveparams
from restarted_runs import Seen, reference, resumed_from
from run_helpers import DEADLINE_S, Running, decided, is_step_line, liveparams_run

SCRIPT = Path(__file__).with_name("restart_script.py")
MAX_STEPS = 400  # more than the test needs: the stop request ends the run
NOT_LINED_UP = "not a whole number of the new steps"

CASES: dict[str, tuple[dict[str, int], dict[str, int]]] = {
    "accumulation 2 -> 4": ({"gradient_accumulation_steps": 2}, {"gradient_accumulation_steps": 4}),
    "accumulation 4 -> 2": ({"gradient_accumulation_steps": 4}, {"gradient_accumulation_steps": 2}),
    "batch size 4 -> 8": ({"gradient_accumulation_steps": 2}, {"per_device_train_batch_size": 8}),
}

Ask = Callable[[dict[str, Any]], dict[str, Any]]  # makes one request (the `request_update` fixture, bound to the job)


def _decide(ask: Ask, http: httpx.Client, params: dict[str, Any]) -> dict:
    request_id = ask(params)["id"]
    deadline = time.monotonic() + DEADLINE_S
    while not (row := decided(http, request_id)):
        assert time.monotonic() < deadline, f"{params} not decided in {DEADLINE_S} s"
        time.sleep(0.02)
    return row


def _wait_for_step(running: Running, step: int) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while f"step {step}\n" not in running.lines:
        assert time.monotonic() < deadline and running.proc.poll() is None, "".join(running.lines)[-3000:]
        time.sleep(0.02)


def _restart_shown(http: httpx.Client, stack_env: dict[str, str], stack: dict[str, Any], running: Running) -> str:
    """The job row once it shows an in-process restart (measured seconds > 0), as `liveparams job show` prints it."""
    deadline = time.monotonic() + DEADLINE_S
    params = {"id": f"eq.{stack['job_id']}", "select": "*"}
    while not ((job := http.get("/rest/v1/local_training_jobs", params=params).json()[0])["trainer_restart_kind"]):
        assert time.monotonic() < deadline and running.proc.poll() is None, "".join(running.lines)[-3000:]
        time.sleep(0.05)
    assert job["trainer_restart_seconds"] > 0 and job["trainer_restarted_at"], job
    shown = liveparams("job", "show", stack["job_id"], env={**as_owner(stack_env, stack["jwt"]), "COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    (line,) = [line for line in shown.stdout.splitlines() if line.startswith("last restart: ")]
    assert f" in {job['trainer_restart_seconds']:.2f} s (" in line, line
    return line


@contextlib.contextmanager
def _under_liveparams_run(
    tmp_path: Path, stack: dict[str, Any], request_update: Callable[..., dict[str, Any]], settings: dict[str, int],
    *extra: str,
) -> Iterator[tuple[Running, Ask]]:  # fmt: skip
    """The restart script under ``liveparams run`` on the stack's job, and a way to ask it; killed if a test fails."""
    script = [sys.executable, str(SCRIPT), str(tmp_path / "live"), *map(str, settings.values()), *extra]  # in its order
    running = Running(liveparams_run(*script, job=stack["job_id"]), stack["env"], is_step_line)
    try:
        yield running, lambda params: request_update(stack["jwt"], stack["job_id"], params)
    finally:
        if running.proc.poll() is None:
            os.killpg(running.proc.pid, signal.SIGKILL)


@pytest.mark.stack
@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_a_restart_only_setting_restarts_the_run_in_process_as_the_rule_says(
    tmp_path: Path,
    stack_env: dict[str, str],
    stack: dict[str, Any],
    request_update: Callable[..., dict[str, Any]],
    service_http: httpx.Client,
    case: str,
) -> None:
    old, new = CASES[case]
    settings = {"max_steps": MAX_STEPS, "gradient_accumulation_steps": 1, "per_device_train_batch_size": 4, **old}
    with _under_liveparams_run(tmp_path, stack, request_update, settings) as (running, ask):
        assert running.started.wait(DEADLINE_S * 3) and running.proc.poll() is None, "".join(running.lines)
        while (row := _decide(ask, service_http, new))["status"] == "rejected" and NOT_LINED_UP in row["reason"]:
            pass  # a step or two later the samples line up
        assert row["status"] == "applied", row
        _wait_for_step(running, row["step"] + 3)  # the restarted loop steps
        shown = _restart_shown(service_http, stack_env, stack, running)  # the job row and `job show` say so
        ((name, value),) = new.items()
        assert shown.startswith(f"last restart: restarted in-process at step {row['step']} with {name}={value} in ")
        stop = _decide(ask, service_http, {"command": "stop"})
        running.finish()

    got = json.loads((tmp_path / "live" / "seen.json").read_text())
    assert got["end"] == stop["step"] > row["step"]
    want = reference(tmp_path / "reference", row["step"], settings, new, end=stop["step"])
    assert {int(step): lr for step, lr in got["lrs"].items()} == want.lrs
    assert got["losses"] == want.losses
    assert got["ids"] == want.ids


def _tail(got: dict[str, Any], want: Seen) -> tuple[dict[int, float], list[float], list[list[int]]]:
    n = len(want.losses)
    return {int(s): lr for s, lr in got["lrs"].items() if int(s) in want.lrs}, got["losses"][-n:], got["ids"][-n:]


@pytest.mark.stack
@pytest.mark.slow
def test_a_rewind_sent_through_the_stack_goes_back_to_the_checkpoint_in_process(
    tmp_path: Path,
    stack_env: dict[str, str],
    stack: dict[str, Any],
    request_update: Callable[..., dict[str, Any]],
    service_http: httpx.Client,
) -> None:
    settings = {"max_steps": MAX_STEPS, "gradient_accumulation_steps": 2, "per_device_train_batch_size": 4}
    with _under_liveparams_run(tmp_path, stack, request_update, settings, "10") as (running, ask):
        _wait_for_step(running, 12)
        rewind = _decide(ask, service_http, {"command": "rewind", "checkpoint": 10})
        assert rewind["status"] == "applied" and rewind["step"] > 10, rewind
        deadline = time.monotonic() + DEADLINE_S
        while running.lines.count(f"step {rewind['step']}\n") < 2:  # the rewound run passes it again
            assert time.monotonic() < deadline and running.proc.poll() is None, "".join(running.lines)[-3000:]
            time.sleep(0.02)
        shown = _restart_shown(service_http, stack_env, stack, running)
        assert shown.startswith(f"last restart: rewound from step {rewind['step']} to step 10 in "), shown
        stop = _decide(ask, service_http, {"command": "stop"})
        running.finish()

    got = json.loads((tmp_path / "live" / "seen.json").read_text())
    want = resumed_from(tmp_path / "live" / "trainer" / "checkpoint-10", 10, settings, {}, end=stop["step"])
    assert got["end"] == want.end == stop["step"]
    assert _tail(got, want) == (want.lrs, want.losses, want.ids)
