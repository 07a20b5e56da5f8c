"""What a training environment installs: the library under one name, and nothing of the development stack."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from importlib.metadata import requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
STACK_ONLY = {"aiohttp", "psycopg", "psycopg-binary", "psycopg-pool", "liveparams-stack"}


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _runtime_closure(name: str, seen: set[str] | None = None) -> set[str]:
    """The distributions ``pip install NAME`` pulls in (no extras), read from the installed metadata."""
    seen = set() if seen is None else seen
    key = _normalize(name)
    if key in seen:
        return seen
    seen.add(key)
    for line in requires(name) or []:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            _runtime_closure(requirement.name, seen)
    return seen


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("liveparams-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


@pytest.mark.slow
def test_the_wheel_installs_everything_under_liveparams_and_no_stack(wheel_files: list[str]) -> None:
    modules = [name for name in wheel_files if name.endswith(".py")]
    assert {
        "liveparams/agent/_worker.py",
        "liveparams/trainer_hooks/_callback.py",
        "liveparams/contract/__init__.py",
    } <= set(modules)
    assert all(name.startswith("liveparams/") for name in modules), modules
    assert not [name for name in wheel_files if "liveparams_stack" in name or name.endswith(".sql")]


def test_installing_liveparams_pulls_in_no_stack_dependency() -> None:
    closure = _runtime_closure("liveparams")
    assert {"supabase", "realtime"} <= closure
    assert not closure & STACK_ONLY


def test_liveparams_stack_says_how_to_get_the_stack_when_it_is_missing() -> None:
    code = "import sys; sys.modules['liveparams_stack'] = None; from liveparams.cli import main; sys.exit(main())"
    done = subprocess.run(
        [sys.executable, "-c", code, "stack", "up"], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert done.returncode == 2
    assert "pip install ./stack" in done.stderr
    assert "Traceback" not in done.stderr
