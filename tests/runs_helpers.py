"""Reading a job as the tests of runs do (tests/test_runs.py, tests/trainer_hooks/test_run_end.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

WAIT_S = 60.0  # for things that take milliseconds on an idle machine


def job_row(service_http: httpx.Client, job_id: str) -> dict[str, Any]:
    return service_http.get("/rest/v1/local_training_jobs", params={"id": f"eq.{job_id}"}).json()[0]


def request_rows(service_http: httpx.Client, job_id: str) -> dict[int, dict[str, Any]]:
    rows = service_http.get("/rest/v1/parameter_update_requests", params={"job_id": f"eq.{job_id}"}).json()
    return {row["seq"]: row for row in rows}


def trainer_state(service_http: httpx.Client, job_id: str, state: str, step: int | None = None) -> None:
    """What a trainer's agent records on the job row (the service key may do it too)."""
    args = {"p_job_id": job_id, "p_state": state, "p_step": step}
    service_http.post("/rest/v1/rpc/record_trainer_state", json=args).raise_for_status()


def until(predicate: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s")
