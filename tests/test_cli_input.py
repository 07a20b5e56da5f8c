"""Arbitrary strings into every argument of every command: each is done or refused in one line, never a crash.

In-process (``liveparams.cli.main``) for speed, against the session's stack. A refusal is
argparse's usage error (exit 2) or one ``liveparams: error:`` line (exit 1); an "internal
error" (the CLI's last resort for bugs, exit 70) fails the test, as would a traceback.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Callable, Iterator
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from liveparams.cli import main

pytestmark = pytest.mark.stack

EXAMPLES = settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# What a shell can pass: any text but NUL.
arg = st.text(st.characters(blacklist_characters="\x00"), max_size=40)
# Strings that look like what the arguments expect, so the checks past the first are reached too.
near_uuid = st.uuids().map(str).flatmap(lambda u: st.sampled_from([u, u[:8], u.upper(), u + "x", f" {u}", u[:-1]]))
near_number = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["NaN", "-Infinity", "1e999", "-1e-999", "0x10", "5e-5", "1_000", "true", "null", "[]", "{}"]),
)
assignment = st.one_of(
    arg,
    st.tuples(
        st.sampled_from(["learning_rate", "command", "beta", "max_steps", "", "x"]), st.one_of(arg, near_number)
    ).map("=".join),
)


@pytest.fixture(scope="module")
def env(
    stack_env: dict[str, str], new_user: Callable[..., tuple[str, str]], new_job: Callable[..., str]
) -> dict[str, str]:
    owner_id, owner_jwt = new_user()
    return {
        "API_URL": stack_env["API_URL"],
        "ANON_KEY": stack_env["ANON_KEY"],
        "SERVICE_ROLE_KEY": stack_env["SERVICE_ROLE_KEY"],
        "JWT_SECRET": stack_env["JWT_SECRET"],
        "LIVEPARAMS_USER_TOKEN": owner_jwt,
        "JOB_ID": new_job(owner_id),
    }


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """``values`` only, and a config folder of its own: `user create|login` keep their sign-in there, not in ~."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE_", "LIVEPARAMS_", "NEXT_PUBLIC_"))}
    with (
        tempfile.TemporaryDirectory() as config,
        mock.patch.dict(os.environ, {**clean, "XDG_CONFIG_HOME": config, **values}, clear=True),
    ):
        yield


def run(argv: list[str], values: dict[str, str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with environment(values), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse's refusal: usage and one error line
            code = int(exit_.code or 0)
    return code, out.getvalue(), err.getvalue()


def check(argv: list[str], values: dict[str, str]) -> None:
    code, _, err = run(argv, values)
    assert "Traceback" not in err and "internal error" not in err, (argv, err)
    assert code in (0, 1, 2, 3), (argv, code, err)
    if code == 1:
        assert err.startswith("liveparams: error: ") and err.count("\n") == 1, (argv, err)
    if code == 2:
        assert "usage:" in err, (argv, err)


@EXAMPLES
@given(job_id=st.one_of(arg, near_uuid), first=assignment, more=st.lists(assignment, max_size=2))
@example(job_id="3f0c5a4e", first="learning_rate=1e-4", more=[])  # issue 13: a raw Postgres error
def test_set(env: dict[str, str], job_id: str, first: str, more: list[str]) -> None:
    check(["set", job_id, first, *more], env)


def short(wait: str) -> str:
    """``wait`` unless it is a real wait of more than a second: nobody applies the request here."""
    try:
        return "0.5" if float(wait) > 1 else wait
    except ValueError:
        return wait


@EXAMPLES
@given(first=assignment, wait=st.one_of(arg, near_number).map(short))
@example(first="learning_rate=NaN", wait="nan")  # issue 13: a traceback
@example(first="learning_rate=1e999", wait="-1")
def test_set_on_a_real_job(env: dict[str, str], first: str, wait: str) -> None:
    check(["set", env["JOB_ID"], first], env)
    check(["set", env["JOB_ID"], "weight_decay=0.01", f"--wait={wait}"], env)


@EXAMPLES
@given(url=arg, key=arg, token=arg)
def test_connection_options(env: dict[str, str], url: str, key: str, token: str) -> None:
    check(["set", env["JOB_ID"], "weight_decay=0.01", f"--url={url}"], env)
    check(["job", "list", f"--key={key}"], env)
    check(["watch", env["JOB_ID"], "--once", f"--user-token={token}"], env)
    check(["job", "show", env["JOB_ID"], f"--key={key}", f"--user-token={token}"], env)


@EXAMPLES
@given(job_id=st.one_of(arg, near_uuid))
def test_watch_and_show(env: dict[str, str], job_id: str) -> None:
    check(["watch", job_id, "--once"], env)
    check(["watch", job_id, "--once", "--json"], env)
    check(["job", "show", job_id], env)


@EXAMPLES
@given(name=arg, status=arg, owner=arg, limit=arg)
def test_job_create_and_list(env: dict[str, str], name: str, status: str, owner: str, limit: str) -> None:
    check(["job", "create", f"--name={name}", f"--status={status}"], env)
    service = {k: v for k, v in env.items() if k != "LIVEPARAMS_USER_TOKEN"}
    check(["job", "create", "--name=n", f"--owner={owner}"], service)
    check(["job", "list", f"--limit={limit}"], env)


@EXAMPLES
@given(job_id=st.one_of(arg, near_uuid), ttl=arg, secret=arg)
def test_token(env: dict[str, str], job_id: str, ttl: str, secret: str) -> None:
    check(["token", job_id, f"--ttl={ttl}"], env)
    check(["token", env["JOB_ID"], f"--jwt-secret={secret}"], env)


@EXAMPLES
@given(email=st.one_of(arg, st.emails().map(str)), password=arg)
@example(email="someone@example.com", password="\udc80")  # a lone surrogate: an internal error
def test_user_create_and_login(env: dict[str, str], email: str, password: str) -> None:
    check(["user", "create", email, f"--password={password}"], env)
    check(["user", "login", email, f"--password={password}"], env)
