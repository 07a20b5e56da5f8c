"""What the ``liveparams run`` and custom-loop tests share: the commands, their environment, a change mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

NEW_LR = 2.5e-4  # what each test changes the learning rate to, mid-run
SHORT_TIMEOUT_S = 3  # train_script.py --short-timeout: how long liveparams' process group may wait in a collective
DEADLINE_S = 60.0  # generous: a loaded 2-core machine; an idle one takes milliseconds
BIN = Path(sys.executable).parent  # liveparams, torchrun and trl of this environment
ROOT = Path(__file__).resolve().parents[2]
# A complete configuration whose database is not there: `liveparams run` installs its bootstrap,
# training runs on without updates (what the process and callback-count tests need, no stack).
UNREACHABLE = {
    "JOB_ID": "5f0e2a1c-1111-4222-8333-444455556666",
    "SUPABASE_URL": "http://127.0.0.1:9",
    "SUPABASE_SERVICE_ROLE_KEY": "unused-key",
}


def child_env(**extra: str) -> dict[str, str]:
    """This environment without any liveparams configuration, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE", "LIVEPARAMS", "JOB_ID"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", **extra)
    return env


def liveparams_run(*command: str, job: str | None = None) -> list[str]:
    """``liveparams run [--job JOB] -- COMMAND``."""
    return [str(BIN / "liveparams"), "run", *(["--job", job] if job else []), "--", *command]


class Running:
    """A command started in the background; its output read as it comes, with an event at the first step."""

    def __init__(
        self, command: list[str], env: dict[str, str], started: Callable[[str], bool], cwd: Path | None = None
    ) -> None:
        self.proc = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            cwd=cwd,
        )
        self.lines: list[str] = []
        self.started = threading.Event()
        self._reader = threading.Thread(target=self._read, args=(started,), daemon=True)
        self._reader.start()

    def _read(self, started: Callable[[str], bool]) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if started(line):
                self.started.set()
        self.started.set()  # the command ended

    def finish(self, timeout: float = 300) -> str:
        returncode = self.proc.wait(timeout)
        self._reader.join()
        output = "".join(self.lines)
        assert returncode == 0, output
        return output


def change_mid_run(
    running: Running, stack: dict[str, Any], request_update: Callable[..., dict[str, Any]], http: httpx.Client
) -> dict[str, Any]:
    """Once training steps, ask for ``NEW_LR``, wait until decided, then stop the run; the decided row."""
    try:
        assert running.started.wait(DEADLINE_S * 3) and running.proc.poll() is None, "".join(running.lines)
        change = request_update(stack["jwt"], stack["job_id"], {"learning_rate": NEW_LR})
        deadline = time.monotonic() + DEADLINE_S
        while not (row := decided(http, change["id"])):
            assert time.monotonic() < deadline, f"not decided in {DEADLINE_S} s: {''.join(running.lines)[-3000:]}"
            time.sleep(0.05)
        request_update(stack["jwt"], stack["job_id"], {"command": "stop"})
        running.finish()
    finally:
        if running.proc.poll() is None:  # a failed test leaves no training behind
            os.killpg(running.proc.pid, signal.SIGKILL)  # torchrun's ranks too
    return row


def decided(http: httpx.Client, request_id: str) -> dict[str, Any] | None:
    rows = http.get(
        "/rest/v1/parameter_update_requests",
        params={"id": f"eq.{request_id}", "status": "not.is.null", "select": "status,step,changes,reason"},
    ).json()
    return rows[0] if rows else None


def restarted_schedule(changed_at: int, last: int, total: int, *, peak: float, warmup: int) -> dict[int, float]:
    """The rate at each step 1..last of a linear schedule whose peak becomes ``NEW_LR`` after ``changed_at``.

    What a run restarted with ``NEW_LR`` at that step uses: the same shape, the new peak.
    """
    from hooks_helpers import schedule_factors

    factors = schedule_factors("linear", warmup, total)
    return {s: (peak if s <= changed_at else NEW_LR) * factors[s - 1] for s in range(1, last + 1)}


def is_step_line(line: str) -> bool:
    """The ``step N ...`` lines the test scripts print once each optimizer step is taken."""
    return line.startswith("step ")
