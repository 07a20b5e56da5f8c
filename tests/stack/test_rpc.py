"""request_parameter_update as a UI calls it: validation messages, idempotency, concurrent appends."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from postgrest.exceptions import APIError
from supabase import AsyncClientOptions, Client, ClientOptions, acreate_client, create_client

from liveparams.contract import PARAMETERS, ParamType

pytestmark = [pytest.mark.stack, pytest.mark.anyio]
TABLE = "local_training_jobs"
RPC = "request_parameter_update"


@pytest.fixture
def owner_client(stack_env: dict[str, str], new_user: Callable[[], tuple[str, str]]) -> tuple[str, Client, str]:
    """(owner id, a supabase-py client acting as the owner, the owner's JWT)."""
    owner_id, jwt = new_user()
    options = ClientOptions(headers={"Authorization": f"Bearer {jwt}"})
    return owner_id, create_client(stack_env["API_URL"], stack_env["ANON_KEY"], options=options), jwt


def _refusal(client: Client, job_id: str, params: Any) -> APIError:
    with pytest.raises(APIError) as refused:
        client.rpc(RPC, {"p_job_id": job_id, "p_params": params}).execute()
    return refused.value


@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        ({"learning_rat": 1e-4}, "22023", 'unknown parameter "learning_rat"; known parameters: adam_beta1, adam_beta2'),
        ({"learning_rate": "1e-4"}, "22023", '"learning_rate" must be a number'),
        ({"learning_rate": True}, "22023", '"learning_rate" must be a number'),
        ({"learning_rate": None}, "22023", '"learning_rate" must be a number'),
        ({"learning_rate": [1e-4]}, "22023", '"learning_rate" must be a number'),
        ({"learning_rate": -1e-4}, "22003", '"learning_rate" = -0.0001 is out of range (> 0 .. 1)'),
        ({"learning_rate": 0}, "22003", "out of range"),
        ({"learning_rate": 1e300}, "22003", "out of range"),
        ({"max_steps": 10.5}, "22023", '"max_steps" must be a whole number'),
        ({"command": "explode"}, "22023", '"command" must be one of'),
        ({"per_device_train_batch_size": 8}, "22023", "cannot change while training runs"),
        ({"id": str(uuid.uuid4())}, "22023", '"id" is set by the server'),
        ({}, "22023", "request names no parameter"),
        ([{"learning_rate": 1e-4}], "22023", "parameters must be a JSON object"),
        ({"learning_rate": 1e-4, "note": "x" * 5000}, "PT413", "the limit is 4096"),
    ],
    ids=lambda value: str(value)[:40],
)
def test_invalid_requests_are_refused_with_a_clear_message(
    owner_client: tuple[str, Client, str], new_job: Callable[..., str], params: Any, code: str, message: str
) -> None:
    owner_id, client, _ = owner_client
    job_id = new_job(owner_id)
    refusal = _refusal(client, job_id, params)
    assert (refusal.code, message in (refusal.message or "")) == (code, True), refusal.message
    row = client.table(TABLE).select("parameter_updates").eq("id", job_id).single().execute().data
    assert row["parameter_updates"] == []


def test_nan_cannot_even_be_sent(
    stack_env: dict[str, str], owner_client: tuple[str, Client, str], new_job: Callable[..., str]
) -> None:
    owner_id, client, jwt = owner_client
    job_id = new_job(owner_id)
    with pytest.raises(ValueError):  # the client refuses to encode it
        client.rpc(RPC, {"p_job_id": job_id, "p_params": {"learning_rate": math.nan}}).execute()
    raw = f'{{"p_job_id": "{job_id}", "p_params": {{"learning_rate": NaN}}}}'
    response = httpx.post(
        f"{stack_env['REST_URL']}/rpc/{RPC}",
        content=raw,
        headers={"apikey": stack_env["ANON_KEY"], "Authorization": f"Bearer {jwt}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400 and response.json()["code"] in ("PGRST102", "22P02")


def test_every_live_parameter_accepts_a_valid_value(
    owner_client: tuple[str, Client, str], new_job: Callable[..., str]
) -> None:
    owner_id, client, _ = owner_client
    job_id = new_job(owner_id)
    for spec in PARAMETERS.values():
        if spec.restart_only:
            continue
        value = spec.choices[0] if spec.choices else 10 if spec.type is ParamType.INTEGER else 0.5
        stored = client.rpc(RPC, {"p_job_id": job_id, "p_params": {spec.name: value}}).execute().data
        assert stored[spec.name] == value


def test_stamps_and_idempotency(owner_client: tuple[str, Client, str], new_job: Callable[..., str]) -> None:
    owner_id, client, _ = owner_client
    job_id = new_job(owner_id)
    request_id = str(uuid.uuid4())
    args = {"p_job_id": job_id, "p_params": {"learning_rate": 5e-5}, "p_request_id": request_id}
    first = client.rpc(RPC, args).execute().data
    assert first["id"] == request_id and first["requested_by"] == owner_id
    assert first["requested_at"].endswith("Z") and first["learning_rate"] == 5e-5
    retried = client.rpc(RPC, args).execute().data
    assert retried == first
    row = client.table(TABLE).select("parameter_updates, last_parameter_update_at").eq("id", job_id).single().execute()
    assert row.data["parameter_updates"] == [first] and row.data["last_parameter_update_at"] is not None


async def test_concurrent_appends_are_all_kept(
    stack_env: dict[str, str], new_user: Callable[[], tuple[str, str]], new_job: Callable[..., str]
) -> None:
    owner_id, jwt = new_user()
    job_id = new_job(owner_id)
    options = AsyncClientOptions(headers={"Authorization": f"Bearer {jwt}"})
    clients = [await acreate_client(stack_env["API_URL"], stack_env["ANON_KEY"], options=options) for _ in range(4)]
    rates = [round(1e-5 * (i + 1), 8) for i in range(20)]
    calls = [
        clients[i % len(clients)].rpc(RPC, {"p_job_id": job_id, "p_params": {"learning_rate": rate}}).execute()
        for i, rate in enumerate(rates)
    ]
    stored = [response.data for response in await asyncio.gather(*calls)]
    row = await clients[0].table(TABLE).select("parameter_updates").eq("id", job_id).single().execute()
    updates = row.data["parameter_updates"]
    assert len(updates) == 20 and len({update["id"] for update in updates}) == 20
    assert sorted(update["learning_rate"] for update in updates) == sorted(rates)
    assert {update["id"] for update in updates} == {request["id"] for request in stored}
