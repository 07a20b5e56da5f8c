"""The database, checked by the Supabase CLI's own tools and pgTAP, none of which needs Docker.

`supabase db push` (again: nothing left to apply), `supabase db lint` with
plpgsql_check, `supabase gen types --lang python` (the generated models must
describe the job row and the request rows and accept real ones), and the pgTAP suite in
supabase/tests run by pg_prove.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import types
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from liveparams.contract import PARAMETERS
from liveparams_stack.local import find_supabase_cli

pytestmark = pytest.mark.stack
PROJECT_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def db_url(stack_env: dict[str, str]) -> str:
    if "DB_URL" not in stack_env:
        pytest.skip("needs the database URL (SUPABASE_DB_URL for a real stack)")
    return stack_env["DB_URL"]


def _supabase(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [*find_supabase_cli(PROJECT_DIR), *args, "--workdir", str(PROJECT_DIR)]
    return subprocess.run(argv, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120)


def test_db_push_has_nothing_left_to_apply(db_url: str) -> None:
    pushed = _supabase("db", "push", f"--remote={db_url}", "--include-all", "--yes")
    assert pushed.returncode == 0, pushed.stderr
    assert "up to date" in pushed.stdout + pushed.stderr


def test_db_lint_with_plpgsql_check_is_clean(db_url: str) -> None:
    linted = _supabase("db", "lint", f"--remote={db_url}", "--level", "warning", "--fail-on", "warning")
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert "No schema errors found" in linted.stdout + linted.stderr


def test_generated_python_types_describe_the_row_the_agent_reads(
    db_url: str, stack_env: dict[str, str], new_user: Callable[[], tuple[str, str]], new_job: Callable[..., str]
) -> None:
    # sslmode=disable: otherwise the CLI prints a "connected without TLS" notice into the generated code.
    plain = f"{db_url}{'&' if '?' in db_url else '?'}sslmode=disable"
    generated = _supabase("gen", "types", "--lang", "python", f"--remote={plain}", "--schema", "public")
    assert generated.returncode == 0, generated.stderr
    module = types.ModuleType("liveparams_db_types")
    sys.modules[module.__name__] = module  # pydantic resolves the postponed annotations through it
    try:
        exec(compile(generated.stdout, "<supabase gen types>", "exec"), module.__dict__)
        model: Any = module.PublicLocalTrainingJobs
        requests_model: Any = module.PublicParameterUpdateRequests
        model.model_rebuild()
        requests_model.model_rebuild()
        fields = {name: str(field.annotation) for name, field in model.model_fields.items()}
        assert fields["id"] == "<class 'uuid.UUID'>"
        assert fields["status"] == "<class 'str'>"
        assert "parameter_update_outcomes" not in fields  # the history left the job row
        assert "parameters_in_force" in fields and "trainer_detach_reason" in fields
        request_fields = {name: str(field.annotation) for name, field in requests_model.model_fields.items()}
        assert request_fields["seq"] == "<class 'int'>" and request_fields["id"] == "<class 'str'>"

        # A request and its outcome, as REST returns them, fit the generated models.
        job_id = new_job(new_user()[0])
        headers = {"apikey": stack_env["SERVICE_ROLE_KEY"], "Authorization": f"Bearer {stack_env['SERVICE_ROLE_KEY']}"}
        rpc = f"{stack_env['REST_URL']}/rpc"
        request = httpx.post(
            f"{rpc}/request_parameter_update",
            json={"p_job_id": job_id, "p_params": {"learning_rate": 5e-5}},
            headers=headers,
        ).json()
        outcome = {"status": "applied", "at": "2026-11-24T05:00:00.000Z", "step": 3, "changes": {}}
        httpx.post(
            f"{rpc}/record_parameter_update_outcomes",
            json={"p_job_id": job_id, "p_outcomes": {request["id"]: outcome}},
            headers=headers,
        ).raise_for_status()
        row = httpx.get(
            f"{stack_env['REST_URL']}/local_training_jobs", params={"id": f"eq.{job_id}"}, headers=headers
        ).json()[0]
        parsed = model.model_validate(row)
        assert parsed.id == uuid.UUID(job_id) and parsed.status == "running"
        stored = httpx.get(
            f"{stack_env['REST_URL']}/parameter_update_requests", params={"job_id": f"eq.{job_id}"}, headers=headers
        ).json()[0]
        parsed_request = requests_model.model_validate(stored)
        assert parsed_request.id == request["id"] and parsed_request.seq == 1 and parsed_request.status == "applied"
    finally:
        del sys.modules[module.__name__]


def test_database_spec_matches_the_agent_parameter_table(stack_env: dict[str, str]) -> None:
    response = httpx.post(
        f"{stack_env['REST_URL']}/rpc/liveparams_parameter_spec", json={}, headers={"apikey": stack_env["ANON_KEY"]}
    )
    spec = response.json()
    assert set(spec) == set(PARAMETERS)
    for name, parameter in PARAMETERS.items():
        rule = spec[name]
        assert rule["type"] == parameter.type.value, name
        assert bool(rule.get("restart_only")) == parameter.restart_only, name
        if parameter.restart_only:
            continue
        assert tuple(rule.get("choices", ())) == parameter.choices, name
        assert rule.get("min") == parameter.min and rule.get("max") == parameter.max, name
        assert bool(rule.get("min_exclusive")) == parameter.min_exclusive, name


@pytest.mark.skipif(shutil.which("pg_prove") is None, reason="pg_prove not installed (Debian: postgresql-15-pgtap)")
def test_pgtap_suite(db_url: str) -> None:
    url = urlsplit(db_url)
    env = {**os.environ, "PGPASSWORD": url.password or ""}
    argv = ["pg_prove", "--host", url.hostname or "127.0.0.1", "--port", str(url.port or 5432)]
    argv += ["--username", url.username or "postgres", "--dbname", url.path.lstrip("/") or "postgres"]
    argv += sorted(str(path) for path in (PROJECT_DIR / "supabase" / "tests").glob("*.sql"))
    proved = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert proved.returncode == 0, proved.stdout + proved.stderr
    assert "All tests successful" in proved.stdout
