"""When the server goes away and comes back: what ``liveparams watch`` and the training's log say.

These take the API of a private local stack down for a few seconds (the session's stack
stays up for the other tests), so they need the local stack.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pty
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import httpx
import pytest
from cli_helpers import as_owner, clean_environ, read_lines_until

from liveparams.agent import AgentConfig, UpdateAgent
from liveparams.tokens import mint_job_token
from liveparams_stack import LocalStack
from liveparams_stack.keys import JWT_SECRET, SERVICE_ROLE_KEY
from liveparams_stack.users import create_user

pytestmark = [pytest.mark.faults, pytest.mark.slow]

OUTAGE_S = 4.0
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
LIVE = re.compile(r"^\s*live\s*$", re.MULTILINE)  # the status line under the table


@pytest.fixture
def owned_job(private_stack: LocalStack) -> tuple[str, str]:
    """(job id, owner's access token) on the private stack."""
    owner_id, owner_jwt = create_user(private_stack.api_url)
    response = httpx.post(
        f"{private_stack.api_url}/rest/v1/local_training_jobs",
        json={"user_id": owner_id, "name": "outage", "status": "running"},
        headers={
            "apikey": SERVICE_ROLE_KEY,
            "Authorization": f"Bearer {SERVICE_ROLE_KEY}",
            "Prefer": "return=representation",
        },
    )
    response.raise_for_status()
    return str(response.json()[0]["id"]), owner_jwt


def take_the_api_down(stack: LocalStack, seconds: float) -> None:
    """Stop the stack's HTTP front (REST, Realtime, Auth) for ``seconds``, then start it again."""
    stack.restart_api(down_s=seconds)


def test_watch_says_disconnected_then_connected_again(private_stack: LocalStack, owned_job: tuple[str, str]) -> None:
    job_id, owner_jwt = owned_job
    env = {**clean_environ(), **as_owner(private_stack.env(), owner_jwt)}
    env["SUPABASE_URL"] = private_stack.api_url
    watcher = subprocess.Popen(
        [sys.executable, "-m", "liveparams.cli", "watch", job_id, "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watcher.stderr is not None
        lines = read_lines_until(watcher.stderr, "liveparams: live", timeout=30)  # subscribed
        assert lines and "liveparams: live" in lines[-1], lines
        take_the_api_down(private_stack, OUTAGE_S)
        lines += read_lines_until(watcher.stderr, "connected again", timeout=40)
    finally:
        watcher.terminate()
        _, rest = watcher.communicate(timeout=10)
    said = "".join(lines) + rest
    assert said.count("liveparams: disconnected, retrying") == 1, said  # once per outage
    assert "liveparams: connected again" in said, said
    assert "Traceback" not in said and "ERROR" not in said, said


def test_the_watch_table_shows_the_outage_and_the_recovery(
    private_stack: LocalStack, owned_job: tuple[str, str]
) -> None:
    """The live table (on a pseudo terminal): `connecting`, `live`, `disconnected, retrying`, then `live` again."""
    job_id, owner_jwt = owned_job
    env = {**clean_environ(), **as_owner(private_stack.env(), owner_jwt), "TERM": "xterm", "COLUMNS": "120"}
    leader, follower = pty.openpty()
    watcher = subprocess.Popen(
        [sys.executable, "-m", "liveparams.cli", "watch", job_id],
        env=env,
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    drawn: list[bytes] = []
    reader = threading.Thread(target=_read_all, args=(leader, drawn), daemon=True)
    reader.start()
    try:
        assert _wait_for(lambda: LIVE.search(_text(drawn)) is not None, 30)
        assert "connecting" in _text(drawn)  # drawn from the first read, before the subscription is confirmed
        take_the_api_down(private_stack, OUTAGE_S)
        assert _wait_for(lambda: "disconnected, retrying" in _text(drawn), 5)
        after = _text(drawn).rindex("disconnected, retrying")
        assert _wait_for(lambda: LIVE.search(_text(drawn), after) is not None, 40), _text(drawn)[-2000:]
    finally:
        watcher.terminate()
        watcher.wait(10)
        os.close(leader)
    assert "Traceback" not in _text(drawn) and "ERROR" not in _text(drawn)


def _read_all(fd: int, into: list[bytes]) -> None:
    with contextlib.suppress(OSError):
        while chunk := os.read(fd, 65536):
            into.append(chunk)


def _text(drawn: list[bytes]) -> str:
    return ANSI.sub("", b"".join(drawn).decode(errors="replace"))


def _wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.1)
    return predicate()


def test_an_outage_is_one_warning_and_one_recovered_line(
    private_stack: LocalStack, owned_job: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    job_id, _ = owned_job
    config = AgentConfig(
        job_id=job_id,
        url=private_stack.api_url,
        key=mint_job_token(job_id, JWT_SECRET, 2 * 86_400),  # over a day: no short-lived-token warning
        poll_interval=0.5,
        probe_interval=1.0,
        probe_timeout=1.0,
        recovery_grace=1.0,
        backoff_initial=0.2,
        backoff_max=1.0,
    )
    agent = UpdateAgent(config)
    with caplog.at_level(logging.INFO):
        agent.start()
        try:
            assert agent.wait_ready(20)
            take_the_api_down(private_stack, OUTAGE_S)
            assert agent.wait_ready(30)
        finally:
            agent.close()
    client_lines = [r for r in caplog.records if r.name.startswith("realtime") and r.levelno > logging.DEBUG]
    assert client_lines == [], [r.getMessage() for r in client_lines]
    problems = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(problems) == 1 and problems[0].startswith("Realtime push is down"), problems
    restored = [r for r in caplog.records if r.getMessage() == "Realtime push restored"]
    assert len(restored) == 1
