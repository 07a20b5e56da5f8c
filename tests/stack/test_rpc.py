"""The request RPCs as a UI and an agent call them: validation messages, idempotency, concurrent requests,
the flood guard, reads that cost only what is new, and the limits and ids SQL shares with Python."""

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

from liveparams.agent import AgentConfig, request_identity
from liveparams.agent._requests import MAX_REQUEST_BYTES
from liveparams.contract import PARAMETERS, ParamType

pytestmark = [pytest.mark.stack, pytest.mark.anyio]
TABLE = "local_training_jobs"
REQUESTS = "parameter_update_requests"
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
        ({"num_generations": 1}, "22003", '"num_generations" = 1 is out of range'),
        ({"id": "386481e8-4888-440c-b3e8-c2115e40c6d2"}, "22023", '"id" is set by the server'),
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
    assert client.table(REQUESTS).select("id").eq("job_id", job_id).execute().data == []


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
    assert first["id"] == request_id and first["requested_by"] == owner_id and first["seq"] == 1
    assert first["requested_at"] and first["learning_rate"] == 5e-5
    retried = client.rpc(RPC, args).execute().data
    assert retried == first
    (row,) = client.table(REQUESTS).select("*").eq("job_id", job_id).execute().data
    assert (row["id"], row["seq"], row["params"], row["requested_at"]) == (request_id, 1, {"learning_rate": 5e-5},
                                                                           first["requested_at"])  # fmt: skip
    job = client.table(TABLE).select("parameter_updates, last_parameter_update_at").eq("id", job_id).single().execute()
    assert job.data["parameter_updates"] == [] and job.data["last_parameter_update_at"] is not None


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
    rows = (await clients[0].table(REQUESTS).select("*").eq("job_id", job_id).order("seq").execute()).data
    assert [row["seq"] for row in rows] == list(range(1, 21))  # one order, no gap, whatever the interleaving
    assert sorted(row["params"]["learning_rate"] for row in rows) == sorted(rates)
    assert {row["id"] for row in rows} == {request["id"] for request in stored}


@pytest.fixture
def service(stack_env: dict[str, str]) -> Client:
    return create_client(stack_env["API_URL"], stack_env["SERVICE_ROLE_KEY"])


def test_the_request_limit_is_one_number_in_sql_and_python(service: Client) -> None:
    assert service.rpc("liveparams_max_request_bytes", {}).execute().data == MAX_REQUEST_BYTES
    assert AgentConfig(job_id=str(uuid.uuid4()), url="http://x", key="k").max_request_bytes == MAX_REQUEST_BYTES


@pytest.mark.parametrize(
    "entry",
    [
        {"learning_rate": 5e-05, "requested_at": "2024-12-14T10:30:00.000Z"},
        {"a": 1.0, "b": 100, "c": [1e15, -1.5e15, 1e16, 1e-5, 0.0001, 123456.789, 1e300, 0.1 + 0.2]},
        {"é": 'ü\n\t"\\\u0001x', "Z": None, "a": True, "nested": {"y": [], "x": {}}},
        42,
        "{not json",
        '{"learning_rate": 2e-4, "requested_at": "2024-12-14T10:30:00.000Z"}',
    ],
    ids=lambda value: str(value)[:30],
)
def test_sql_gives_seed_entries_the_ids_the_agent_gave_them(
    service: Client, new_user: Callable[[], tuple[str, str]], new_job: Callable[..., str], entry: Any
) -> None:
    """Outcomes recorded before the upgrade are keyed by the agent's legacy ids: the migration must find them."""
    job_id = new_job(new_user()[0])
    # What the agent hashed before the upgrade: the entry as PostgREST rendered the stored jsonb.
    wrapped = service.table(TABLE).update({"parameters_in_force": {"v": entry}}).eq("id", job_id).execute().data
    rendered = wrapped[0]["parameters_in_force"]["v"]
    service.table(TABLE).update({"parameter_updates": [entry]}).eq("id", job_id).execute()  # the trigger moves it
    (row,) = service.table(REQUESTS).select("id").eq("job_id", job_id).execute().data
    assert row["id"] == request_identity(rendered)


def test_the_flood_guard_refuses_the_excess_with_a_reason(
    service: Client, owner_client: tuple[str, Client, str], new_job: Callable[..., str]
) -> None:
    owner_id, client, _ = owner_client
    job_id = new_job(owner_id)
    bound = service.rpc("liveparams_max_pending_requests", {}).execute().data
    undecided = [{"job_id": job_id, "id": f"r{i}", "seq": i + 1, "params": {"max_steps": 10}} for i in range(bound)]
    service.table(REQUESTS).insert(undecided).execute()
    with pytest.raises(APIError) as refused:
        client.rpc(RPC, {"p_job_id": job_id, "p_params": {"learning_rate": 1e-4}}).execute()
    assert refused.value.code == "PT429" and "not decided yet" in (refused.value.message or "")
    service.table(REQUESTS).update({"status": "superseded"}).eq("job_id", job_id).eq("id", "r0").execute()
    accepted = client.rpc(RPC, {"p_job_id": job_id, "p_params": {"learning_rate": 1e-4}}).execute().data
    assert accepted["seq"] == bound + 1


def test_an_agent_reads_only_what_is_new(
    owner_client: tuple[str, Client, str], new_job: Callable[..., str], job_token: Callable[[str], str],
    stack_env: dict[str, str],
) -> None:  # fmt: skip
    owner_id, client, _ = owner_client
    job_id = new_job(owner_id)
    ids = [
        client.rpc(RPC, {"p_job_id": job_id, "p_params": {"max_steps": 10 + i}}).execute().data["id"] for i in range(5)
    ]
    agent = create_client(
        stack_env["API_URL"],
        stack_env["ANON_KEY"],
        ClientOptions(headers={"Authorization": f"Bearer {job_token(job_id)}"}),
    )
    outcomes = {ids[0]: {"status": "applied", "step": 3}, ids[1]: {"status": "applied", "step": 9}}
    agent.rpc("record_parameter_update_outcomes", {"p_job_id": job_id, "p_outcomes": outcomes}).execute()

    def read(**args: Any) -> dict[str, Any]:
        result: dict[str, Any] = (
            agent.rpc("read_parameter_update_requests", {"p_job_id": job_id, **args}).execute().data
        )
        return result

    first = read()  # a fresh agent: undecided requests only
    assert first["latest_seq"] == 5 and [r["id"] for r in first["requests"]] == ids[2:]
    resumed = read(p_replay_after_step=5)  # resumed from step 5: what was applied at step 9 comes again
    assert [r["id"] for r in resumed["requests"]] == ids[1:]
    assert [r["seq"] for r in read(p_after_seq=3)["requests"]] == [4, 5]
    assert [r["seq"] for r in read(p_after_seq=0, p_limit=2)["requests"]] == [1, 2]
    assert read(p_after_seq=5)["requests"] == []
