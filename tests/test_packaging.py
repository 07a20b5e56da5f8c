"""What a training environment installs: the library under one name, and nothing of the development stack."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from collections.abc import Callable
from importlib.metadata import requires
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from test_quickstart import QUICKSTART

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
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What ``python -m build`` makes of the checkout: the sdist, and the wheel it builds from that sdist."""
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(REPO)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def _only(folder: Path, pattern: str) -> Path:
    (path,) = folder.glob(pattern)
    return path


@pytest.fixture(scope="module")
def wheel_files(release: Path) -> list[str]:
    with zipfile.ZipFile(_only(release, "liveparams-*.whl")) as archive:
        return archive.namelist()


def _tracked_modules(folder: str) -> set[str]:
    """The checkout's Python files under ``folder`` (relative to it), as git knows them."""
    listed = subprocess.run(
        ["git", "ls-files", "--", f"{folder}/*.py"], cwd=REPO, capture_output=True, text=True, check=True
    )
    return {name.removeprefix(f"{folder}/") for name in listed.stdout.split()}


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
    """The wheel (built from the sdist, as ``python -m build`` does) holds every module of agent/ and
    trainer_hooks/ under ``liveparams/``, subpackages included, and nothing of the stack."""
    modules = [name for name in wheel_files if name.endswith(".py")]
    for folder in ("agent", "trainer_hooks"):
        assert {f"liveparams/{folder}/{name}" for name in _tracked_modules(folder)} <= set(modules), folder
    assert "liveparams/contract/__init__.py" in modules
    assert "liveparams/run-bootstrap/sitecustomize.py" in modules  # `liveparams run` puts its folder on PYTHONPATH
    assert all(name.startswith("liveparams/") for name in modules), modules
    assert not [name for name in wheel_files if "liveparams_stack" in name or name.endswith(".sql")]


@pytest.mark.slow
def test_the_sdist_holds_the_sources_the_links_point_to(release: Path) -> None:
    """``liveparams/agent`` and ``liveparams/trainer_hooks`` are links; the sdist must carry the folders
    themselves, or a wheel built from it (what pip does with an sdist) would lack them."""
    sdist = _only(release, "liveparams-*.tar.gz")
    with tarfile.open(sdist) as archive:
        top = sdist.name.removesuffix(".tar.gz")
        names = {member.name.removeprefix(f"{top}/") for member in archive.getmembers() if member.isfile()}
    for folder in ("agent", "trainer_hooks"):
        assert {f"{folder}/{name}" for name in _tracked_modules(folder)} <= names, folder
    assert {"pyproject.toml", "README.md", "liveparams/cli.py"} <= names


@pytest.mark.slow
def test_twine_accepts_the_release(release: Path) -> None:
    """What PyPI would refuse (a README it cannot render, broken metadata) is caught before an upload."""
    files = sorted(str(path) for path in release.iterdir())
    assert len(files) == 2, files  # the sdist and the wheel
    done = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *files], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


SERVE_PANEL = """
import urllib.request
from liveparams import _panel as panel
server = panel.PanelServer(None, port=0).start()
print(panel.ASSETS)
print(*(urllib.request.urlopen(server.url + name).status for name in ("", "panel.js", "panel.css")))
"""


@pytest.mark.slow
def test_the_wheel_ships_the_built_panel_and_serves_it_without_npm(release: Path, tmp_path: Path) -> None:
    """`pip install` of the wheel gives a working `liveparams panel`: the built assets are package data,
    carried by the sdist too (the wheel is built from it)."""
    wheel = _only(release, "liveparams-*.whl")
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


QUICKSTART_TRAIN = re.compile(r"^cat > train\.py <<'EOF'\n(.*?)^EOF$", re.DOTALL | re.MULTILINE)


def _venv_with_the_dependencies_of_this_one(path: Path) -> Path:
    """A new venv that sees this environment's packages (torch, transformers, the clients) after its own.

    A full install of the wheel's dependencies copies 1.5 GB (torch) and took 11 minutes on a loaded
    CI machine; the packages are the ones ``.[dev]`` installed here from the same requirements. The
    folder is added as a plain path, not a site directory: its ``.pth`` files, among them the editable
    install that maps ``liveparams`` to the checkout, are not read.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    site = subprocess.run(
        [path / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return path


@pytest.mark.stack
@pytest.mark.slow
def test_the_released_wheel_in_a_fresh_venv_trains_the_quickstart_and_applies_a_change(
    release: Path,
    tmp_path: Path,
    stack_env: dict[str, str],
    new_user: Callable[[], tuple[str, str]],
    new_job: Callable[..., str],
) -> None:
    """The release as a user gets it: the wheel installed (not editable) into a new venv, used from a
    folder away from the checkout (its dependencies are this environment's, see above). Its `liveparams`
    command issues the trainer credential and makes the requests through the stack; the quickstart's
    train.py, with the installed callback, applies them."""
    wheel = _only(release, "liveparams-*.whl")
    venv = _venv_with_the_dependencies_of_this_one(tmp_path / "venv")
    installed = subprocess.run(  # not editable, and over nothing of the checkout
        [venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheel)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    work = tmp_path / "work"  # the user's project: no checkout in sight
    work.mkdir()
    train = QUICKSTART_TRAIN.search(QUICKSTART.read_text(encoding="utf-8"))
    assert train, "docs/quickstart.md no longer writes train.py with a heredoc"
    (work / "train.py").write_text(train.group(1))

    own = ("SUPABASE_", "NEXT_PUBLIC_", "LIVEPARAMS_", "API_URL", "ANON_KEY", "SERVICE_ROLE_KEY")
    env = {name: value for name, value in os.environ.items() if not name.startswith(own)}
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    env |= {name: stack_env[name] for name in ("API_URL", "ANON_KEY", "SERVICE_ROLE_KEY")}  # `stack status -o env`
    env |= {"HF_HUB_OFFLINE": "1", "XDG_STATE_HOME": str(tmp_path / "state")}  # the trainer's session file

    def liveparams(*args: str, **extra: str) -> str:
        done = subprocess.run(
            [venv / "bin" / "liveparams", *args], cwd=work, env=env | extra, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, f"liveparams {args[0]}: {done.stderr[-2000:]}"
        return done.stdout

    assert liveparams("--version").strip() == f"liveparams {wheel.name.split('-')[1]}"  # the wheel's own metadata
    user_id, user_token = new_user()
    job_id = new_job(user_id)
    issued = liveparams("credential", "issue", job_id)  # JOB_ID=… and the credential, as the quickstart evals
    trainer = dict(line.split("=", 1) for line in issued.splitlines() if "=" in line and not line.startswith("#"))
    for change in ("learning_rate=5e-4", "command=stop"):  # read by the agent when training starts
        liveparams("set", job_id, change, LIVEPARAMS_USER_TOKEN=user_token)
    where = subprocess.run(
        [venv / "bin" / "python", "-c", "import liveparams; print(liveparams.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(venv)  # the installed package, not the checkout
    run = subprocess.run(
        [venv / "bin" / "python", "train.py"],
        cwd=work,
        env=env | trainer,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert "✅ Applied learning rate update: 1.00e-03 → 5.00e-04" in run.stderr
    assert "the trainer detached: stopped at step" in liveparams(
        "job", "show", job_id, LIVEPARAMS_USER_TOKEN=user_token
    )


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
