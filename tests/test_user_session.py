"""The person's sign-in, kept by the CLI as ``gh auth login`` keeps one: private, used by every command,
refreshed as needed (``watch`` and ``set`` outlive the access tokens), ended by ``user logout``; and
bad tokens get a one-line hint instead of the libraries' words. Subprocesses, as a person runs them."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from auth_helpers import SHORT_TOKEN_LIFETIME_S, auth_client
from cli_helpers import clean_environ, liveparams, read_lines_until, stack_names
from supabase_auth.errors import AuthApiError

from liveparams.credentials import CredentialAdmin
from liveparams.tokens import mint_jwt

pytestmark = pytest.mark.stack


def email() -> str:
    return f"{uuid.uuid4().hex[:12]}@liveparams.test"


def person(stack_env: dict[str, str], config: Path) -> dict[str, str]:
    """The stack's variables as the quickstart exports them (the service key included), and a config folder."""
    return {**stack_names(stack_env), "XDG_CONFIG_HOME": str(config)}


def ok(*args: str, env: dict[str, str]) -> str:
    done = liveparams(*args, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_user_create_keeps_a_private_sign_in_that_every_command_acts_with(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    address, env = email(), person(stack_env, tmp_path / "config")
    created = liveparams("user", "create", address, env=env)
    assert created.returncode == 0 and created.stdout == "", created.stderr
    assert f"signed in as {address}" in created.stderr and "password is" in created.stderr

    kept = tmp_path / "config" / "liveparams" / "session.json"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600 and stat.S_IMODE(kept.parent.stat().st_mode) == 0o700
    job_id = ok("job", "create", "--name", "mine", env=env)  # as the person, though the service key is set
    assert [job["id"] for job in json.loads(ok("job", "list", "--json", env=env))] == [job_id]

    other = person(stack_env, tmp_path / "other")
    ok("user", "create", email(), env=other)
    token = ok("user", "token", env=other)
    assert json.loads(ok("job", "list", "--json", env={**env, "LIVEPARAMS_USER_TOKEN": token})) == []  # it wins


def test_logout_ends_the_session_here_and_at_auth(stack_env: dict[str, str], tmp_path: Path) -> None:
    address, env = email(), person(stack_env, tmp_path / "config")
    ok("user", "create", address, "--password", "a-long-password-1", env=env)
    login = liveparams("user", "login", address, env={**env, "LIVEPARAMS_USER_PASSWORD": "a-long-password-1"})
    assert login.returncode == 0 and f"signed in as {address}" in login.stderr
    kept = tmp_path / "config" / "liveparams" / "session.json"
    refresh_token = next(iter(json.loads(kept.read_text())["projects"].values()))["refresh_token"]

    logout = liveparams("user", "logout", env=env)
    assert logout.returncode == 0 and f"signed out {address}" in logout.stderr
    assert json.loads(kept.read_text())["projects"] == {}
    with pytest.raises(AuthApiError):  # the session is over at Auth too, not only forgotten here
        auth_client(stack_env, stack_env["ANON_KEY"]).refresh_session(refresh_token)
    signed_out = liveparams("user", "token", env=env)
    assert signed_out.returncode == 1 and "not signed in" in signed_out.stderr and "user login" in signed_out.stderr

    wrong = liveparams("user", "login", address, "--password", "not-it-at-all", env=env)
    assert wrong.returncode == 1 and "Invalid login credentials" in wrong.stderr
    assert wrong.stderr.count("\n") == 1


def test_creating_an_existing_user_says_to_sign_in(stack_env: dict[str, str], tmp_path: Path) -> None:
    address, env = email(), person(stack_env, tmp_path / "config")
    ok("user", "create", address, env=env)
    again = liveparams("user", "create", address, env=env)
    assert again.returncode == 1 and again.stderr.count("\n") == 1, again.stderr
    assert "already been registered" in again.stderr and f"sign in with `liveparams user login {address}`" in (
        again.stderr
    )


def test_a_sign_in_whose_user_is_gone_says_to_create_it_again(stack_env: dict[str, str], tmp_path: Path) -> None:
    """After `stack reset` and `stack up`, a kept sign-in still verifies (the stack's well-known JWT secret) but
    its user is gone: `job create` says so, not "violates foreign key constraint" (23503)."""
    address, env = email(), person(stack_env, tmp_path / "config")
    created = liveparams("user", "create", address, env=env)
    assert created.returncode == 0, created.stderr
    user_id = created.stderr.split("created user ", 1)[1].split()[0]
    auth_client(stack_env, stack_env["SERVICE_ROLE_KEY"]).admin.delete_user(user_id)  # what a reset leaves

    orphan = liveparams("job", "create", "--name", "mine", env=env)
    said = orphan.stderr
    assert orphan.returncode == 1 and said.count("\n") == 1, said
    assert "your signed-in user no longer exists on this project" in said and "liveparams user create" in said
    assert "foreign key" not in said and "23503" not in said


def test_bad_user_tokens_get_a_one_line_hint(stack_env: dict[str, str], tmp_path: Path) -> None:
    """Not a JWT, expired, signed by another project, or the wrong kind: each says what is wrong with which
    credential and how to get a good one, where the libraries said 'Expected 3 parts in JWT' or
    'JWSInvalidSignature'."""
    now = int(time.time())
    claims = {"sub": str(uuid.uuid4()), "role": "authenticated", "aud": "authenticated", "email": email()}
    job = str(uuid.uuid4())
    credential = "lpcred_" + "_".join([job, job, "x" * 64])
    bad = {
        "garbage": ("not-a-token", "is not a sign-in token (not a JWT)"),
        "expired": (mint_jwt({**claims, "exp": now - 60}, stack_env["JWT_SECRET"]), "expired at"),
        "foreign": (mint_jwt(claims, "another-project-s-secret-of-32-chars"), "is not signed by this project"),
        "trainer": (credential, "holds a trainer's credential"),
        "anon key": (stack_env["ANON_KEY"], "holds a project key"),
    }
    for what, (token, hint) in bad.items():
        done = liveparams("job", "list", env={**person(stack_env, tmp_path), "LIVEPARAMS_USER_TOKEN": token})
        said = done.stderr
        assert done.returncode == 1 and said.count("\n") == 1, (what, said)
        assert hint in said and "user login" in said and token not in said, (what, said)
        assert "Expected 3 parts" not in said and "JWSInvalidSignature" not in said, (what, said)


TRAINER = """
import logging, time
logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
from liveparams.agent import UpdateAgent
agent = UpdateAgent.from_env()
print(agent)
if agent is not None:
    agent.start()
    time.sleep(3)
    agent.close()
"""


def run_trainer(stack_env: dict[str, str], job_id: str, **credential: str) -> subprocess.CompletedProcess[str]:
    """A training process started with ``credential`` (its variable and value) and the stack's URL and key."""
    env = {"JOB_ID": job_id, "SUPABASE_URL": stack_env["API_URL"], "SUPABASE_ANON_KEY": stack_env["ANON_KEY"]}
    return subprocess.run(
        [sys.executable, "-c", TRAINER],
        env={**clean_environ(), **env, **credential},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_bad_trainer_credential_gets_a_hint_not_revoked(
    stack_env: dict[str, str], new_user: Callable[..., tuple[str, str]], new_job: Callable[..., str]
) -> None:
    """As the training process logs it: a credential cut short when pasted is refused at start, not called
    revoked; a job token signed by another project is named, with the way to a good credential."""
    job = new_job(new_user()[0])
    cut_short = CredentialAdmin(stack_env["API_URL"], stack_env["SERVICE_ROLE_KEY"]).issue(job).secret[:-5]
    cut = run_trainer(stack_env, job, LIVEPARAMS_CREDENTIAL=cut_short)
    assert cut.stdout.strip() == "None"
    assert "LIVEPARAMS_CREDENTIAL is a damaged trainer credential" in cut.stderr and "revoked" not in cut.stderr
    assert "liveparams credential issue" in cut.stderr and cut_short not in cut.stderr

    claims = {"role": "authenticated", "iss": "liveparams", "job_id": job}
    foreign = run_trainer(stack_env, job, LIVEPARAMS_TOKEN=mint_jwt(claims, "another-project-s-secret-of-32-chars"))
    assert "LIVEPARAMS_TOKEN (or the key the training process was given) is not signed by this project" in (
        foreign.stderr
    ), foreign.stderr
    assert "JWSInvalidSignature" not in foreign.stderr and "revoked" not in foreign.stderr


@pytest.mark.slow
def test_set_and_watch_outlive_the_access_tokens(short_env: dict[str, str], tmp_path: Path) -> None:
    """Access tokens live a few seconds: `watch` keeps following (its Realtime channel is handed each new
    token, so it is never closed for an expired one: no 'disconnected'), and `set`, run after several
    lifetimes, acts with the kept sign-in, refreshed; the request shows up in `watch`."""
    env = person(short_env, tmp_path / "config")
    ok("user", "create", email(), env=env)
    job_id = ok("job", "create", "--name", "long run", env=env)
    errors = (tmp_path / "watch.err").open("w")
    watch = subprocess.Popen(
        [sys.executable, "-m", "liveparams.cli", "watch", job_id, "--json"],
        env={**clean_environ(), **env},
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while "liveparams: live" not in (tmp_path / "watch.err").read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(4 * SHORT_TOKEN_LIFETIME_S)  # every token the sign-in started with has expired by now
        done = liveparams("set", job_id, "learning_rate=5e-4", env=env)
        assert done.returncode == 0 and done.stdout.startswith("requested "), done.stderr
        request_id = done.stdout.split("(", 1)[1].split(")", 1)[0]  # requested #N (<id>): ...
        assert watch.stdout is not None
        lines = read_lines_until(watch.stdout, request_id, timeout=20)
        assert any(json.loads(line)["id"] == request_id for line in lines), lines
    finally:
        watch.terminate()
        watch.wait(timeout=10)
        errors.close()
    said = (tmp_path / "watch.err").read_text()
    assert "liveparams: live" in said and "disconnected" not in said, said
