"""``liveparams watch`` as a person sees it: in a real (pseudo) terminal of 24 lines, and with bad ids."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from cli_helpers import as_owner, clean_environ, liveparams, read_lines_until

pytestmark = pytest.mark.stack

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
REQUESTS = 40


def run_in_terminal(argv: list[str], env: dict[str, str], rows: int, columns: int, until: str, timeout: float) -> str:
    """Run ``argv`` on a pseudo terminal of ``rows`` x ``columns``; return what it drew once ``until`` showed up."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    process = subprocess.Popen(argv, env=env, stdin=follower, stdout=follower, stderr=follower, close_fds=True)
    os.close(follower)
    drawn = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and until.encode() not in drawn:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    drawn += os.read(leader, 65536)
                except OSError:
                    break
        time.sleep(0.5)  # the redraw that follows
        while select.select([leader], [], [], 0.1)[0]:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        process.terminate()
        process.wait(10)
        os.close(leader)
    return ANSI.sub("", drawn.decode(errors="replace"))


def last_frame(drawn: str, title: str) -> str:
    """The last full redraw of the live display: from the last occurrence of its title line."""
    return drawn[drawn.rindex(title) :]


def test_watch_in_a_24_line_terminal_shows_the_newest_requests(
    stack_env: dict[str, str],
    new_user: Callable[[], tuple[str, str]],
    new_job: Callable[..., str],
    request_update: Callable[..., dict[str, Any]],
) -> None:
    owner_id, owner_jwt = new_user()
    job_id = new_job(owner_id)
    ids = [request_update(owner_jwt, job_id, {"max_steps": 100 + n})["id"] for n in range(REQUESTS)]
    env = {**clean_environ(), **as_owner(stack_env, owner_jwt), "TERM": "xterm"}
    drawn = run_in_terminal(
        [sys.executable, "-m", "liveparams.cli", "watch", job_id], env, rows=24, columns=120, until="live", timeout=60
    )
    frame = last_frame(drawn, f"job {job_id}")
    assert ids[-1][:8] in frame  # the newest request
    assert ids[0][:8] not in frame  # the oldest did not fit
    older = re.search(r"(\d+) older requests not shown", frame)
    assert older is not None, frame
    shown = sum(request_id[:8] in frame for request_id in ids)
    assert int(older.group(1)) + shown == REQUESTS
    assert len([line for line in frame.splitlines() if line.strip()]) <= 24
    assert "live" in frame


@pytest.mark.parametrize("job_id", ["abc", "2ac03366", "3f0c5a4e-9b1d-4c2e-8f00-5a6b7c8d9e0", " "])
def test_watch_with_a_bad_job_id_is_one_line(stack_env: dict[str, str], job_id: str) -> None:
    env = {"SUPABASE_URL": stack_env["API_URL"], "SUPABASE_SERVICE_ROLE_KEY": stack_env["SERVICE_ROLE_KEY"]}
    result = liveparams("watch", job_id, env=env)
    assert result.returncode == 1
    assert result.stderr == f"liveparams: error: not a job id: {job_id!r} (a job id is a uuid such as " + (
        "3f0c5a4e-9b1d-4c2e-8f00-5a6b7c8d9e0f; `liveparams job list` shows them)\n"
    )
    assert result.stdout == ""


def test_watch_of_a_job_nobody_has_is_one_line_and_no_table(stack_env: dict[str, str]) -> None:
    env = {"SUPABASE_URL": stack_env["API_URL"], "SUPABASE_SERVICE_ROLE_KEY": stack_env["SERVICE_ROLE_KEY"]}
    missing = str(uuid.uuid4())
    for extra in ((), ("--once",), ("--json",)):
        result = liveparams("watch", missing, *extra, env=env)
        assert result.returncode == 1
        expected = f"training job {missing} not found (or not visible with these credentials)"
        assert result.stderr == f"liveparams: error: {expected}\n"
        assert result.stdout == ""  # no table border, nothing drawn


@pytest.mark.faults
def test_watch_rides_out_a_database_that_answers_503(
    stack_env: dict[str, str],
    new_user: Callable[[], tuple[str, str]],
    new_job: Callable[..., str],
    faults: Callable[..., dict[str, Any]],
) -> None:
    """The socket drops and the re-read then meets PostgREST answering 503 (a database restarting, as on
    a hosted project): `watch` says it is disconnected and comes back by itself; it does not exit."""
    owner_id, owner_jwt = new_user()
    job_id = new_job(owner_id)
    env = {**clean_environ(), **as_owner(stack_env, owner_jwt)}
    argv = [sys.executable, "-m", "liveparams.cli", "watch", job_id, "--json"]
    watcher = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert watcher.stderr is not None
        said = read_lines_until(watcher.stderr, "liveparams: live", timeout=30)
        faults("rest_errors", count=2, status=503)
        faults("close_sockets", code=1011)
        said += read_lines_until(watcher.stderr, "connected again", timeout=40)
        assert watcher.poll() is None, said  # still watching
    finally:
        watcher.terminate()
        _, rest = watcher.communicate(timeout=10)
    text = "".join(said) + rest
    assert text.count("liveparams: disconnected, retrying") == 1, text
    assert "liveparams: connected again" in text and "error" not in text, text


def test_watch_shows_the_last_loss_and_learning_rate_stored_and_live(
    stack_env: dict[str, str],
    new_user: Callable[[], tuple[str, str]],
    new_job: Callable[..., str],
    job_token: Callable[[str], str],
) -> None:
    import threading

    import httpx

    owner_id, owner_jwt = new_user()
    job_id = new_job(owner_id)
    trainer = {"apikey": stack_env["ANON_KEY"], "Authorization": f"Bearer {job_token(job_id)}"}
    with httpx.Client(base_url=stack_env["API_URL"], headers=trainer, timeout=10) as http:
        point = {"step": 3, "metrics": {"loss": 2.5, "learning_rate": 0.001, "grad_norm": 1.0}}
        http.post("/rest/v1/rpc/record_training_metrics", json={"p_job_id": job_id, "p_points": [point]})
        env = {**clean_environ(), **as_owner(stack_env, owner_jwt), "TERM": "xterm"}
        once = liveparams("watch", job_id, "--once", env=env)
        assert "step 3: loss=2.5, learning_rate=" in " ".join(once.stdout.split()), once.stdout

        # Live: what the trainer broadcasts on the job's private topic reaches the header.
        stop = threading.Event()

        def broadcast() -> None:
            message = {"topic": f"job-metrics:{job_id}", "event": "metrics", "private": True}
            while not stop.wait(0.5):
                message["payload"] = {"points": [{"step": 4, "metrics": {"loss": 1.25, "learning_rate": 0.002}}]}
                http.post("/realtime/v1/api/broadcast", json={"messages": [message]})

        sender = threading.Thread(target=broadcast, daemon=True)
        sender.start()
        try:
            argv = [sys.executable, "-m", "liveparams.cli", "watch", job_id]
            drawn = run_in_terminal(argv, env, rows=24, columns=200, until="step 4:", timeout=60)
        finally:
            stop.set()
            sender.join()
    assert "step 4: loss=1.25, learning_rate=" in " ".join(last_frame(drawn, f"job {job_id}").split())
