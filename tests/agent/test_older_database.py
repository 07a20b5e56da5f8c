"""This agent against a database its migrations have not reached yet: a project migrated before
20261207130000_heartbeat_step.sql (no ``trainer_step``), on a local stack of its own (``older_stack``).

The agent sends its step with every heartbeat through ``record_trainer_state``'s ``p_step``, which
every version of the function takes: an older database ignores it on an ``alive`` beat, and the
trainer still reads as attached, then as detached where it ended.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import httpx
import pytest

from liveparams.agent import AgentConfig, UpdateAgent
from liveparams.agent._credential import EXPIRY_NOTICE_S
from liveparams.tokens import mint_jwt

pytestmark = [pytest.mark.stack, pytest.mark.slow]

MIGRATED_BEFORE = "20261207130000"  # older_stack's database lacks this migration (heartbeat_step) and later ones
HEARTBEAT_S = 0.2
WAIT_S = 20.0


def test_an_agent_that_sends_its_step_beats_and_detaches_on_a_database_without_trainer_step(
    older_stack: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    service = older_stack["SERVICE_ROLE_KEY"]
    with httpx.Client(
        base_url=older_stack["API_URL"], headers={"apikey": service, "Authorization": f"Bearer {service}"}
    ) as http:

        def row() -> dict[str, Any]:
            found: dict[str, Any] = http.get("/rest/v1/local_training_jobs", params={"id": f"eq.{job_id}"}).json()[0]
            return found

        job_id = str(uuid.uuid4())
        http.post("/rest/v1/local_training_jobs", json={"id": job_id, "name": "older", "status": "running"})
        assert "trainer_step" not in row()  # the database is the older one
        claims = {"role": "authenticated", "job_id": job_id, "iss": "liveparams"}
        token = mint_jwt(claims, older_stack["JWT_SECRET"], expires_in=2 * EXPIRY_NOTICE_S)  # no expiry warning
        config = AgentConfig(
            job_id=job_id,
            url=older_stack["API_URL"],
            key=token,
            api_key=older_stack["ANON_KEY"],
            heartbeat_interval=HEARTBEAT_S,
        )
        with caplog.at_level(logging.WARNING, logger="liveparams.agent"):
            agent = UpdateAgent(config)
            agent.record_step(0)
            agent.start()
            deadline = time.monotonic() + WAIT_S
            while row()["trainer_attached_at"] is None and time.monotonic() < deadline:
                time.sleep(0.05)
            agent.record_step(5)
            first_seen = row()["trainer_seen_at"]
            while row()["trainer_seen_at"] == first_seen and time.monotonic() < deadline:
                time.sleep(0.05)  # an `alive` beat with its step went through
            agent.record_end("completed", 9)
            agent.close()
        ended = row()

    assert first_seen is not None and ended["trainer_seen_at"] != first_seen
    assert (ended["trainer_detach_reason"], ended["trainer_detach_step"]) == ("completed", 9)
    # No refusal of the step, nothing said of it (a database this old also lacks the private job channel,
    # whose own warning tests/agent/test_agent_stack.py checks).
    said = [r.getMessage() for r in caplog.records]
    assert [m for m in said if "private job channel" not in m] == []
