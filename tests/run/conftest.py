"""Fixtures of the `liveparams run` and custom-loop tests, which share the trainer-hooks helpers."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "trainer_hooks"))

import httpx
from run_helpers import Running, change_mid_run, child_env


@pytest.fixture
def stack(
    stack_env: dict[str, str],
    new_user: Callable[[], tuple[str, str]],
    new_job: Callable[..., str],
    job_token: Callable[[str], str],
) -> dict[str, Any]:
    """A job on the stack, the owner's token, and the trainer's environment (without ``JOB_ID``: ``--job`` gives it)."""
    user_id, jwt = new_user()
    job_id = new_job(user_id)
    env = child_env(
        SUPABASE_URL=stack_env["API_URL"], SUPABASE_ANON_KEY=stack_env["ANON_KEY"], LIVEPARAMS_TOKEN=job_token(job_id)
    )
    return {"jwt": jwt, "job_id": job_id, "env": env}


@pytest.fixture(scope="module")
def model_dir() -> str:
    from liveparams.demo.tiny import tiny_model_dir

    return tiny_model_dir()


@pytest.fixture
def changed_mid_run(
    stack: dict[str, Any], request_update: Callable[..., dict[str, Any]], service_http: httpx.Client
) -> Callable[[Running], dict[str, Any]]:
    """``changed_mid_run(running)``: :func:`run_helpers.change_mid_run` on this test's job; the decided row."""
    return functools.partial(change_mid_run, stack=stack, request_update=request_update, http=service_http)
