"""``liveparams run`` leaves the command alone: same process, exit code, stdin/stdout; no cost until Trainer.

No stack needed: these check the process and its environment, not updates.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from run_helpers import UNREACHABLE, child_env, liveparams_run

from liveparams._trainer_credential import TrainerSecret
from liveparams.tokens import mint_job_token

SHOW = (  # this process's id, its PYTHONPATH, and which of the heavy packages (or ours) it has imported
    "import json, os, sys; heavy = ('transformers', 'torch', 'liveparams'); "
    "mods = [m for m in sys.modules if m.split('.')[0] in heavy]; "
    "print(json.dumps([os.getpid(), os.environ.get('PYTHONPATH'), mods]))"
)


def run(*command: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(liveparams_run(*command), env=env, input=stdin, text=True, capture_output=True, timeout=120)


def test_the_command_is_the_process_and_imports_nothing_until_it_imports_transformers() -> None:
    proc = subprocess.Popen(
        liveparams_run(sys.executable, "-c", SHOW), env=child_env(**UNREACHABLE), stdout=subprocess.PIPE, text=True
    )
    out, _ = proc.communicate(timeout=120)
    pid, pythonpath, imported = json.loads(out)
    assert pid == proc.pid  # exec'd: signals to this pid (or its group) reach the command itself
    assert pythonpath.split(os.pathsep)[0].endswith("run-bootstrap")
    assert imported == []


def test_the_cli_loads_neither_the_supabase_client_nor_the_stack_before_its_exec() -> None:
    """Those take about a second to import, which a training's start should not wait for."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "liveparams.cli", "run", "--", sys.executable, "-c", "pass"],
        env=child_env(**UNREACHABLE),
        text=True,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "liveparams._commands_run" in imported  # the CLI's own imports, before the exec, are what this reads
    assert not {name for name in imported if name.split(".")[0] in ("supabase", "realtime", "liveparams_stack")}


def test_exit_code_stdin_and_stdout_pass_through() -> None:
    done = run(
        sys.executable,
        "-c",
        "import sys; print(input().upper()); sys.exit(7)",
        env=child_env(**UNREACHABLE),
        stdin="hello\n",
    )
    assert (done.returncode, done.stdout) == (7, "HELLO\n")


def test_a_signal_ends_the_command_as_it_would_without_liveparams_run() -> None:
    code = "import sys, time; print('ready', flush=True); time.sleep(60)"
    proc = subprocess.Popen(
        liveparams_run(sys.executable, "-c", code),
        env=child_env(**UNREACHABLE),
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    os.killpg(proc.pid, signal.SIGTERM)  # to the whole group, as a scheduler does
    assert proc.wait(timeout=60) == -signal.SIGTERM


def test_without_a_configuration_one_warning_and_the_command_runs_as_it_is() -> None:
    env = child_env()
    done = run(sys.executable, "-c", SHOW, env=env)
    assert done.returncode == 0
    assert json.loads(done.stdout)[1] == env["PYTHONPATH"]  # no bootstrap: exactly as without liveparams run
    assert done.stderr.splitlines() == [
        "liveparams run: No JOB_ID found, runtime parameter updates disabled; the command runs as it is"
    ]


def test_a_sitecustomize_the_environment_had_still_runs(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.theirs_ran = 'yes'\n")  # not inherited
    env = child_env(**UNREACHABLE)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])
    code = "import os, sys; print(sys.theirs_ran, [type(f).__name__ for f in sys.meta_path][0])"
    done = run(sys.executable, "-c", code, env=env)
    assert done.stdout == "yes _TrainerImportHook\n", done.stderr


def test_a_command_that_cannot_start_is_refused_like_a_shell_would() -> None:
    done = run("no-such-command-here", env=child_env(**UNREACHABLE))
    assert done.returncode == 127
    assert "liveparams run: cannot run 'no-such-command-here'" in done.stderr


def test_a_job_given_on_the_command_line_that_cannot_be_this_runs_starts_nothing() -> None:
    """A mistyped ``--job`` would train for hours without live updates: it exits 2 before the command starts.
    A configuration merely missing from the environment still warns and runs (the test above)."""
    ran = "print('ran')"
    typo = subprocess.run(liveparams_run(sys.executable, "-c", ran, job="3f0c5a4e"), env=child_env(**UNREACHABLE),
                          text=True, capture_output=True, timeout=120)  # fmt: skip
    assert (typo.returncode, typo.stdout) == (2, ""), typo.stderr
    assert typo.stderr == (
        "liveparams run: --job '3f0c5a4e' is not a job id (a uuid; `liveparams job list` shows them); "
        "nothing was started\n"
    )

    issued_for, other = str(uuid.uuid4()), str(uuid.uuid4())
    secret = TrainerSecret(issued_for, str(uuid.uuid4()), "not-a-real-password").encode()
    configured = child_env(SUPABASE_URL="http://127.0.0.1:9", SUPABASE_ANON_KEY="unused", LIVEPARAMS_CREDENTIAL=secret)
    mismatch = subprocess.run(liveparams_run(sys.executable, "-c", ran, job=other), env=configured,
                              text=True, capture_output=True, timeout=120)  # fmt: skip
    assert (mismatch.returncode, mismatch.stdout) == (2, ""), mismatch.stderr
    assert mismatch.stderr == (
        f"liveparams run: --job {other} is not the job of LIVEPARAMS_CREDENTIAL, which was issued for job "
        f"{issued_for}: pass --job {issued_for} (or leave --job out), or give the training the credential of job "
        f"{other} (`liveparams credential issue {other}`); nothing was started\n"
    )
    assert secret not in mismatch.stderr

    token = mint_job_token(issued_for, "a-test-secret-of-at-least-32-bytes!!")
    by_token = child_env(SUPABASE_URL="http://127.0.0.1:9", SUPABASE_ANON_KEY="unused", LIVEPARAMS_TOKEN=token)
    refused = subprocess.run(liveparams_run(sys.executable, "-c", ran, job=other), env=by_token,
                             text=True, capture_output=True, timeout=120)  # fmt: skip
    assert refused.returncode == 2 and f"is not the job of LIVEPARAMS_TOKEN, which was issued for job {issued_for}" in (
        refused.stderr
    )

    matching = subprocess.run(liveparams_run(sys.executable, "-c", ran, job=issued_for), env=configured,
                              text=True, capture_output=True, timeout=120)  # fmt: skip
    assert (matching.returncode, matching.stdout) == (0, "ran\n"), matching.stderr
    unconfigured = subprocess.run(liveparams_run(sys.executable, "-c", ran, job=other), env=child_env(),
                                  text=True, capture_output=True, timeout=120)  # fmt: skip
    assert (unconfigured.returncode, unconfigured.stdout) == (0, "ran\n")  # nothing to check it against: it runs
    assert "runtime parameter updates disabled; the command runs as it is" in unconfigured.stderr
