"""The REST front through the unmodified supabase-py clients (sync and async), and PostgREST's error shapes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from postgrest.exceptions import APIError
from supabase import Client, ClientOptions, acreate_client, create_client

from liveparams.tokens import mint_jwt

pytestmark = [pytest.mark.stack, pytest.mark.anyio]
TABLE = "local_training_jobs"


def _client(stack_env: dict[str, str], key: str, jwt: str | None = None) -> Client:
    headers = {"Authorization": f"Bearer {jwt}"} if jwt else {}
    return create_client(stack_env["API_URL"], key, options=ClientOptions(headers=headers))


@pytest.fixture
def service(stack_env: dict[str, str]) -> Client:
    return _client(stack_env, stack_env["SERVICE_ROLE_KEY"])


@pytest.fixture
def owner(new_user: Callable[[], tuple[str, str]]) -> str:
    return new_user()[0]


def _jobs(service: Client, owner: str, names_and_statuses: list[tuple[str, str]]) -> list[dict[str, Any]]:
    rows = [{"user_id": owner, "name": name, "status": status} for name, status in names_and_statuses]
    return service.table(TABLE).insert(rows).execute().data


def test_select_columns_filters_order_limit_and_single(service: Client, owner: str) -> None:
    _jobs(service, owner, [("a", "running"), ("b", "queued"), ("c", "running"), ("d", "failed")])
    mine = service.table(TABLE).select("name, status").eq("user_id", owner)

    assert mine.order("name").execute().data == [
        {"name": "a", "status": "running"},
        {"name": "b", "status": "queued"},
        {"name": "c", "status": "running"},
        {"name": "d", "status": "failed"},
    ]

    def names(query: Any) -> list[str]:
        return [row["name"] for row in query.order("name").execute().data]

    base = lambda: service.table(TABLE).select("name").eq("user_id", owner)  # noqa: E731
    assert names(base().neq("status", "running")) == ["b", "d"]
    assert names(base().gt("name", "b")) == ["c", "d"]
    assert names(base().gte("name", "b")) == ["b", "c", "d"]
    assert names(base().lt("name", "b")) == ["a"]
    assert names(base().lte("name", "b")) == ["a", "b"]
    assert names(base().in_("status", ["queued", "failed"])) == ["b", "d"]
    assert names(base().is_("last_parameter_update_at", "null")) == ["a", "b", "c", "d"]
    assert [r["name"] for r in base().order("name", desc=True).limit(2).execute().data] == ["d", "c"]

    single = base().eq("name", "c").single().execute().data
    assert single == {"name": "c"}
    with pytest.raises(APIError) as missing:
        base().eq("name", "nope").single().execute()
    assert missing.value.code == "PGRST116"

    counted = service.table(TABLE).select("id", count="exact").eq("user_id", owner).limit(1).execute()  # type: ignore[arg-type]
    assert counted.count == 4 and len(counted.data) == 1


def test_insert_update_upsert_delete_return_the_rows(service: Client, owner: str) -> None:
    inserted = service.table(TABLE).insert({"user_id": owner, "name": "x", "status": "running"}).execute().data
    assert len(inserted) == 1
    job = inserted[0]
    assert job["parameter_updates"] == [] and job["parameters_in_force"] == {}
    assert job["created_at"].endswith("+00:00")

    updated = service.table(TABLE).update({"name": "y"}).eq("id", job["id"]).execute().data
    assert [row["name"] for row in updated] == ["y"]

    upserted = service.table(TABLE).upsert({"id": job["id"], "user_id": owner, "name": "z", "status": "completed"})
    assert [(row["id"], row["name"], row["status"]) for row in upserted.execute().data] == [
        (job["id"], "z", "completed")
    ]
    fresh = service.table(TABLE).upsert({"user_id": owner, "name": "new", "status": "pending"}).execute().data
    assert fresh[0]["id"] != job["id"]

    deleted = service.table(TABLE).delete().eq("user_id", owner).execute().data
    assert sorted(row["name"] for row in deleted) == ["new", "z"]
    assert service.table(TABLE).select("id").eq("user_id", owner).execute().data == []


def test_rpc_with_named_arguments(service: Client, new_job: Callable[..., str], owner: str) -> None:
    spec = service.rpc("liveparams_parameter_spec").execute().data
    assert spec["learning_rate"]["type"] == "number"

    job_id = new_job(owner)
    stored = service.rpc("request_parameter_update", {"p_job_id": job_id, "p_params": {"learning_rate": 5e-5}})
    request = stored.execute().data
    assert request["learning_rate"] == 5e-5 and request["requested_by"] == "service_role"
    assert set(request) == {"learning_rate", "id", "seq", "requested_at", "requested_by"}

    with pytest.raises(APIError) as unknown:
        service.rpc("no_such_function", {"a": 1}).execute()
    assert unknown.value.code == "PGRST202"


async def test_async_client_reads_writes_and_calls(stack_env: dict[str, str], owner: str) -> None:
    client = await acreate_client(stack_env["API_URL"], stack_env["SERVICE_ROLE_KEY"])
    created = await client.table(TABLE).insert({"user_id": owner, "name": "async", "status": "running"}).execute()
    job_id = created.data[0]["id"]
    request = await client.rpc(
        "request_parameter_update", {"p_job_id": job_id, "p_params": {"weight_decay": 0.01}}
    ).execute()
    row = await client.table("parameter_update_requests").select("id, params").eq("job_id", job_id).single().execute()
    assert row.data == {"id": request.data["id"], "params": {"weight_decay": 0.01}}
    await client.table(TABLE).delete().eq("id", job_id).execute()


def test_opaque_keys_map_to_their_roles(stack_env: dict[str, str], service: Client, owner: str) -> None:
    _jobs(service, owner, [("seen by the secret key", "running")])
    secret = _client(stack_env, stack_env["SECRET_KEY"])
    assert secret.table(TABLE).select("name").eq("user_id", owner).execute().data == [
        {"name": "seen by the secret key"}
    ]
    publishable = _client(stack_env, stack_env["PUBLISHABLE_KEY"])
    with pytest.raises(APIError) as denied:
        publishable.table(TABLE).select("name").execute()
    assert denied.value.code == "42501"


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (lambda env: mint_jwt({"role": "authenticated"}, env["JWT_SECRET"], expires_in=-10), "JWT expired"),
        (lambda env: mint_jwt({"role": "service_role"}, "another-secret-that-is-at-least-32-chars"), "JWSError"),
        (lambda env: "not-a-jwt", "Expected 3 parts in JWT; got 1"),
    ],
    ids=["expired", "wrong secret", "garbage"],
)
def test_bad_tokens_get_401_in_postgrest_shape(
    stack_env: dict[str, str], token: Callable[[dict[str, str]], str], message: str
) -> None:
    response = httpx.get(
        f"{stack_env['REST_URL']}/{TABLE}",
        headers={"apikey": stack_env["ANON_KEY"], "Authorization": f"Bearer {token(stack_env)}"},
    )
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == "PGRST301" and message in body["message"]
    assert set(body) == {"code", "details", "hint", "message"}


def test_database_errors_map_to_postgrest_statuses(
    stack_env: dict[str, str], new_user: Callable[[], tuple[str, str]], new_job: Callable[..., str]
) -> None:
    owner_id, owner_jwt = new_user()
    rest = httpx.Client(base_url=stack_env["REST_URL"], headers={"apikey": stack_env["ANON_KEY"]})

    def call(jwt: str | None, job_id: str, params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {jwt}"} if jwt else {}
        body = {"p_job_id": job_id, "p_params": params}
        return rest.post("/rpc/request_parameter_update", json=body, headers=headers)

    running, finished = new_job(owner_id), new_job(owner_id, status="completed")
    cases = {
        "bad value": (call(owner_jwt, running, {"learning_rate": "fast"}), 400, "22023"),
        "out of range": (call(owner_jwt, running, {"learning_rate": 2}), 400, "22003"),
        "not running": (call(owner_jwt, finished, {"learning_rate": 1e-4}), 409, "PT409"),
        "no such job": (call(owner_jwt, "00000000-0000-0000-0000-000000000000", {"learning_rate": 1e-4}), 404, "PT404"),
        "anon may not": (call(None, running, {"learning_rate": 1e-4}), 401, "42501"),
        "not a uuid": (call(owner_jwt, "nope", {"learning_rate": 1e-4}), 400, "22P02"),
        "unknown table": (rest.get("/no_such_table"), 404, "PGRST205"),
    }
    for name, (response, status, code) in cases.items():
        assert (name, response.status_code, response.json()["code"]) == (name, status, code), response.text
    unknown = rest.get("/no_such_table")
    assert set(unknown.json()) == {"code", "details", "hint", "message"}


def test_sql_in_identifiers_is_only_ever_a_name(service: Client, stack_env: dict[str, str]) -> None:
    hostile = 'local_training_jobs"; drop table local_training_jobs; --'
    response = httpx.get(f"{stack_env['REST_URL']}/{hostile}", headers={"apikey": stack_env["SERVICE_ROLE_KEY"]})
    assert response.status_code == 404
    column = httpx.get(
        f"{stack_env['REST_URL']}/{TABLE}",
        params={"select": "id", 'name"; drop table x; --': "eq.1"},
        headers={"apikey": stack_env["SERVICE_ROLE_KEY"]},
    )
    assert column.status_code == 400 and column.json()["code"] == "42703"
    assert service.table(TABLE).select("id").limit(1).execute() is not None


@pytest.mark.faults
def test_injected_rest_failures(
    faults: Callable[..., dict[str, Any]], service: Client, owner: str, stack_env: dict[str, str]
) -> None:
    faults("rest_errors", count=1, status=503)
    # supabase-py retries a GET that got 503, as against a real gateway, so the read succeeds.
    assert service.table(TABLE).select("id").eq("user_id", owner).execute().data == []

    faults("rest_errors", count=1, status=500)
    with pytest.raises(APIError):
        service.table(TABLE).select("id").eq("user_id", owner).execute()
    assert service.table(TABLE).select("id").eq("user_id", owner).execute().data == []


def test_a_signed_token_cannot_claim_a_role_beyond_the_api_roles(stack_env: dict[str, str]) -> None:
    superuser = mint_jwt({"role": "postgres"}, stack_env["JWT_SECRET"])
    response = httpx.get(
        f"{stack_env['REST_URL']}/{TABLE}",
        headers={"apikey": stack_env["ANON_KEY"], "Authorization": f"Bearer {superuser}"},
    )
    assert response.status_code == 403 and response.json()["code"] == "42501"


def test_browsers_on_another_origin_may_call_it(stack_env: dict[str, str]) -> None:
    url = f"{stack_env['REST_URL']}/{TABLE}"
    preflight = httpx.options(
        url,
        headers={
            "Origin": "http://localhost:3000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "apikey, authorization, content-type, prefer, x-client-info",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "x-client-info" in preflight.headers["Access-Control-Allow-Headers"]
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    response = httpx.get(url, headers={"Origin": "http://localhost:3000", "apikey": stack_env["SERVICE_ROLE_KEY"]})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Content-Range" in response.headers["Access-Control-Expose-Headers"]


@pytest.mark.parametrize(
    ("path", "service"), [("/storage/v1/bucket", "Storage"), ("/functions/v1/hello", "Edge Functions")]
)
def test_services_the_stack_does_not_run_refuse_by_name(local_stack: object, stack_env: dict[str, str], path: str,
                                                        service: str) -> None:  # fmt: skip
    if local_stack is None:
        pytest.skip("a real stack runs them")
    response = httpx.get(stack_env["API_URL"] + path, headers={"apikey": stack_env["ANON_KEY"]})
    assert response.status_code == 501
    assert response.json()["message"] == f"not supported by the liveparams development stack: {service}"
