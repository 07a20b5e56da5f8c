"""Shared fixtures: a Supabase stack for the whole session, users, jobs and tokens on it.

By default the session starts a ``LocalStack`` (real PostgreSQL, migrations
applied by the Supabase CLI) in a temporary directory with fault injection on,
on the standard ports when they are free and on free ports otherwise. With
``SUPABASE_URL`` (or ``SUPABASE_API_URL``), ``SUPABASE_ANON_KEY``,
``SUPABASE_SERVICE_ROLE_KEY`` and ``SUPABASE_JWT_SECRET`` set (e.g. from ``supabase status -o env`` of a real
``supabase start``), the same tests run against that stack instead; set
``SUPABASE_DB_URL`` too for the tests that need the database directly.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from auth_helpers import SHORT_TOKEN_LIFETIME_S, auth_client
from psycopg import sql

from liveparams.agent._job_channel import POLICIES_MIGRATION
from liveparams.tokens import mint_jwt
from liveparams_stack import LocalStack, StackError
from liveparams_stack.local import free_port
from liveparams_stack.projects import project_with_auth

REPO = Path(__file__).resolve().parents[1]
JOBS_LIST_MIGRATION = "20261207160000_private_jobs_channel.sql"  # the panel names it in its fallback warning
SHORT_REUSE_INTERVAL_S = 1  # [auth] refresh_token_reuse_interval there: a spent refresh token is refused after it
REAL_STACK_KEYS = ("SUPABASE_ANON_KEY", "SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_JWT_SECRET")
JOB_TOKEN_TTL_S = 3600
TEST_PASSWORD_BYTES = 16
STACK_START_ATTEMPTS = 3


def _real_stack_env() -> dict[str, str] | None:
    # SUPABASE_API_URL too: what `supabase status -o env | sed 's/^/export SUPABASE_/'` exports.
    api_url = (os.environ.get("SUPABASE_URL") or os.environ.get("SUPABASE_API_URL") or "").rstrip("/")
    if not api_url or not all(os.environ.get(name) for name in REAL_STACK_KEYS):
        return None
    env = {
        "API_URL": api_url,
        "REST_URL": f"{api_url}/rest/v1",
        "REALTIME_URL": api_url.replace("http", "ws", 1) + "/realtime/v1",
        "ANON_KEY": os.environ["SUPABASE_ANON_KEY"],
        "SERVICE_ROLE_KEY": os.environ["SUPABASE_SERVICE_ROLE_KEY"],
        "JWT_SECRET": os.environ["SUPABASE_JWT_SECRET"],
    }
    if db_url := os.environ.get("SUPABASE_DB_URL"):
        env["DB_URL"] = db_url
    return env


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStack | None]:
    """The LocalStack this session started, or None when the tests run against a real stack."""
    if _real_stack_env() is not None:
        yield None
        return
    root = tempfile.mkdtemp(prefix="liveparams-stack-")
    os.chmod(root, 0o755)  # PostgreSQL runs as the `postgres` OS user when we are root
    state_dir = os.path.join(root, "stack")
    # The standard ports when free; other stacks (a developer's, another test run starting at the
    # same moment) may hold or grab them, so a failed start is retried on free ports.
    stack = LocalStack.on_free_ports(state_dir, enable_faults=True, stop_with_caller=True)
    try:
        for attempt in range(STACK_START_ATTEMPTS):
            try:
                stack.start()
                break
            except StackError:
                if attempt == STACK_START_ATTEMPTS - 1:
                    raise
                stack = LocalStack(state_dir, free_port(), free_port(), enable_faults=True, stop_with_caller=True)
        yield stack
    finally:
        stack.delete()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def private_stack() -> Iterator[LocalStack]:
    """A local stack of the module's own, with fault injection on, for tests that take it (or part of it) down."""
    if _real_stack_env() is not None:
        pytest.skip("takes a local stack down (SUPABASE_URL points at a real one)")
    root = tempfile.mkdtemp(prefix="liveparams-private-")
    os.chmod(root, 0o755)
    stack = LocalStack.on_free_ports(Path(root) / "stack", enable_faults=True, stop_with_caller=True)
    stack.start()
    try:
        yield stack
    finally:
        stack.delete()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def stack_env(local_stack: LocalStack | None) -> dict[str, str]:
    """The stack's variables under the names `supabase status -o env` prints (API_URL, ANON_KEY, ...)."""
    return local_stack.env() if local_stack is not None else _real_stack_env() or {}


@pytest.fixture(scope="session")
def short_env(local_stack: LocalStack | None, stack_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """A stack whose access tokens live SHORT_TOKEN_LIFETIME_S: a second local stack whose supabase/config.toml
    says so (the stack reads Auth's settings there, as ``supabase start`` does), or the real stack under test
    when its own ``jwt_expiry`` is as short (read from a sign-in's ``expires_in``)."""
    if local_stack is None:
        if _token_lifetime(stack_env) > 3 * SHORT_TOKEN_LIFETIME_S:
            pytest.skip("needs a stack whose [auth] jwt_expiry is a few seconds")
        yield stack_env
        return
    root = tempfile.mkdtemp(prefix="liveparams-short-")
    os.chmod(root, 0o755)  # PostgreSQL may run as another OS user
    project = project_with_auth(
        Path(root) / "project",
        REPO,
        jwt_expiry=SHORT_TOKEN_LIFETIME_S,
        refresh_token_reuse_interval=SHORT_REUSE_INTERVAL_S,
    )
    with _stack_of(root, project) as stack:
        yield stack.env()


@pytest.fixture(scope="module")
def older_stack(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """A local stack of the module's own whose database has the migrations before the module's
    ``MIGRATED_BEFORE`` version only: a project not migrated since (what this checkout must still work with)."""
    if _real_stack_env() is not None:
        pytest.skip("starts a local stack of its own (SUPABASE_URL points at a real one)")
    before: str = request.module.MIGRATED_BEFORE
    root = tempfile.mkdtemp(prefix="liveparams-older-")
    os.chmod(root, 0o755)  # PostgreSQL may run as another OS user
    project = project_with_auth(Path(root) / "project", REPO)
    for migration in (project / "supabase" / "migrations").glob("*.sql"):
        if migration.name.split("_", 1)[0] >= before:
            migration.unlink()
    with _stack_of(root, project) as stack:
        yield stack.env()


@contextlib.contextmanager
def _stack_of(root: str, project: Path) -> Iterator[LocalStack]:
    """A stack of ``project`` (its migrations and config.toml) started under ``root``; deleted, with ``root``, after."""
    stack = LocalStack(Path(root) / "stack", free_port(), free_port(), project_dir=project, stop_with_caller=True)
    try:
        stack.start()
        yield stack
    finally:
        stack.delete()
        shutil.rmtree(root, ignore_errors=True)


def _token_lifetime(env: dict[str, str]) -> float:
    admin = auth_client(env, env["SERVICE_ROLE_KEY"]).admin
    email, password = f"{uuid.uuid4().hex}@liveparams.test", uuid.uuid4().hex
    admin.create_user({"email": email, "password": password, "email_confirm": True})
    session = auth_client(env, env["ANON_KEY"]).sign_in_with_password({"email": email, "password": password}).session
    assert session is not None
    return float(session.expires_in)


@pytest.fixture(scope="session")
def service_http(stack_env: dict[str, str]) -> Iterator[httpx.Client]:
    """Plain HTTP as service_role, for test setup only (the tests themselves use the official clients)."""
    key = stack_env["SERVICE_ROLE_KEY"]
    with httpx.Client(
        base_url=stack_env["API_URL"], headers={"apikey": key, "Authorization": f"Bearer {key}"}
    ) as client:
        yield client


@pytest.fixture
def db(stack_env: dict[str, str]) -> Iterator[psycopg.Connection[Any]]:
    """The stack's database as its superuser (autocommit); skips against a real stack without ``SUPABASE_DB_URL``."""
    if "DB_URL" not in stack_env:
        pytest.skip("needs the database directly (set SUPABASE_DB_URL)")
    with psycopg.connect(stack_env["DB_URL"], autocommit=True) as conn:
        yield conn


@pytest.fixture
def failing_broadcast_checks(db: psycopg.Connection[Any]) -> Iterator[Callable[[str], Callable[[bool], None]]]:
    """``failing_broadcast_checks(topic)`` -> ``fail(on)``: while on, Realtime's write-policy check of a broadcast
    on ``topic`` raises, as a check that cannot run does (a restrictive policy that divides by zero while its gate
    table has a row; restrictive, so it is ANDed with the topic's own grants). Dropped after the test."""
    gates: list[sql.Identifier] = []

    def on_topic(topic: str) -> Callable[[bool], None]:
        gate = sql.Identifier(f"broadcast_gate_{uuid.uuid4().hex[:8]}")
        gates.append(gate)
        db.execute(sql.SQL("create table public.{0} (closed bool); grant select on public.{0} to public").format(gate))
        db.execute(
            sql.SQL(
                "create policy {0} on realtime.messages as restrictive for insert to public with check ("
                "realtime.topic() <> {1} or extension <> 'broadcast'"
                " or 1 / (1 - (select count(*)::int from public.{0})) = 1)"
            ).format(gate, sql.Literal(topic))
        )

        def fail(on: bool) -> None:
            statement = "insert into public.{0} values (true)" if on else "delete from public.{0}"
            db.execute(sql.SQL(statement).format(gate))

        return fail

    yield on_topic
    for gate in gates:
        db.execute(sql.SQL("drop policy if exists {0} on realtime.messages; drop table public.{0}").format(gate))


@pytest.fixture
def older_database(stack_env: dict[str, str]) -> Iterator[None]:
    """The shared stack's database without the private channels' policies (a database that predates their
    migrations: the job's channel and the jobs list's), put back by applying the migrations again."""
    if "DB_URL" not in stack_env:
        pytest.skip("needs the database directly (set SUPABASE_DB_URL)")
    migrations = [REPO / "supabase" / "migrations" / name for name in (POLICIES_MIGRATION, JOBS_LIST_MIGRATION)]
    policies = [
        name
        for migration in migrations
        for name in re.findall(r'create policy "([^"]+)" on realtime\.messages', migration.read_text(encoding="utf-8"))
    ]
    assert len(policies) == 3
    with psycopg.connect(stack_env["DB_URL"], autocommit=True) as conn:
        for name in policies:
            conn.execute(sql.SQL("drop policy {} on realtime.messages").format(sql.Identifier(name)))
        try:
            yield
        finally:
            for migration in migrations:
                conn.execute(migration.read_text(encoding="utf-8"))  # type: ignore[call-overload]


@pytest.fixture
def faults(local_stack: LocalStack | None) -> Iterator[Callable[..., dict[str, Any]]]:
    """``faults(action, **body)`` posts to the local stack's fault injection and returns its JSON; reset afterwards."""
    if local_stack is None:
        pytest.skip("fault injection needs the local stack (SUPABASE_URL points at a real one)")
    with httpx.Client(base_url=local_stack.api_url, timeout=10) as client:

        def inject(action: str, **body: Any) -> dict[str, Any]:
            response = client.post(f"/_liveparams/faults/{action}", json=body)
            response.raise_for_status()
            result: dict[str, Any] = response.json()
            return result

        yield inject
        inject("reset")


@pytest.fixture(scope="session")
def new_user(stack_env: dict[str, str]) -> Callable[..., tuple[str, str]]:
    """``new_user(**attributes)`` -> ``(user_id, jwt)``: a user made by the admin API, and its signed-in access token.

    The same calls on the local stack and on a real Supabase: the admin API
    creates a confirmed user (``attributes`` such as ``app_metadata`` go along),
    and a password sign-in returns the access token GoTrue issues.
    """
    admin = auth_client(stack_env, stack_env["SERVICE_ROLE_KEY"]).admin

    def create(**attributes: Any) -> tuple[str, str]:
        email, password = f"{uuid.uuid4().hex}@liveparams.test", uuid.uuid4().hex[:TEST_PASSWORD_BYTES]
        user = admin.create_user({"email": email, "password": password, "email_confirm": True, **attributes}).user
        session = (
            auth_client(stack_env, stack_env["ANON_KEY"])
            .sign_in_with_password({"email": email, "password": password})
            .session
        )
        assert session is not None
        return user.id, session.access_token

    return create


@pytest.fixture(scope="session")
def new_job(service_http: httpx.Client) -> Callable[..., str]:
    """``new_job(owner_id, status="running")`` -> job id, inserted as service_role."""

    def create(owner_id: str, status: str = "running", name: str = "test job") -> str:
        response = service_http.post(
            "/rest/v1/local_training_jobs",
            json={"user_id": owner_id, "status": status, "name": name},
            headers={"Prefer": "return=representation"},
        )
        response.raise_for_status()
        return str(response.json()[0]["id"])

    return create


@pytest.fixture(scope="session")
def job_token(stack_env: dict[str, str]) -> Callable[[str], str]:
    """``job_token(job_id)``: the job-scoped token of docs/contracts.md (authenticated, ``job_id`` claim, no sub)."""

    def mint(job_id: str) -> str:
        claims = {"role": "authenticated", "job_id": job_id, "iss": "liveparams"}
        return mint_jwt(claims, stack_env["JWT_SECRET"], expires_in=JOB_TOKEN_TTL_S)

    return mint


@pytest.fixture(scope="session")
def request_update(stack_env: dict[str, str]) -> Iterator[Callable[..., dict[str, Any]]]:
    """``request_update(jwt, job_id, params, request_id=None)`` -> the stored request, through the RPC."""
    with httpx.Client(base_url=stack_env["API_URL"], timeout=10) as client:

        def call(jwt: str, job_id: str, params: dict[str, Any], request_id: str | None = None) -> dict[str, Any]:
            body: dict[str, Any] = {"p_job_id": job_id, "p_params": params}
            if request_id is not None:
                body["p_request_id"] = request_id
            response = client.post(
                "/rest/v1/rpc/request_parameter_update",
                json=body,
                headers={"apikey": stack_env["ANON_KEY"], "Authorization": f"Bearer {jwt}"},
            )
            if response.is_error:
                raise AssertionError(f"request_parameter_update failed ({response.status_code}): {response.text}")
            stored: dict[str, Any] = response.json()
            return stored

        yield call


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Async tests run on asyncio only: the official Supabase clients are asyncio-based."""
    return "asyncio"
