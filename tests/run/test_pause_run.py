"""``command=pause`` and ``resume`` under ``liveparams run``, through the stack, in one process and under torchrun.

A person pauses a script that knows nothing of liveparams, sees the job row say "paused at
step N", changes the learning rate (applied at once, at step N), resumes, then stops it.
Every step's rate and loss equal (``==``) those of a reference run that got the same change
at step N and never paused. Under torchrun the pause outlasts the timeout of the process
group liveparams exchanges over (``--short-timeout``), which a hold waiting in one
collective would not survive.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from run_helpers import (
    BIN,
    DEADLINE_S,
    NEW_LR,
    SHORT_TIMEOUT_S,
    Running,
    child_env,
    decided,
    is_step_line,
    liveparams_run,
)

from liveparams._views import trainer_attachment
from liveparams_stack.local import free_port

SCRIPT = Path(__file__).with_name("train_script.py")
MAX_STEPS = 3000  # far more steps than the test needs: the stop request ends the run


def launcher(ranks: int) -> list[str]:
    if ranks == 1:
        return [sys.executable]
    return [str(BIN / "torchrun"), "--nproc_per_node", str(ranks), "--master_port", str(free_port())]


def wait_for(what: str, probe: Callable[[], Any], running: Running) -> Any:
    """``probe()``'s first truthy answer; fails if the run ends or ``DEADLINE_S`` passes first."""
    deadline = time.monotonic() + DEADLINE_S
    while not (found := probe()):
        alive = running.proc.poll() is None
        assert alive and time.monotonic() < deadline, f"{what}: not seen; {''.join(running.lines)[-3000:]}"
        time.sleep(0.05)
    return found


def last_step(running: Running) -> int:
    """The last ``step N`` printed (two ranks' lines may interleave: ``step 2step 2``)."""
    return max(int(n) for line in running.lines if is_step_line(line) for n in re.findall(r"step (\d+)", line))


def pause_change_resume_stop(
    running: Running, ask: Callable[[dict[str, Any]], dict[str, Any]], http: httpx.Client, job_id: str
) -> int:
    """Drive the run as a person would; the step it paused at."""

    def outcome(request: dict[str, Any]) -> dict[str, Any]:
        return wait_for(f"the outcome of request {request['id']}", lambda: decided(http, request["id"]), running)

    def job() -> dict[str, Any]:
        return http.get("/rest/v1/local_training_jobs", params={"id": f"eq.{job_id}", "select": "*"}).json()[0]

    assert running.started.wait(DEADLINE_S * 3) and running.proc.poll() is None, "".join(running.lines)
    paused = outcome(ask({"command": "pause"}))
    at = paused["step"]
    assert paused["status"] == "applied" and at >= 1
    row = wait_for("the job row saying paused", lambda: (r := job())["trainer_paused_at"] and r, running)
    assert row["trainer_pause_step"] == at
    assert trainer_attachment(row).label == f"paused at step {at}"  # what `liveparams job show`/`watch` print

    changed = outcome(ask({"learning_rate": NEW_LR}))
    assert (changed["status"], changed["step"]) == ("applied", at)  # at once, while paused
    time.sleep(2 * SHORT_TIMEOUT_S)  # held past the timeout of liveparams' process group (under torchrun)
    assert last_step(running) == at  # no step was taken while paused
    assert trainer_attachment(job()).attached  # the heartbeat went on

    resumed = outcome(ask({"command": "resume"}))
    assert (resumed["status"], resumed["step"]) == ("applied", at)
    wait_for("the job row saying running", lambda: not job()["trainer_paused_at"], running)
    wait_for("a step after the pause", lambda: last_step(running) > at, running)
    ask({"command": "stop"})
    running.finish()
    return at


@pytest.mark.stack
@pytest.mark.slow
@pytest.mark.parametrize("ranks", [1, 2], ids=["one process", "torchrun 2 ranks"])
def test_pause_change_resume_equals_a_run_that_got_the_change_at_that_step(
    ranks: int,
    model_dir: str,
    tmp_path: Path,
    stack: dict[str, Any],
    request_update: Callable[..., dict[str, Any]],
    service_http: httpx.Client,
) -> None:
    live, reference = tmp_path / "live", tmp_path / "reference"
    script = [*launcher(ranks), str(SCRIPT), model_dir]
    running = Running(
        liveparams_run(*script, str(live), str(MAX_STEPS), "--short-timeout", job=stack["job_id"]),
        stack["env"],
        is_step_line,
    )
    ask = functools.partial(request_update, stack["jwt"], stack["job_id"])
    try:
        at = pause_change_resume_stop(running, ask, service_http, stack["job_id"])
    finally:
        if running.proc.poll() is None:  # a failed test leaves no training behind, paused or not
            with contextlib.suppress(Exception):  # torchrun's ranks may outlive a kill of its group: stop them
                ask({"command": "stop"})
                running.proc.wait(DEADLINE_S)
            if running.proc.poll() is None:
                os.killpg(running.proc.pid, signal.SIGKILL)
    used = json.loads((live / "rank0.json").read_text())
    end = used["steps"]
    assert at < end < MAX_STEPS

    subprocess.run(
        [*launcher(ranks), str(SCRIPT), model_dir, str(reference), str(MAX_STEPS), "--reference", str(at), str(end)],
        env=child_env(),
        check=True,
        timeout=300,
    )
    expected = json.loads((reference / "rank0.json").read_text())
    assert (used["lrs"], used["losses"], end) == (expected["lrs"], expected["losses"], expected["steps"])
    if ranks == 2:
        assert json.loads((live / "rank1.json").read_text())["lrs"] == used["lrs"]
