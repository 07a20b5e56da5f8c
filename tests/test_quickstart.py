"""docs/quickstart.md, run as written: its ``bash`` blocks in order, in one shell, from a clean directory.

The blocks are extracted from the page, so the page cannot drift from what works. Only a
block marked ``<!-- quickstart: not run ... -->`` (the install step: this environment is
installed) is left out. The stack it starts gets free ports and a private state directory
through the variables ``liveparams stack up`` reads, so it runs beside the session's stack.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from liveparams_stack.local import free_port

QUICKSTART = Path(__file__).resolve().parents[1] / "docs" / "quickstart.md"
NOT_RUN = "<!-- quickstart: not run"
BLOCK = re.compile(r"(<!--[^\n]*-->\n)?```bash\n(.*?)```", re.DOTALL)

pytestmark = pytest.mark.slow


def quickstart_blocks(text: str) -> list[str]:
    """The page's ``bash`` blocks, in order, without those marked as not run."""
    return [code for marker, code in BLOCK.findall(text) if not marker.startswith(NOT_RUN)]


def test_the_blocks_are_the_steps() -> None:
    blocks = quickstart_blocks(QUICKSTART.read_text(encoding="utf-8"))
    script = "\n".join(blocks)
    steps = ("liveparams stack up", "user create", "job create", "credential issue", "cat > train.py", "set ")
    for step in (*steps, "liveparams run -- python"):
        assert step in script, f"the quickstart does not run {step!r}"
    assert script.rstrip().endswith("liveparams stack down")
    assert "pip install" not in script and "setup.sh" not in script


@pytest.fixture
def clean_dir() -> Iterator[Path]:
    """An empty directory PostgreSQL's OS user can reach (pytest's tmp_path is private to us)."""
    root = Path(tempfile.mkdtemp(prefix="liveparams-quickstart-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.timeout(720)  # two trainings (the one-line callback, then `liveparams run`) after a fresh stack
def test_quickstart_runs_end_to_end(clean_dir: Path) -> None:
    tmp_path = clean_dir
    script = "set -euo pipefail\n" + "\n".join(quickstart_blocks(QUICKSTART.read_text(encoding="utf-8")))
    shims = tmp_path / "bin"  # `liveparams` and `python` are this checkout's, whatever PATH holds
    shims.mkdir()
    for name, argv in (("liveparams", f"{sys.executable} -m liveparams.cli"), ("python", sys.executable)):
        (shims / name).write_text(f'#!/bin/sh\nexec {argv} "$@"\n')
        (shims / name).chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    work.chmod(0o755)  # PostgreSQL runs as the `postgres` OS user when the tests run as root
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE_", "NEXT_PUBLIC_", "LIVEPARAMS_"))}
    env = {
        **clean,
        "PATH": f"{shims}{os.pathsep}{os.environ['PATH']}",
        "LIVEPARAMS_STACK_API_PORT": str(free_port()),
        "LIVEPARAMS_STACK_DB_PORT": str(free_port()),
        "LIVEPARAMS_STACK_DIR": str(tmp_path / "stack"),
        "HF_HUB_OFFLINE": "1",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),  # where `user create` keeps the sign-in
    }
    process = subprocess.Popen(
        ["bash", "-c", script],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the training it starts in the background goes with it
    )
    try:
        output, _ = process.communicate(timeout=660)
    except subprocess.TimeoutExpired as exc:  # say where it stood, not only the script it ran
        ran = exc.output.decode(errors="replace") if isinstance(exc.output, bytes) else exc.output or ""
        logs = {log.name: log.read_text(errors="replace")[-2000:] for log in sorted(work.glob("*.log"))}
        pytest.fail(f"the quickstart ran past 660 s; its output ended:\n{ran[-4000:]}\nlogs: {logs}")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        stack_dir_kept = (tmp_path / "stack").is_dir()
        subprocess.run([sys.executable, "-m", "liveparams.cli", "stack", "reset", "--yes"], env=env, check=False)
    assert process.returncode == 0, output[-4000:]
    assert "applied at step" in output and "learning_rate: 1.00e-03 → 5.00e-04" in output, output[-4000:]
    assert "stop done" in output
    assert "✅ Applied learning rate update: 1.00e-03 → 5.00e-04" in output  # grep of the training log
    assert "the trainer detached: stopped at step" in output
    # The unchanged script under `liveparams run` (a fresh run: its own rate, 1e-3, is the old one).
    assert "✅ Applied learning rate update: 1.00e-03 → 2.00e-04" in output
    assert "in force since step" in output and "learning_rate=5.00e-04" in output
    assert "Stopped the liveparams local stack" in output
    assert stack_dir_kept  # `stack down` keeps the data until `stack reset`
    kept = tmp_path / "config" / "liveparams" / "session.json"  # the commands acted with the kept sign-in
    assert kept.stat().st_mode & 0o777 == 0o600
