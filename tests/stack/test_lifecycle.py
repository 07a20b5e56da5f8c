"""The local stack's lifecycle as a user drives it: `liveparams stack up | status | down | reset`, refusals, repair.

The CLI tests share one stack (started once, in a private per-user state folder) to stay fast;
each brings it up first, so any of them runs alone.
"""

from __future__ import annotations

import json
import os
import pty
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from liveparams.agent import AgentConfig, UpdateAgent
from liveparams.contract import UpdateRequest
from liveparams.tokens import mint_jwt
from liveparams_stack import LocalStack, StackError, keys
from liveparams_stack.local import MARKER, free_port, port_is_free, process_is_running
from liveparams_stack.users import create_user

pytestmark = pytest.mark.stack


def _cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, stdin: int | None = subprocess.DEVNULL
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "liveparams.cli", "stack", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
        stdin=stdin,
    )


def _parse_env(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line)
    return {key: value.strip('"') for key, value in pairs}


def _world_traversable_tempdir() -> Path:
    """PostgreSQL runs as the `postgres` OS user when the tests run as root: it must reach the state."""
    root = Path(subprocess.run(["mktemp", "-d"], capture_output=True, text=True, check=True).stdout.strip())
    root.chmod(0o755)
    return root


@pytest.fixture
def state_root() -> Iterator[Path]:
    root = _world_traversable_tempdir()
    yield root
    subprocess.run(["rm", "-rf", str(root)], check=True)


@dataclass
class CliStack:
    """The stack ``liveparams stack up`` starts in a user's per-user state folder, shared by this module's tests."""

    env: dict[str, str]  # the CLI's environment: a private XDG_STATE_HOME, the ports
    home: Path  # the folder `up` ran in
    elsewhere: Path  # another folder, for the commands a user runs from their project
    state_dir: Path
    api_port: int
    db_port: int

    def cli(
        self, *args: str, cwd: Path | None = None, stdin: int | None = subprocess.DEVNULL
    ) -> subprocess.CompletedProcess[str]:
        return _cli(*args, cwd=cwd or self.elsewhere, env=self.env, stdin=stdin)

    def up(self) -> subprocess.CompletedProcess[str]:
        up = self.cli("up", cwd=self.home)
        assert up.returncode == 0, up.stderr
        return up

    def marker(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.state_dir / MARKER).read_text())
        return data

    def postmaster_pid(self) -> int:
        return int((self.state_dir / "postgres" / "postmaster.pid").read_text().split()[0])


@pytest.fixture(scope="module")
def shared_cli_stack() -> Iterator[CliStack]:
    root = _world_traversable_tempdir()
    home, elsewhere = root / "project", root / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    api_port, db_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEPARAMS_STACK")}
    env |= {
        "XDG_STATE_HOME": str(root / "state"),
        "LIVEPARAMS_STACK_API_PORT": str(api_port),
        "LIVEPARAMS_STACK_DB_PORT": str(db_port),
    }
    stack = CliStack(env, home, elsewhere, root / "state" / "liveparams" / "stack", api_port, db_port)
    try:
        yield stack
    finally:
        _cli("reset", "--yes", "--state-dir", str(stack.state_dir), env=env)  # whatever the default rule
        subprocess.run(["rm", "-rf", str(root)], check=True)


@pytest.fixture
def cli_stack(shared_cli_stack: CliStack) -> CliStack:
    """The module's stack, running: `up` creates it the first time and is a quick no-op afterwards."""
    shared_cli_stack.up()
    return shared_cli_stack


def test_status_from_another_folder_prints_the_stack_the_first_folder_started(cli_stack: CliStack) -> None:
    status = cli_stack.cli("status", "-o", "env")
    assert status.returncode == 0, status.stderr
    env = _parse_env(status.stdout)
    assert env["API_URL"] == f"http://127.0.0.1:{cli_stack.api_port}"
    assert env["DB_URL"] == f"postgresql://postgres:postgres@127.0.0.1:{cli_stack.db_port}/postgres"
    assert env["ANON_KEY"] == keys.ANON_KEY and env["SERVICE_ROLE_KEY"] == keys.SERVICE_ROLE_KEY
    assert env["JWT_SECRET"] == keys.JWT_SECRET
    assert env["PUBLISHABLE_KEY"].startswith("sb_publishable_") and env["SECRET_KEY"].startswith("sb_secret_")
    assert not (cli_stack.home / ".stack").exists() and not (cli_stack.elsewhere / ".stack").exists()

    # The quickstart's line, as a shell in another folder runs it.
    load = f'set -a; eval "$({sys.executable} -m liveparams.cli stack status -o env)"; set +a; env'
    shell = subprocess.run(
        ["bash", "-c", load], cwd=cli_stack.elsewhere, env=cli_stack.env, capture_output=True, text=True, check=True
    )
    assert f"API_URL={env['API_URL']}" in shell.stdout.splitlines()

    # The stack outlived the `up` process, and its migrations are recorded as `supabase db push` records them.
    response = httpx.get(f"{env['REST_URL']}/local_training_jobs?limit=0", headers={"apikey": env["SECRET_KEY"]})
    assert response.status_code == 200 and response.json() == []
    with psycopg.connect(env["DB_URL"]) as conn:
        versions = conn.execute("select version from supabase_migrations.schema_migrations").fetchall()
        assert [row[0] for row in versions] == sorted(p.name.split("_")[0] for p in _migrations())
        assert conn.execute("show wal_level").fetchone() == ("logical",)


def test_down_keeps_the_job_and_its_history_and_up_brings_them_back(cli_stack: CliStack) -> None:
    api_url = f"http://127.0.0.1:{cli_stack.api_port}"
    owner_id, owner_jwt = create_user(api_url)
    as_owner = {"apikey": keys.ANON_KEY, "Authorization": f"Bearer {owner_jwt}"}
    job = httpx.post(
        f"{api_url}/rest/v1/local_training_jobs",
        json={"user_id": owner_id, "name": "kept", "status": "running"},
        headers={"apikey": keys.SERVICE_ROLE_KEY, "Prefer": "return=representation"},
    )
    assert job.status_code == 201, job.text
    job_id = job.json()[0]["id"]
    asked = httpx.post(
        f"{api_url}/rest/v1/rpc/request_parameter_update",
        json={"p_job_id": job_id, "p_params": {"learning_rate": 5e-4}},
        headers=as_owner,
    )
    assert asked.status_code == 200, asked.text
    api_pid, postmaster_pid = cli_stack.marker()["api_pid"], cli_stack.postmaster_pid()
    # A trainer's agent that keeps running across `down` and `up`.
    token = mint_jwt({"role": "authenticated", "job_id": job_id, "iss": "liveparams"}, keys.JWT_SECRET, 3600)
    agent = UpdateAgent(AgentConfig(job_id=job_id, url=api_url, key=token, **_FAST_RECOVERY))
    agent.start()
    try:
        assert [r.params for r in _drain(agent, lambda r: True)] == [{"learning_rate": 5e-4}]
        _down_and_up_keep_the_data(cli_stack, api_url, as_owner, job_id, api_pid, postmaster_pid)
        # The agent catches up: a request made once the stack is back reaches it.
        again = httpx.post(
            f"{api_url}/rest/v1/rpc/request_parameter_update",
            json={"p_job_id": job_id, "p_params": {"weight_decay": 0.1}},
            headers=as_owner,
        )
        assert again.status_code == 200, again.text
        assert {"weight_decay": 0.1} in [r.params for r in _drain(agent, lambda r: "weight_decay" in r.params)]
    finally:
        agent.close()


def _down_and_up_keep_the_data(
    cli_stack: CliStack, api_url: str, as_owner: dict[str, str], job_id: str, api_pid: int, postmaster_pid: int
) -> None:

    down = cli_stack.cli("down")
    assert down.returncode == 0, down.stderr
    assert "is kept" in down.stderr and "stack reset" in down.stderr
    assert not process_is_running(postmaster_pid) and not process_is_running(api_pid)
    assert port_is_free(cli_stack.api_port) and port_is_free(cli_stack.db_port)
    stopped = cli_stack.cli("status", "-o", "env")
    assert stopped.returncode == 1 and stopped.stdout == ""
    assert "is stopped (its data is kept)" in stopped.stderr

    again = cli_stack.cli("up")
    assert again.returncode == 0, again.stderr
    assert "again, with its data" in again.stderr
    assert _parse_env(again.stdout)["API_URL"] == api_url
    # The owner's session from before `down` still works, and the job has its request.
    rows = httpx.get(f"{api_url}/rest/v1/parameter_update_requests?job_id=eq.{job_id}&select=params", headers=as_owner)
    assert rows.status_code == 200, rows.text
    assert rows.json() == [{"params": {"learning_rate": 5e-4}}]
    jobs = httpx.get(f"{api_url}/rest/v1/local_training_jobs?select=name", headers=as_owner).json()
    assert jobs == [{"name": "kept"}]


# The agent's retry timings, shortened so that it is back within seconds of `up`.
_FAST_RECOVERY: dict[str, Any] = {"resync_interval": 2.0, "backoff_initial": 0.1, "backoff_max": 1.0}


def _drain(agent: UpdateAgent, until: Callable[[UpdateRequest], bool], timeout: float = 60.0) -> list[UpdateRequest]:
    """What the agent queues until a request ``until`` accepts arrives (or the timeout)."""
    requests: list[UpdateRequest] = []
    deadline = time.monotonic() + timeout
    while not any(map(until, requests)) and time.monotonic() < deadline:
        requests += agent.drain()
        time.sleep(0.05)
    return requests


def test_a_restarted_api_keeps_the_data(cli_stack: CliStack) -> None:
    stack = LocalStack.attach(cli_stack.state_dir)
    assert stack is not None
    headers = {"apikey": keys.SERVICE_ROLE_KEY, "Prefer": "return=representation"}
    created = httpx.post(f"{stack.api_url}/rest/v1/local_training_jobs", json={"name": "restart"}, headers=headers)
    assert created.status_code == 201, created.text
    stack.restart_api()
    rows = httpx.get(f"{stack.api_url}/rest/v1/local_training_jobs?name=eq.restart&select=name", headers=headers)
    assert rows.json() == [{"name": "restart"}]


@pytest.mark.parametrize(
    ("killed", "said"),
    [("api", "the API process has exited"), ("postgres", "PostgreSQL is not running")],
)
def test_status_says_which_part_died_and_up_repairs_it(cli_stack: CliStack, killed: str, said: str) -> None:
    api_url = f"http://127.0.0.1:{cli_stack.api_port}"
    headers = {"apikey": keys.SERVICE_ROLE_KEY, "Prefer": "return=representation"}
    created = httpx.post(f"{api_url}/rest/v1/local_training_jobs", json={"name": f"before {killed}"}, headers=headers)
    assert created.status_code == 201, created.text
    pid = cli_stack.marker()["api_pid"] if killed == "api" else cli_stack.postmaster_pid()
    os.kill(pid, signal.SIGKILL)  # a crash: nothing is cleaned up
    deadline = time.monotonic() + 30
    while process_is_running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)

    status = cli_stack.cli("status")
    assert status.returncode == 1 and said in status.stderr, status.stderr
    assert "`liveparams stack up` starts what is missing" in status.stderr

    repaired = cli_stack.cli("up")
    assert repaired.returncode == 0, repaired.stderr
    assert f"Repaired the liveparams local stack ({said})" in repaired.stderr
    assert cli_stack.cli("status").returncode == 0
    rows = httpx.get(f"{api_url}/rest/v1/local_training_jobs?name=eq.before%20{killed}&select=name", headers=headers)
    assert rows.json() == [{"name": f"before {killed}"}]


def test_up_after_a_reboot_starts_postgresql_whose_old_pid_now_belongs_to_another_process(cli_stack: CliStack) -> None:
    assert cli_stack.cli("down").returncode == 0
    # What a reboot can leave: the lock file of a postmaster that is gone, naming a pid now in use.
    (cli_stack.state_dir / "postgres" / "postmaster.pid").write_text(f"{os.getpid()}\n")
    stopped = cli_stack.cli("status")
    assert stopped.returncode == 1 and "is stopped" in stopped.stderr, stopped.stderr
    again = cli_stack.cli("up")
    assert again.returncode == 0, again.stderr
    assert cli_stack.cli("status").returncode == 0


def test_up_keeps_the_stacks_own_ports_and_refuses_others(cli_stack: CliStack) -> None:
    other = free_port()
    refused = cli_stack.cli("up", "--api-port", str(other))
    assert refused.returncode == 1
    assert f"uses API port {cli_stack.api_port}" in refused.stderr and "stack reset" in refused.stderr
    env = {k: v for k, v in cli_stack.env.items() if not k.startswith("LIVEPARAMS_STACK_")}  # no port asked for
    kept = _cli("up", cwd=cli_stack.elsewhere, env=env)
    assert kept.returncode == 0, kept.stderr
    assert _parse_env(kept.stdout)["API_URL"] == f"http://127.0.0.1:{cli_stack.api_port}"


def test_up_on_a_running_stack_keeps_its_options_and_restarts_the_front_only_for_others(cli_stack: CliStack) -> None:
    try:
        slow = cli_stack.cli("up", "--realtime-poll-ms", "100")
        assert slow.returncode == 0, slow.stderr
        assert "Restarting the API front with Realtime polling the WAL every 100 ms" in slow.stderr, slow.stderr
        assert "connected trainers reconnect" in slow.stderr
        front = cli_stack.marker()["api_pid"]

        for again in (cli_stack.cli("up"), cli_stack.cli("up", "--realtime-poll-ms", "100")):
            assert again.returncode == 0, again.stderr
            assert "runs already" in again.stderr and "Restarting" not in again.stderr, again.stderr
            assert (cli_stack.marker()["api_pid"], cli_stack.marker()["realtime_poll_ms"]) == (front, 100)
            assert process_is_running(front)
    finally:  # the module's other tests expect the fast cadence
        fast = cli_stack.cli("up", "--realtime-poll-ms", "0")
    assert fast.returncode == 0, fast.stderr
    assert "Restarting the API front with Realtime polling fast" in fast.stderr, fast.stderr
    assert cli_stack.marker()["realtime_poll_ms"] is None and cli_stack.marker()["api_pid"] != front


def test_reset_asks_first_refuses_without_a_terminal_and_deletes_with_yes(cli_stack: CliStack) -> None:
    postmaster_pid = cli_stack.postmaster_pid()
    unasked = cli_stack.cli("reset")  # stdin is not a terminal
    assert unasked.returncode == 1 and "rerun with --yes" in unasked.stderr
    assert "every user, job, trainer credential and request history" in unasked.stderr
    assert cli_stack.cli("status").returncode == 0

    declined = _answer_in_a_terminal(cli_stack, "n\n")
    assert declined.returncode == 1 and "Nothing deleted" in declined.stderr
    assert "This stops and deletes the liveparams local stack" in declined.stderr
    assert "every user, job, trainer credential and request history" in declined.stderr
    assert cli_stack.cli("status").returncode == 0

    deleted = cli_stack.cli("reset", "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert not cli_stack.state_dir.exists() and not process_is_running(postmaster_pid)
    gone = cli_stack.cli("status")
    assert gone.returncode == 1 and "No liveparams stack in" in gone.stderr

    fresh = cli_stack.up()
    assert "Started a new liveparams local stack" in fresh.stderr
    jobs = httpx.get(
        f"http://127.0.0.1:{cli_stack.api_port}/rest/v1/local_training_jobs", headers={"apikey": keys.SERVICE_ROLE_KEY}
    )
    assert jobs.json() == []


def _answer_in_a_terminal(stack: CliStack, answer: str) -> subprocess.CompletedProcess[str]:
    """`stack reset` with a terminal on stdin that types ``answer``."""
    controller, terminal = pty.openpty()
    try:
        os.write(controller, answer.encode())
        return stack.cli("reset", stdin=terminal)
    finally:
        os.close(controller)
        os.close(terminal)


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
    stack.delete()
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


def test_the_test_only_fault_switch_works_but_is_not_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    from liveparams.cli import build_parser

    assert build_parser().parse_args(["stack", "up", "--enable-faults"]).enable_faults is True
    with pytest.raises(SystemExit):
        build_parser().parse_args(["stack", "up", "--help"])
    helped = capsys.readouterr().out
    assert "--realtime-poll-ms" in helped and "faults" not in helped
