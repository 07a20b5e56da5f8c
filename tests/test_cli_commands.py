"""``liveparams user`` and ``liveparams job``: a person's way from nothing to a job, as subprocesses against the stack.

The variables are given under the names ``supabase status -o env`` prints (``API_URL``,
``ANON_KEY``, ...), as ``set -a; eval "$(liveparams stack status -o env)"; set +a`` exports them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from cli_helpers import as_owner, config_home, liveparams, stack_names

pytestmark = pytest.mark.stack


def email() -> str:
    return f"{uuid.uuid4().hex[:12]}@liveparams.test"


def create_user(stack_env: dict[str, str], address: str, *extra: str) -> str:
    """A user made with `user create`; its access token, from its kept sign-in (`user token`)."""
    env = {**stack_names(stack_env), "XDG_CONFIG_HOME": config_home()}
    created = liveparams("user", "create", address, *extra, env=env)
    assert created.returncode == 0, created.stderr
    token = liveparams("user", "token", env=env)
    assert token.returncode == 0, token.stderr
    return token.stdout.strip()


def test_job_create_list_show_as_the_owner(
    stack_env: dict[str, str], job_token: Callable[[str], str], request_update: Callable[..., dict[str, Any]]
) -> None:
    address = email()
    owner = {**stack_names(stack_env), "LIVEPARAMS_USER_TOKEN": create_user(stack_env, address)}
    created = liveparams("job", "create", "--name", "first run", env=owner)
    assert created.returncode == 0, created.stderr
    job_id = created.stdout.strip()
    uuid.UUID(job_id)
    assert f"created job {job_id} ('first run', running), owned by {address}" in created.stderr

    listed = liveparams("job", "list", env=owner)
    assert listed.returncode == 0, listed.stderr
    assert f"jobs as {address}" in listed.stdout and job_id in listed.stdout and "not yet" in listed.stdout

    shown = liveparams("job", "show", job_id, env=owner)
    assert shown.returncode == 0, shown.stderr
    assert "status: running" in shown.stdout
    assert "trainer: no trainer has attached yet" in shown.stdout
    assert "nothing changed yet" in shown.stdout
    waited = liveparams("job", "wait", job_id, "--timeout", "2", env=owner)
    assert waited.returncode == 1
    assert f"no trainer attached to job {job_id} within 2 s: no trainer has attached yet" in waited.stderr

    # A trainer attaches, applies one request, and stops: what `job show` tells afterwards.
    stored = request_update(owner["LIVEPARAMS_USER_TOKEN"], job_id, {"learning_rate": 5e-4})
    trainer = {"apikey": stack_env["ANON_KEY"], "Authorization": f"Bearer {job_token(job_id)}"}
    with httpx.Client(base_url=f"{stack_env['API_URL']}/rest/v1/rpc", headers=trainer) as rpc:
        rpc.post("/record_trainer_state", json={"p_job_id": job_id, "p_state": "attached"}).raise_for_status()
        waited = liveparams("job", "wait", job_id, env=owner)
        assert waited.returncode == 0 and waited.stdout == "trainer: a trainer is attached\n", waited.stderr
        outcome = {"status": "applied", "step": 75, "at": "2026-01-01T00:00:00Z",
                   "changes": {"learning_rate": {"old": 1e-3, "new": 5e-4}}}  # fmt: skip
        rpc.post(
            "/record_parameter_update_outcomes", json={"p_job_id": job_id, "p_outcomes": {stored["id"]: outcome}}
        ).raise_for_status()
        rpc.post(
            "/record_trainer_state", json={"p_job_id": job_id, "p_state": "stopped", "p_step": 992}
        ).raise_for_status()
    shown = liveparams("job", "show", job_id, env={**owner, "COLUMNS": "160"})
    assert "trainer: the trainer detached: stopped at step 992" in shown.stdout
    assert "in force since step 75: learning_rate=5.00e-04" in shown.stdout
    assert "learning_rate: 1.00e-03 → 5.00e-04" in shown.stdout
    as_json = json.loads(liveparams("job", "show", job_id, "--json", env=owner).stdout)
    assert as_json["job"]["trainer_detach_reason"] == "stopped"
    assert [(r["id"], r["status"], r["step"]) for r in as_json["requests"]] == [(stored["id"], "applied", 75)]

    stranger = {**stack_names(stack_env), "LIVEPARAMS_USER_TOKEN": create_user(stack_env, email())}
    assert job_id not in liveparams("job", "list", env=stranger).stdout
    hidden = liveparams("job", "show", job_id, env=stranger)
    assert hidden.returncode == 1 and f"training job {job_id} not found" in hidden.stderr


def test_job_create_for_an_owner_takes_the_service_key(stack_env: dict[str, str]) -> None:
    address = email()
    owner_token = create_user(stack_env, address)
    service = stack_names(stack_env)
    created = liveparams("job", "create", "--name", "queued by the platform", "--owner", address.upper(), env=service)
    assert created.returncode == 0, created.stderr
    job_id = created.stdout.strip()
    owners_jobs = liveparams("job", "list", "--json", env={**service, "LIVEPARAMS_USER_TOKEN": owner_token})
    assert job_id in [job["id"] for job in json.loads(owners_jobs.stdout)]
    assert "with the service role key (every job)" in liveparams("job", "list", env=service).stdout

    ownerless = liveparams("job", "create", "--name", "nobody's", env=service)
    assert ownerless.returncode == 1 and "who owns the job?" in ownerless.stderr
    nobody = liveparams("job", "create", "--name", "x", "--owner", email(), env=service)
    assert nobody.returncode == 1 and "no user with the email" in nobody.stderr
    as_user = liveparams("job", "create", "--name", "x", "--owner", address, env=as_owner(stack_env, owner_token))
    assert as_user.returncode == 1 and "--owner needs a service key" in as_user.stderr
    bad_status = liveparams("job", "create", "--name", "x", "--status", "done", env=service)
    assert bad_status.returncode == 1 and "--status must be one of" in bad_status.stderr


@pytest.mark.parametrize(
    "names",
    [
        {"API_URL": "API_URL", "ANON_KEY": "ANON_KEY"},  # supabase status -o env
        {"API_URL": "SUPABASE_API_URL", "ANON_KEY": "SUPABASE_ANON_KEY"},  # ... | sed 's/^/SUPABASE_/'
        {"API_URL": "SUPABASE_URL", "ANON_KEY": "NEXT_PUBLIC_SUPABASE_ANON_KEY"},  # an app's .env
    ],
)
def test_every_naming_of_the_variables_works(
    stack_env: dict[str, str],
    new_user: Callable[[], tuple[str, str]],
    new_job: Callable[..., str],
    names: dict[str, str],
) -> None:
    owner_id, owner_jwt = new_user()
    job_id = new_job(owner_id)
    env = {names["API_URL"]: stack_env["API_URL"], names["ANON_KEY"]: stack_env["ANON_KEY"]}
    result = liveparams("set", job_id, "weight_decay=0.01", env={**env, "LIVEPARAMS_USER_TOKEN": owner_jwt})
    assert result.returncode == 0, result.stderr

    anon_only = liveparams("job", "list", env=env)
    assert anon_only.returncode == 1 and "the anon key alone sees no job" in anon_only.stderr


def test_the_anon_key_is_refused_whichever_way_it_is_given(stack_env: dict[str, str]) -> None:
    """Signed out, the public key sees no job whether it comes as SUPABASE_KEY or --key: the same sign-in hint,
    not the database's "permission denied for table local_training_jobs"."""
    url = {"SUPABASE_URL": stack_env["API_URL"]}
    public_keys = [stack_env["ANON_KEY"], *([stack_env["PUBLISHABLE_KEY"]] if "PUBLISHABLE_KEY" in stack_env else [])]
    for key in public_keys:
        for given, env in ((["--key", key], url), ([], {**url, "SUPABASE_KEY": key})):
            refused = liveparams("job", "list", *given, env=env)
            said = refused.stderr
            assert refused.returncode == 1 and "the anon key alone sees no job" in said and "user login" in said, said
            assert "permission denied" not in said and key not in said
