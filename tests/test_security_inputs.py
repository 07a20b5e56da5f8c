"""Arbitrary JSON, property-based (hypothesis), into every way a request gets in: the request RPC,
rows written by hand (service_role inserting request rows, and the seed's ``parameter_updates``
array), and the agent's parsing of what it reads. Nothing crashes; each input is stored and
applied, or refused with a reason; nothing already accepted is lost.

Example counts are small (each RPC example is one HTTP call); the agent's parsing, which needs
no network, gets many more.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liveparams.agent import AgentConfig, UpdateAgent
from liveparams.agent._intake import Intake
from liveparams.agent._requests import MAX_REQUEST_BYTES, parse_request
from liveparams.contract import PARAMETERS, OutcomeStatus, UpdateOutcome, UpdateRequest

NAMES = [*sorted(PARAMETERS), "id", "requested_at", "requested_by", "seq", "", "learning_rate ", "💥"]
# JSON as PostgreSQL's jsonb stores it: text without NUL (jsonb refuses \u0000 with a clear 22P05).
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
    | st.sampled_from(["save_checkpoint", "evaluate", "stop", "rescale", "constant", "5e-5", "NaN"])
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(NAMES) | TEXT, inner, max_size=4),
    max_leaves=12,
)
# Mostly objects that name real parameters, so that validation, not only the type check, is exercised.
PARAMS = st.dictionaries(st.sampled_from(NAMES), JSON, max_size=4) | JSON
# Entries of the seed's jsonb[] column. Not arrays: in a PostgREST write a JSON array inside the array is
# another dimension of the column, not one entry (and PostgreSQL refuses ragged ones).
SEED_ENTRIES = st.one_of(SCALARS, st.dictionaries(st.sampled_from(NAMES) | TEXT, JSON, max_size=4))
REFUSALS = {"22023", "22003", "22P05", "PT413", "PT429"}
RPC_EXAMPLES = 40
FAST_AGENT = {"poll_interval": 0.2, "resync_interval": 1.0, "backoff_initial": 0.1, "backoff_max": 0.5}


# -- the agent's parsing (no network) ------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(payload=JSON)
def test_the_realtime_callback_takes_any_payload_without_raising(payload: Any) -> None:
    rejected: list[UpdateOutcome] = []
    intake = Intake(queue_size=8, max_request_bytes=MAX_REQUEST_BYTES, reject=rejected.append, resync=lambda: None)
    intake.on_change(payload)
    intake.on_change({"data": {"record": payload}})
    intake.on_change({"data": {"record": {"seq": 1, "id": "r", "params": payload}}})
    assert intake.queue.qsize() + len(rejected) <= 1


@settings(max_examples=400, deadline=None)
@given(params=PARAMS)
def test_every_row_becomes_a_request_or_a_rejection_with_a_reason(params: Any) -> None:
    row = {"id": "r1", "seq": 1, "params": params, "requested_at": "2026-11-28T00:00:00Z"}
    parsed = parse_request(row, MAX_REQUEST_BYTES)
    if isinstance(parsed, UpdateRequest):
        assert parsed.id == "r1" and parsed.params
    else:
        assert parsed.status is OutcomeStatus.REJECTED and parsed.reason and parsed.request_id == "r1"
        json.dumps(parsed.to_row())  # the rejection can be written back as it is


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(PARAMS, min_size=1, max_size=12))
def test_a_read_of_arbitrary_rows_queues_or_rejects_each_once_in_order(rows: list[Any]) -> None:
    rejected: list[UpdateOutcome] = []
    intake = Intake(queue_size=64, max_request_bytes=MAX_REQUEST_BYTES, reject=rejected.append, resync=lambda: None)
    stored = [{"id": f"r{seq}", "seq": seq, "params": params} for seq, params in enumerate(rows, start=1)]
    intake.ingest_read({"latest_seq": len(stored), "requests": stored}, limit=500)
    intake.ingest_read({"latest_seq": len(stored), "requests": stored}, limit=500)  # a re-read: nothing twice
    queued = [intake.queue.get_nowait().id for _ in range(intake.queue.qsize())]
    decided = queued + [outcome.request_id for outcome in rejected]
    assert sorted(decided) == sorted(row["id"] for row in stored)
    assert queued == sorted(queued, key=lambda rid: int(rid[1:]))
    assert intake.after_seq == len(stored)


# -- the request RPC --------------------------------------------------------------------------------


@pytest.mark.stack
def test_arbitrary_json_into_the_request_rpc_is_stored_or_refused_with_a_reason(
    stack_env: dict[str, str],
    new_user: Callable[..., tuple[str, str]],
    new_job: Callable[..., str],
    service_http: httpx.Client,
) -> None:
    owner_id, owner_jwt = new_user()
    job_id = new_job(owner_id)
    accepted: dict[str, Any] = {}
    headers = {"apikey": stack_env["ANON_KEY"], "Authorization": f"Bearer {owner_jwt}"}

    with httpx.Client(base_url=stack_env["API_URL"], headers=headers, timeout=10) as http:

        @settings(max_examples=RPC_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(params=PARAMS)
        def call(params: Any) -> None:
            response = http.post("/rest/v1/rpc/request_parameter_update", json={"p_job_id": job_id, "p_params": params})
            body = response.json()
            if response.is_success:
                assert {
                    k: v for k, v in body.items() if k not in ("id", "seq", "requested_at", "requested_by")
                } == params
                accepted[body["id"]] = params
            else:
                assert 400 <= response.status_code < 500, body
                assert body["code"] in REFUSALS and body["message"], body

        call()

    stored = service_http.get(
        "/rest/v1/parameter_update_requests", params={"job_id": f"eq.{job_id}", "select": "id,params"}
    ).json()
    assert {row["id"]: row["params"] for row in stored} == accepted  # every accepted one, and nothing else


# -- rows written by hand, then read by a running agent ----------------------------------------------


@pytest.mark.stack
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(by_hand=st.lists(PARAMS, min_size=1, max_size=6), seed_entries=st.lists(SEED_ENTRIES, min_size=1, max_size=6))
def test_rows_written_by_hand_are_applied_or_rejected_with_a_reason_by_the_agent(
    by_hand: list[Any],
    seed_entries: list[Any],
    stack_env: dict[str, str],
    service_http: httpx.Client,
    job_token: Callable[[str], str],
) -> None:
    job = service_http.post(
        "/rest/v1/local_training_jobs", json={"status": "running"}, headers={"Prefer": "return=representation"}
    ).json()[0]["id"]
    written = 0
    for params in by_hand:  # one insert each: a refused row (params null: 23502) must not take the others along
        row = {"job_id": job, "id": str(uuid.uuid4()), "seq": written + 1, "params": params}
        response = service_http.post("/rest/v1/parameter_update_requests", json=row)
        if response.is_success:
            written += 1
        else:
            assert response.status_code == 400 and response.json()["message"], response.text
    # The seed design's writers append to the job row's array; the trigger moves each entry into a row.
    service_http.patch(
        "/rest/v1/local_training_jobs", params={"id": f"eq.{job}"}, json={"parameter_updates": seed_entries}
    ).raise_for_status()
    stored = service_http.get("/rest/v1/parameter_update_requests", params={"job_id": f"eq.{job}"}).json()
    assert len(stored) >= written  # entries equal to each other are one request (same legacy id)

    config = AgentConfig(job_id=job, url=stack_env["API_URL"], key=job_token(job), **FAST_AGENT)  # type: ignore[arg-type]
    delivered: list[UpdateRequest] = []
    with UpdateAgent(config) as agent:
        deadline = time.monotonic() + 20
        while True:
            delivered += agent.drain()
            taken = {request.id for request in delivered}
            undecided = service_http.get(
                "/rest/v1/parameter_update_requests", params={"job_id": f"eq.{job}", "status": "is.null"}
            ).json()
            if {row["id"] for row in undecided} <= taken:
                break
            assert time.monotonic() < deadline, f"undecided and not delivered: {undecided}"
            time.sleep(0.1)
    rejected = service_http.get(
        "/rest/v1/parameter_update_requests", params={"job_id": f"eq.{job}", "status": "eq.rejected"}
    ).json()
    assert all(row["reason"] for row in rejected)
    assert {request.id for request in delivered} | {row["id"] for row in rejected} == {row["id"] for row in stored}


def test_a_reason_of_any_length_fits_the_outcome_the_database_records() -> None:
    # An exception's text can run to megabytes; the database refuses an outcome over 16 KiB.
    outcome = UpdateOutcome("r1", OutcomeStatus.FAILED, step=3, reason="could not apply: " + "x" * 100_000)
    row = outcome.to_row()
    assert row["reason"].startswith("could not apply: xxx") and row["reason"].endswith("…")
    assert len(json.dumps(row, ensure_ascii=False).encode()) <= 16384 // 2
    assert UpdateOutcome("r2", OutcomeStatus.REJECTED, reason="short").to_row()["reason"] == "short"
