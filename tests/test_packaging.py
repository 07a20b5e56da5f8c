"""What a training environment installs: the library under one name, and nothing of the development stack."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from importlib.metadata import requires
from pathlib import Path
from typing import Any

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
@pytest.mark.parametrize(
    ("requirement", "wheel"),
    [
        (f"liveparams @ git+file://{REPO}", "liveparams-*.whl"),
        (f"liveparams-stack @ git+file://{REPO}#subdirectory=stack", "liveparams_stack-*.whl"),
    ],
    ids=["liveparams", "liveparams-stack"],
)
def test_both_distributions_install_from_a_git_url(tmp_path: Path, requirement: str, wheel: str) -> None:
    """What docs/installing.md tells users (``pip install "liveparams[train] @ git+<URL>"``) builds."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), requirement],
        check=True,
        capture_output=True,
    )
    assert list(tmp_path.glob(wheel))


@pytest.mark.slow
def test_the_wheel_installs_everything_under_liveparams_and_no_stack(wheel_files: list[str]) -> None:
    modules = [name for name in wheel_files if name.endswith(".py")]
    assert {
        "liveparams/agent/_worker.py",
        "liveparams/trainer_hooks/_callback.py",
        "liveparams/contract/__init__.py",
        "liveparams/run-bootstrap/sitecustomize.py",  # `liveparams run` puts its folder on PYTHONPATH
    } <= set(modules)
    assert all(name.startswith("liveparams/") for name in modules), modules
    assert not [name for name in wheel_files if "liveparams_stack" in name or name.endswith(".sql")]


SERVE_PANEL = """
import urllib.request
from liveparams import panel
server = panel.PanelServer(None, port=0).start()
print(panel.ASSETS)
print(*(urllib.request.urlopen(server.url + name).status for name in ("", "panel.js", "panel.css")))
"""


@pytest.mark.slow
def test_the_wheel_ships_the_built_panel_and_serves_it_without_npm(tmp_path: Path) -> None:
    """`pip install` of the wheel gives a working `liveparams panel`: the built assets are package data."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("liveparams-*.whl")
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(site), "PATH": os.path.dirname(sys.executable)}  # no node, no npm
    done = subprocess.run(
        [sys.executable, "-c", SERVE_PANEL], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env
    )
    assert done.returncode == 0, done.stderr
    assets, statuses = done.stdout.splitlines()
    assert Path(assets).is_relative_to(site)
    assert statuses == "200 200 200"


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


SHADOWED_RUN = """
import json, sys
import agent, trainer_hooks  # the user's own packages, found first on sys.path
assert agent.OWNED_BY_USER and trainer_hooks.OWNED_BY_USER
from liveparams import RuntimeParameterCallback
from liveparams.agent import UpdateAgent
from liveparams.demo.tiny import demo_sft_trainer

source = UpdateAgent.from_env()
source.start()
assert source.wait_ready(60), "the agent did not subscribe"
trainer = demo_sft_trainer(sys.argv[1], max_steps=6, callbacks=[])
trainer.add_callback(RuntimeParameterCallback(source, trainer=trainer))
trainer.train()
print(json.dumps([entry["learning_rate"] for entry in trainer.state.log_history if "learning_rate" in entry]))
"""


@pytest.mark.stack
@pytest.mark.slow
def test_user_packages_named_agent_and_trainer_hooks_do_not_shadow_liveparams(
    tmp_path: Path,
    stack_env: dict[str, str],
    new_user: Callable[[], tuple[str, str]],
    new_job: Callable[..., str],
    job_token: Callable[[str], str],
    request_update: Callable[..., dict[str, Any]],
) -> None:
    """A training repository with its own ``agent/`` and ``trainer_hooks/`` packages still gets ours, end to end."""
    for name in ("agent", "trainer_hooks"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("OWNED_BY_USER = True\n")
    user_id, jwt = new_user()
    job_id = new_job(user_id)
    request_update(jwt, job_id, {"learning_rate": 5e-4})  # the demo run's peak is 1e-3
    env = {
        **os.environ,
        "JOB_ID": job_id,
        "SUPABASE_URL": stack_env["API_URL"],
        "SUPABASE_ANON_KEY": stack_env["ANON_KEY"],
        "LIVEPARAMS_TOKEN": job_token(job_id),
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("PYTHONPATH", None)  # the working directory (the user's repository) comes first on sys.path
    done = subprocess.run(
        [sys.executable, "-c", SHADOWED_RUN, str(tmp_path / "out")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rates = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(rates) == 6
    assert max(rates) == pytest.approx(5e-4)  # the request reached the run through our agent and callback


def test_the_npm_lock_lists_every_optional_package_so_setup_leaves_it_unchanged() -> None:
    """A lock missing another platform's optional package (the Supabase CLI ships one binary package per
    system) makes `npm ci` refuse it and `npm install` add it: setup would leave package-lock.json modified."""
    lock = json.loads((REPO / "package-lock.json").read_text())
    packages = lock["packages"]
    missing = [
        f"{path} → {name}"
        for path, package in packages.items()
        for name in package.get("optionalDependencies", {})
        if f"node_modules/{name}" not in packages
    ]
    assert missing == [], f"regenerate package-lock.json with `npm install` (network needed): {missing}"
