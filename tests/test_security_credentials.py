"""Trainer credentials as a backend and a trainer see them: issued, rotated and revoked with the CLI,
refused at once after revocation (while the access token itself is still valid for the project's
JWT lifetime), and never more than one job's worth of access. Official clients only."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from postgrest.exceptions import APIError
from supabase import Client, ClientOptions, create_client
from supabase_auth import SyncGoTrueClient
from supabase_auth.errors import AuthApiError
from supabase_auth.types import Session

from liveparams._trainer_credential import parse_credential
from liveparams.tokens import mint_job_token

pytestmark = [pytest.mark.stack]


def liveparams(*args: str, env: dict[str, str], stdin: int = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
    """The command as a backend's script runs it (no terminal), or with ``stdin`` (a terminal)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE_", "NEXT_PUBLIC_", "LIVEPARAMS_"))}
    return subprocess.run(
        [sys.executable, "-m", "liveparams.cli", *args],
        env={**clean, **env},
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def answer_in_a_terminal(answer: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The command with a terminal on stdin that types ``answer``."""
    controller, terminal = pty.openpty()
    try:
        os.write(controller, answer.encode())
        return liveparams(*args, env=env, stdin=terminal)
    finally:
        os.close(controller)
        os.close(terminal)


def cli_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {"SUPABASE_URL": stack_env["API_URL"], "SUPABASE_SERVICE_ROLE_KEY": stack_env["SERVICE_ROLE_KEY"]}


def auth(stack_env: dict[str, str]) -> SyncGoTrueClient:
    return SyncGoTrueClient(
        url=f"{stack_env['API_URL']}/auth/v1",
        headers={"apikey": stack_env["ANON_KEY"]},
        auto_refresh_token=False,
        persist_session=False,
    )


def sign_in(stack_env: dict[str, str], credential: str) -> Session:
    """What the agent does at start: the password grant with what the credential holds."""
    secret = parse_credential(credential)
    session = auth(stack_env).sign_in_with_password({"email": secret.email, "password": secret.password}).session
    assert session is not None
    return session


def as_bearer(stack_env: dict[str, str], token: str) -> Client:
    """The official client as a trainer holding ``token`` (the project's anon key as apikey)."""
    return create_client(
        stack_env["API_URL"], stack_env["ANON_KEY"], ClientOptions(headers={"Authorization": f"Bearer {token}"})
    )


def can_read(stack_env: dict[str, str], token: str, job_id: str) -> bool:
    """Whether ``token`` sees the job, and may record the trainer's state on it."""
    client = as_bearer(stack_env, token)
    seen = client.rpc("read_parameter_update_requests", {"p_job_id": job_id}).execute().data is not None
    try:
        client.rpc("record_trainer_state", {"p_job_id": job_id, "p_state": "alive"}).execute()
    except APIError as exc:
        assert exc.code == "42501", exc
        return False
    assert seen
    return True


def issue(stack_env: dict[str, str], job_id: str, *action: str) -> dict[str, Any]:
    done = liveparams(*(action or ("token",)), job_id, "--json", env=cli_env(stack_env))
    assert done.returncode == 0, done.stderr
    issued: dict[str, Any] = json.loads(done.stdout)
    return issued


def test_issue_rotate_and_revoke_from_the_cli_take_effect_at_once(
    stack_env: dict[str, str], new_user: Callable[..., tuple[str, str]], new_job: Callable[..., str]
) -> None:
    owner_id, _ = new_user()
    job_id = new_job(owner_id)
    first = issue(stack_env, job_id)
    assert first["credential"].startswith(f"lpcred_{job_id}_")
    first_session = sign_in(stack_env, first["credential"])
    assert first_session.expires_in >= 60  # valid for a while yet
    assert can_read(stack_env, first_session.access_token, job_id)

    second = issue(stack_env, job_id, "credential", "rotate", "--yes")
    second_session = sign_in(stack_env, second["credential"])
    assert not can_read(stack_env, first_session.access_token, job_id)  # unexpired, and refused
    assert can_read(stack_env, second_session.access_token, job_id)
    with pytest.raises(AuthApiError) as refused:
        auth(stack_env).refresh_session(first_session.refresh_token)
    assert refused.value.code == "refresh_token_not_found"
    with pytest.raises(AuthApiError) as gone:  # the rotated credential itself no longer signs in
        sign_in(stack_env, first["credential"])
    assert gone.value.code == "invalid_credentials"

    listed = liveparams("credential", "list", job_id, "--json", env=cli_env(stack_env))
    rows = {row["id"]: row for row in json.loads(listed.stdout)}
    assert set(rows) == {first["credential_id"], second["credential_id"]}
    assert rows[first["credential_id"]]["revoked_at"] and not rows[second["credential_id"]]["revoked_at"]
    assert first["credential"] not in listed.stdout

    one = liveparams(
        "credential", "revoke", job_id, "--credential", second["credential_id"], "--yes", env=cli_env(stack_env)
    )
    assert one.returncode == 0 and "revoked trainer credential" in one.stdout
    assert not can_read(stack_env, second_session.access_token, job_id)


def test_revoke_and_rotate_say_what_they_take_away_and_ask_first(
    stack_env: dict[str, str], new_user: Callable[..., tuple[str, str]], new_job: Callable[..., str]
) -> None:
    """A running trainer loses live updates for good: without --yes, a terminal is asked [y/N] after being told
    how many credentials of which job go and whether a trainer is attached; without a terminal, nothing goes."""
    owner_id, _ = new_user()
    job_id = new_job(owner_id)
    issued = issue(stack_env, job_id)
    session = sign_in(stack_env, issued["credential"])
    what = f"1 live trainer credential(s) of job {job_id}"
    one = ("--credential", issued["credential_id"])
    for command in (("revoke",), ("revoke", *one), ("rotate",)):
        unasked = liveparams("credential", command[0], job_id, *command[1:], env=cli_env(stack_env))
        said = unasked.stderr
        assert unasked.returncode == 1 and "without a confirmation: rerun with --yes" in said, (command, said)
        assert (what if len(command) == 1 else f"trainer credential {issued['credential_id']} of job") in said

        declined = answer_in_a_terminal("n\n", "credential", *command[:1], job_id, *command[1:], env=cli_env(stack_env))
        said = declined.stderr
        assert declined.returncode == 1 and "Nothing revoked" in said and "[y/N]" in said, (command, said)
        assert "Trainer now: " in said and "stops receiving updates" in said
        assert declined.stdout == ""
    assert can_read(stack_env, session.access_token, job_id)  # nothing was revoked

    agreed = answer_in_a_terminal("y\n", "credential", "revoke", job_id, env=cli_env(stack_env))
    assert agreed.returncode == 0 and "revoked 1 trainer credential(s)" in agreed.stdout, agreed.stderr
    assert what in agreed.stderr and not can_read(stack_env, session.access_token, job_id)


def test_a_rotate_that_cannot_issue_says_the_old_credentials_are_revoked(
    stack_env: dict[str, str],
    new_user: Callable[..., tuple[str, str]],
    new_job: Callable[..., str],
    faults: Callable[..., dict[str, Any]],
) -> None:
    owner_id, _ = new_user()
    job_id = new_job(owner_id)
    old = issue(stack_env, job_id)
    faults("rest_errors", count=1, status=503, path="local_training_jobs")  # the issue step's read of the job

    failed = liveparams("credential", "rotate", job_id, "--yes", env=cli_env(stack_env))
    said = failed.stderr
    assert failed.returncode == 1 and said.count("\n") == 1 and failed.stdout == "", said
    assert "old credentials are already revoked" in said and f"`liveparams credential issue {job_id}`" in said
    with pytest.raises(AuthApiError):  # indeed revoked
        sign_in(stack_env, old["credential"])


def test_job_tokens_are_revoked_per_job(
    stack_env: dict[str, str], new_user: Callable[..., tuple[str, str]], new_job: Callable[..., str]
) -> None:
    owner_id, _ = new_user()
    job_id, other_job = new_job(owner_id), new_job(owner_id)
    before, elsewhere = (
        mint_job_token(job_id, stack_env["JWT_SECRET"]),
        mint_job_token(other_job, stack_env["JWT_SECRET"]),
    )
    assert can_read(stack_env, before, job_id)

    done = liveparams("credential", "revoke", job_id, "--yes", env=cli_env(stack_env))
    assert done.returncode == 0 and "every job token" in done.stdout
    assert not can_read(stack_env, before, job_id)
    assert can_read(stack_env, elsewhere, other_job)  # another job's tokens are untouched
    time.sleep(1.1)  # iat has whole seconds: a token of the revocation's own second is refused
    assert can_read(stack_env, mint_job_token(job_id, stack_env["JWT_SECRET"]), job_id)


def test_a_trainer_session_reaches_its_job_and_nothing_else(
    stack_env: dict[str, str], new_user: Callable[..., tuple[str, str]], new_job: Callable[..., str]
) -> None:
    owner_id, _ = new_user()
    job_id = new_job(owner_id)
    issued = issue(stack_env, job_id)
    trainer_auth = auth(stack_env)
    secret = parse_credential(issued["credential"])
    session = trainer_auth.sign_in_with_password({"email": secret.email, "password": secret.password}).session
    assert session is not None and session.user.app_metadata["liveparams_job_id"] == job_id
    client = as_bearer(stack_env, session.access_token)

    with pytest.raises(AuthApiError) as not_admin:  # only the admin API changes app_metadata
        trainer_auth.update_user({"data": {}, "app_metadata": {"liveparams_job_id": new_job(owner_id)}})  # type: ignore[typeddict-unknown-key]
    assert not_admin.value.code == "not_admin"
    with pytest.raises(APIError) as insert:
        client.table("local_training_jobs").insert({"user_id": session.user.id, "status": "running"}).execute()
    assert insert.value.code == "42501"
    with pytest.raises(APIError) as request:
        client.rpc("request_parameter_update", {"p_job_id": job_id, "p_params": {"learning_rate": 1e-4}}).execute()
    assert request.value.code == "PT404"
    renamed = client.table("local_training_jobs").update({"name": "mine"}).eq("id", job_id).execute()
    assert renamed.data == []
    assert [row["id"] for row in client.table("local_training_jobs").select("id").execute().data] == [job_id]


def test_the_cli_refuses_bad_input_with_one_line(stack_env: dict[str, str]) -> None:
    missing = liveparams("token", "00000000-0000-0000-0000-000000000000", env=cli_env(stack_env))
    assert missing.returncode == 1 and "not found" in missing.stderr and "Traceback" not in missing.stderr
    bad = liveparams("credential", "revoke", "not-a-uuid", "--yes", env=cli_env(stack_env))
    assert bad.returncode == 1 and "uuid" in bad.stderr and "Traceback" not in bad.stderr
    no_key = liveparams("token", "00000000-0000-0000-0000-000000000000", env={"SUPABASE_URL": stack_env["API_URL"]})
    assert no_key.returncode == 1 and "SUPABASE_SECRET_KEY" in no_key.stderr
    unreachable = liveparams(
        "credential", "list", "00000000-0000-0000-0000-000000000000",
        env={**cli_env(stack_env), "SUPABASE_URL": "http://127.0.0.1:9"},
    )  # fmt: skip
    assert unreachable.returncode == 1 and "Traceback" not in unreachable.stderr


def test_the_secret_key_works_as_well_as_the_legacy_service_role_key(
    stack_env: dict[str, str], new_user: Callable[..., tuple[str, str]], new_job: Callable[..., str]
) -> None:
    if "SECRET_KEY" not in stack_env:
        pytest.skip("the stack under test printed no sb_secret_ key")
    owner_id, _ = new_user()
    job_id = new_job(owner_id)
    env = {"SUPABASE_URL": stack_env["API_URL"], "SUPABASE_SECRET_KEY": stack_env["SECRET_KEY"]}
    done = liveparams("token", job_id, "--json", env=env)
    assert done.returncode == 0, done.stderr
    session = sign_in(stack_env, json.loads(done.stdout)["credential"])
    assert can_read(stack_env, session.access_token, job_id)
    assert httpx.get(f"{stack_env['API_URL']}/auth/v1/health").status_code == 200


@pytest.mark.parametrize("command", [("token",), ("credential", "issue")])
def test_issuing_says_in_its_help_what_the_credential_is(command: tuple[str, ...]) -> None:
    shown = liveparams(*command, "--help", env={})
    assert shown.returncode == 0
    text = " ".join(shown.stdout.split())
    assert "LIVEPARAMS_CREDENTIAL" in text and "whole life" in text and "several processes" in text
