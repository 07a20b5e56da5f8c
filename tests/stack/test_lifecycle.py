"""The local stack's lifecycle as a user drives it: `liveparams stack up | status | down`, refusals, restart."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import psycopg
import pytest

from liveparams_stack import LocalStack, StackError, keys
from liveparams_stack.local import MARKER, free_port, port_is_free, process_is_running

pytestmark = pytest.mark.stack


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "liveparams.cli", "stack", *args], capture_output=True, text=True, timeout=120
    )


def _parse_env(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line)
    return {key: value.strip('"') for key, value in pairs}


@pytest.fixture
def state_root() -> Iterator[Path]:
    """A world-traversable temporary directory (PostgreSQL runs as `postgres` when the tests run as root)."""
    root = Path(subprocess.run(["mktemp", "-d"], capture_output=True, text=True, check=True).stdout.strip())
    root.chmod(0o755)
    yield root
    subprocess.run(["rm", "-rf", str(root)], check=True)


def test_up_status_down_through_the_cli(state_root: Path) -> None:
    state_dir = state_root / "stack"
    api_port, db_port = free_port(), free_port()

    up = _cli("up", "--state-dir", str(state_dir), "--api-port", str(api_port), "--db-port", str(db_port))
    assert up.returncode == 0, up.stderr
    assert "development and tests only" in up.stderr
    try:
        status = _cli("status", "-o", "env", "--state-dir", str(state_dir))
        assert status.returncode == 0, status.stderr
        env = _parse_env(status.stdout)
        assert env["API_URL"] == f"http://127.0.0.1:{api_port}"
        assert env["DB_URL"] == f"postgresql://postgres:postgres@127.0.0.1:{db_port}/postgres"
        assert env["ANON_KEY"] == keys.ANON_KEY and env["SERVICE_ROLE_KEY"] == keys.SERVICE_ROLE_KEY
        assert env["JWT_SECRET"] == keys.JWT_SECRET
        assert env["PUBLISHABLE_KEY"].startswith("sb_publishable_") and env["SECRET_KEY"].startswith("sb_secret_")

        # The stack outlived the `up` process, and its migrations are recorded as `supabase db push` records them.
        response = httpx.get(f"{env['REST_URL']}/local_training_jobs", headers={"apikey": env["SECRET_KEY"]})
        assert response.status_code == 200 and response.json() == []
        with psycopg.connect(env["DB_URL"]) as conn:
            versions = conn.execute("select version from supabase_migrations.schema_migrations").fetchall()
            assert [row[0] for row in versions] == sorted(p.name.split("_")[0] for p in _migrations())
            assert conn.execute("show wal_level").fetchone() == ("logical",)
        postmaster_pid = int((state_dir / "postgres" / "postmaster.pid").read_text().split()[0])
        api_pid = json.loads((state_dir / MARKER).read_text())["api_pid"]
    finally:
        down = _cli("down", "--state-dir", str(state_dir))
    assert down.returncode == 0, down.stderr
    assert not state_dir.exists()
    assert not process_is_running(postmaster_pid) and not process_is_running(api_pid)
    assert port_is_free(api_port) and port_is_free(db_port)
    assert _cli("status", "--state-dir", str(state_dir)).returncode == 1


def test_restart_api_keeps_the_data(state_root: Path) -> None:
    with LocalStack(state_root / "stack", api_port=free_port(), db_port=free_port()) as stack:
        headers = {"apikey": keys.SERVICE_ROLE_KEY, "Prefer": "return=representation"}
        created = httpx.post(f"{stack.api_url}/rest/v1/local_training_jobs", json={"name": "kept"}, headers=headers)
        assert created.status_code == 201, created.text
        stack.restart_api()
        rows = httpx.get(f"{stack.api_url}/rest/v1/local_training_jobs?select=name", headers=headers).json()
        assert rows == [{"name": "kept"}]


def test_refuses_a_taken_port_and_creates_nothing(state_root: Path) -> None:
    with closing(socket.socket()) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        with pytest.raises(StackError, match=f"127.0.0.1:{taken} .* already in use"):
            LocalStack(state_root / "stack", api_port=taken, db_port=free_port()).start()
    assert not (state_root / "stack").exists()


def test_never_touches_a_directory_it_did_not_create(state_root: Path) -> None:
    foreign = state_root / "someone-elses"
    foreign.mkdir()
    (foreign / "PG_VERSION").write_text("15\n")
    stack = LocalStack(foreign, api_port=free_port(), db_port=free_port())
    with pytest.raises(StackError, match="not created by liveparams"):
        stack.start()
    stack.stop()
    assert (foreign / "PG_VERSION").read_text() == "15\n"
    assert LocalStack.attach(foreign) is None and not (foreign / MARKER).exists()


def test_refuses_clearly_without_postgresql(state_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEPARAMS_PG_BINDIR", str(state_root))
    with pytest.raises(StackError, match="apt-get install postgresql-15"):
        LocalStack(state_root / "stack", api_port=free_port(), db_port=free_port()).start()
    assert not (state_root / "stack").exists()


def _migrations() -> list[Path]:
    return sorted((Path(__file__).parents[2] / "supabase" / "migrations").glob("*.sql"))


def test_refuses_clearly_without_wal2json(state_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir, lib_dir = state_root / "bin", state_root / "lib"
    bin_dir.mkdir()
    lib_dir.mkdir()
    (bin_dir / "initdb").write_text("#!/bin/sh\nexit 1\n")
    pg_config = bin_dir / "pg_config"
    pg_config.write_text(f'#!/bin/sh\ncase "$1" in --version) echo "PostgreSQL 15.0";; *) echo "{lib_dir}";; esac\n')
    pg_config.chmod(0o755)
    monkeypatch.setenv("LIVEPARAMS_PG_BINDIR", str(bin_dir))
    with pytest.raises(StackError, match=r"has no wal2json.*apt-get install postgresql-15-wal2json"):
        LocalStack(state_root / "stack", api_port=free_port(), db_port=free_port()).start()
    assert not (state_root / "stack").exists()


def test_a_stack_tied_to_its_caller_goes_away_when_the_caller_is_killed(state_root: Path) -> None:
    state_dir, db_port = state_root / "stack", free_port()
    caller = subprocess.Popen(
        [sys.executable, "-c", _CALLER, str(state_dir), str(free_port()), str(db_port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert caller.stdout is not None and caller.stdout.readline().strip() == "started"
    api_pid = json.loads((state_dir / MARKER).read_text())["api_pid"]
    caller.kill()  # no finalizer runs: like a test session killed by a timeout
    caller.wait()
    deadline = time.monotonic() + 30
    while (process_is_running(api_pid) or state_dir.exists()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not process_is_running(api_pid) and not state_dir.exists()
    assert port_is_free(db_port)


_CALLER = """
import sys, time
from liveparams_stack import LocalStack
LocalStack(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), stop_with_caller=True).start()
print("started", flush=True)
time.sleep(600)
"""
