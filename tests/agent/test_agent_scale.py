"""Many jobs at once on one stack: each agent gets exactly its own job's requests (issue 23).

The small, correctness-only version of ``benchmarks/scale.py``: 50 running jobs, each with its
own agent on its own job token, three requests per job from one client, made one job after
another, with either request transport. Every request is drained exactly once, by its own job's agent, and every outcome
the agents report is recorded on its row. Timing is the benchmark's business, not this test's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from liveparams.agent import AgentConfig, Transport, UpdateAgent
from liveparams.contract import OutcomeStatus, UpdateOutcome

pytestmark = [pytest.mark.stack, pytest.mark.slow]

JOBS = 50
REQUESTS_PER_JOB = 3
DELIVERY_TIMEOUT_S = 60.0


@pytest.mark.parametrize("transport", list(Transport), ids=[t.value for t in Transport])
def test_fifty_jobs_each_get_exactly_their_own_requests(
    transport: Transport,
    stack_env: dict[str, str],
    service_http: httpx.Client,
    new_user: Callable[..., tuple[str, str]],
    new_job: Callable[..., str],
    job_token: Callable[[str], str],
    request_update: Callable[..., dict[str, Any]],
) -> None:
    owner, jwt = new_user()
    jobs = [new_job(owner, name=f"scale {i}") for i in range(JOBS)]
    agents = {
        job: UpdateAgent(AgentConfig(job_id=job, url=stack_env["API_URL"], key=job_token(job), transport=transport))
        for job in jobs
    }
    try:
        for agent in agents.values():
            agent.start()
        assert all(agent.wait_ready(60) for agent in agents.values())
        owner_of = {
            request_update(jwt, job, {"learning_rate": 1e-4 / (i + 2)})["id"]: job
            for i in range(REQUESTS_PER_JOB)
            for job in jobs
        }
        drained: dict[str, list[str]] = {job: [] for job in jobs}
        deadline = time.monotonic() + DELIVERY_TIMEOUT_S
        while sum(map(len, drained.values())) < len(owner_of) and time.monotonic() < deadline:
            for job, agent in agents.items():
                taken = agent.drain()
                drained[job] += [r.id for r in taken]
                agent.report([UpdateOutcome(r.id, OutcomeStatus.APPLIED, step=1) for r in taken])
            time.sleep(0.05)
        time.sleep(1.0)  # anything delivered twice arrives in this second
        for job, agent in agents.items():
            drained[job] += [r.id for r in agent.drain()]
        for job in jobs:
            assert sorted(drained[job]) == sorted(r for r, owner_job in owner_of.items() if owner_job == job), job
    finally:
        for agent in agents.values():
            agent.close()
    rows = service_http.get(
        "/rest/v1/parameter_update_requests",
        params={"job_id": f"in.({','.join(jobs)})", "select": "id,job_id,status"},
    ).json()
    assert {r["id"]: (r["job_id"], r["status"]) for r in rows} == {r: (j, "applied") for r, j in owner_of.items()}
