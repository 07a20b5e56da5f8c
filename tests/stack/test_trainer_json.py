"""What a trainer credential writes as JSON cannot break its owner's reads (20261207140000_trainer_json_limits.sql).

A leaked or malicious trainer session once recorded an applied outcome whose `changes` nested
3,000 levels deep; it reached the job row's `parameters_in_force`, and every supabase-py read of
the job failed with RecursionError. Through the official client, as the trainer and as the owner.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from postgrest.exceptions import APIError
from test_rls import trainer_session
from test_security_credentials import as_bearer

pytestmark = pytest.mark.stack
# Deeper than the database's bound (32). The review's 3,000 levels do not cross the local stack's REST front
# (PGRST501: it parses bodies with Python); supabase/tests/trainer_json_limits_test.sql writes them in SQL.
LEVELS = 40


def deep_list(levels: int) -> list[Any]:
    """``[[[...]]]``, ``levels`` deep."""
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


def test_a_deep_outcome_is_recorded_failed_and_the_owner_still_reads_the_job(
    stack_env: dict[str, str], new_user: Callable[[], tuple[str, str]], new_job: Callable[..., str]
) -> None:
    owner_id, owner_jwt = new_user()
    job_id = new_job(owner_id)
    owner = as_bearer(stack_env, owner_jwt)
    bad, good = (
        owner.rpc("request_parameter_update", {"p_job_id": job_id, "p_params": params}).execute().data["id"]
        for params in ({"weight_decay": 0.1}, {"learning_rate": 0.002})
    )
    trainer = as_bearer(stack_env, trainer_session(stack_env, job_id))
    good_change = {"learning_rate": {"old": 0.001, "new": 0.002}}
    outcomes = {
        bad: {"status": "applied", "step": 1, "changes": {"weight_decay": {"old": 0.0, "new": deep_list(LEVELS)}}},
        good: {"status": "applied", "step": 2, "changes": good_change},
    }
    recorded = trainer.rpc("record_parameter_update_outcomes", {"p_job_id": job_id, "p_outcomes": outcomes}).execute()
    assert sorted(recorded.data["recorded"]) == sorted([bad, good])  # both stored: the refused one as failed

    job = owner.table("local_training_jobs").select("*").eq("id", job_id).single().execute().data
    assert job["parameters_in_force"] == {"learning_rate": 0.002}
    rows = owner.rpc("read_parameter_update_requests", {"p_job_id": job_id, "p_after_seq": 0}).execute().data
    refusal = "the trainer's outcome was refused: nested more than 32 levels deep, deeper than clients read back"
    assert [(r["id"], r["status"], r["changes"], r["reason"]) for r in rows["requests"]] == [
        (bad, "failed", None, refusal),
        (good, "applied", good_change, None),
    ]

    settings = {
        "p_job_id": job_id,
        "p_kind": "restart",
        "p_step": 2,
        "p_seconds": 1,
        "p_settings": {"x": deep_list(LEVELS)},
    }
    with pytest.raises(APIError) as refused:
        trainer.rpc("record_trainer_restart", settings).execute()
    assert (refused.value.code, "restart settings refused: nested" in (refused.value.message or "")) == ("22023", True)
    job = owner.table("local_training_jobs").select("*").eq("id", job_id).single().execute().data
    assert job["trainer_restart_settings"] is None
