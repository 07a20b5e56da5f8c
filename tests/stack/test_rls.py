"""Who may do what to a job and its requests, through supabase-py: the RLS and grant matrix of the schema.

Rows: the caller. Columns: read the job row, read its requests, request an
update (RPC), record an outcome (RPC), rewrite the request history directly
(the legacy array, or the requests table), record the trainer's state (RPC),
cancel a request (RPC) and end the job's run (RPC).
"denied" is the error code PostgREST answers with; an empty read means RLS hid the rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from postgrest.exceptions import APIError
from realtime import RealtimeSubscribeStates
from realtime_support import Watch, barrier, next_item
from supabase import Client, ClientOptions, create_client
from supabase_auth import SyncGoTrueClient

from liveparams.credentials import CredentialAdmin
from liveparams.trainer_credential import parse_credential

pytestmark = pytest.mark.stack
TABLE = "local_training_jobs"
REQUESTS = "parameter_update_requests"
OK, HIDDEN = "ok", "hidden"

# caller -> (read job, read requests, request update, record outcome, rewrite array, rewrite requests, trainer state,
#            cancel request, end run)
MATRIX = {
    "anon": ("42501", "42501", "42501", "42501", "42501", "42501", "42501", "42501", "42501"),
    "owner": (OK, OK, OK, "42501", "42501", "42501", "42501", OK, OK),
    "other user": (HIDDEN, HIDDEN, "PT404", "42501", "42501", "42501", "42501", "PT404", "PT404"),
    "job token for this job": (OK, OK, "PT404", OK, "42501", "42501", OK, "PT404", "PT404"),
    "job token for another job": (HIDDEN, HIDDEN, "PT404", "42501", "42501", "42501", "42501", "PT404", "PT404"),
    "trainer session for this job": (OK, OK, "PT404", OK, "42501", "42501", OK, "PT404", "PT404"),
    "trainer session for another job": (HIDDEN, HIDDEN, "PT404", "42501", "42501", "42501", "42501", "PT404", "PT404"),
    "revoked trainer session": (HIDDEN, HIDDEN, "PT404", "42501", "42501", "42501", "42501", "PT404", "PT404"),
    "service role": (OK, OK, OK, OK, OK, OK, OK, OK, OK),
}


def trainer_session(stack_env: dict[str, str], job_id: str, revoked: bool = False) -> str:
    """The access token of a new trainer session for ``job_id`` (issued as a backend does), optionally revoked."""
    admin = CredentialAdmin(stack_env["API_URL"], stack_env["SERVICE_ROLE_KEY"])
    credential = admin.issue(job_id)
    auth = SyncGoTrueClient(
        url=f"{stack_env['API_URL']}/auth/v1",
        headers={"apikey": stack_env["ANON_KEY"]},
        auto_refresh_token=False,
        persist_session=False,
    )
    secret = parse_credential(credential.secret)
    session = auth.sign_in_with_password({"email": secret.email, "password": secret.password}).session
    assert session is not None
    if revoked:
        admin.revoke(job_id, credential.credential_id)
    return session.access_token


class Clients(dict[str, Client]):
    """A client per caller, made when first asked for (a trainer session costs a sign-in)."""

    def __init__(self, makers: dict[str, Callable[[], Client]]) -> None:
        super().__init__()
        self._makers = makers

    def __missing__(self, caller: str) -> Client:
        made = self[caller] = self._makers[caller]()
        return made


@dataclass
class World:
    """One running job with one request on it, and a client per caller."""

    job_id: str
    request_id: str
    clients: Clients


@pytest.fixture
def world(
    stack_env: dict[str, str],
    new_user: Callable[[], tuple[str, str]],
    new_job: Callable[..., str],
    job_token: Callable[[str], str],
    request_update: Callable[..., dict[str, Any]],
) -> World:
    owner_id, owner_jwt = new_user()
    _, other_jwt = new_user()
    job_id, other_job = new_job(owner_id), new_job(owner_id)
    request_id = request_update(owner_jwt, job_id, {"learning_rate": 1e-4})["id"]

    def client(key: str, jwt: str | None = None) -> Client:
        headers = {"Authorization": f"Bearer {jwt}"} if jwt else {}
        return create_client(stack_env["API_URL"], key, options=ClientOptions(headers=headers))

    anon = stack_env["ANON_KEY"]
    makers: dict[str, Callable[[], Client]] = {
        "anon": lambda: client(anon),
        "owner": lambda: client(anon, owner_jwt),
        "other user": lambda: client(anon, other_jwt),
        "job token for this job": lambda: client(anon, job_token(job_id)),
        "job token for another job": lambda: client(anon, job_token(other_job)),
        "trainer session for this job": lambda: client(anon, trainer_session(stack_env, job_id)),
        "trainer session for another job": lambda: client(anon, trainer_session(stack_env, other_job)),
        "revoked trainer session": lambda: client(anon, trainer_session(stack_env, job_id, revoked=True)),
        "service role": lambda: client(stack_env["SERVICE_ROLE_KEY"]),
    }
    clients = Clients(makers)
    return World(job_id, request_id, clients)


def _read(world: World, client: Client) -> str:
    rows = client.table(TABLE).select("id, parameters_in_force").eq("id", world.job_id).execute().data
    return OK if rows else HIDDEN


def _read_requests(world: World, client: Client) -> str:
    rows = client.table(REQUESTS).select("id, seq, params").eq("job_id", world.job_id).execute().data
    if not rows:
        return HIDDEN
    assert rows[0]["id"] == world.request_id and rows[0]["seq"] == 1
    return OK


def _request(world: World, client: Client) -> str:
    stored = client.rpc("request_parameter_update", {"p_job_id": world.job_id, "p_params": {"weight_decay": 0.1}})
    assert stored.execute().data["weight_decay"] == 0.1
    return OK


def _record(world: World, client: Client) -> str:
    outcome = {"status": "applied", "at": "2026-11-24T05:00:00.000Z", "step": 3, "changes": {}}
    args = {"p_job_id": world.job_id, "p_outcomes": {world.request_id: outcome}}
    assert client.rpc("record_parameter_update_outcomes", args).execute().data == {"recorded": [world.request_id]}
    return OK


def _rewrite(world: World, client: Client) -> str:
    client.table(TABLE).update({"parameter_updates": []}).eq("id", world.job_id).execute()
    return OK


def _rewrite_requests(world: World, client: Client) -> str:
    client.table(REQUESTS).update({"status": "rejected"}).eq("job_id", world.job_id).execute()
    return OK


def _trainer_state(world: World, client: Client) -> str:
    client.rpc("record_trainer_state", {"p_job_id": world.job_id, "p_state": "attached"}).execute()
    return OK


def _cancel(world: World, client: Client) -> str:
    cancelled = client.rpc("cancel_parameter_update", {"p_job_id": world.job_id, "p_seq": 1}).execute().data
    assert (cancelled["id"], cancelled["status"]) == (world.request_id, "cancelled")
    return OK


def _end_run(world: World, client: Client) -> str:
    assert client.rpc("end_training_run", {"p_job_id": world.job_id}).execute().data == {"step": None, "cancelled": 1}
    return OK


ACTIONS: dict[str, Callable[[World, Client], str]] = {
    "read job": _read,
    "read requests": _read_requests,
    "request update": _request,
    "record outcome": _record,
    "rewrite array": _rewrite,
    "rewrite requests": _rewrite_requests,
    "trainer state": _trainer_state,
    "cancel request": _cancel,
    "end run": _end_run,
}


@pytest.mark.parametrize("caller", list(MATRIX))
@pytest.mark.parametrize("action", list(ACTIONS))
def test_matrix(world: World, caller: str, action: str) -> None:
    expected = MATRIX[caller][list(ACTIONS).index(action)]
    try:
        got = ACTIONS[action](world, world.clients[caller])
    except APIError as exc:
        got = exc.code or "no code"
    assert got == expected


def test_a_job_token_cannot_record_unknown_request_ids(world: World) -> None:
    client = world.clients["job token for this job"]
    with pytest.raises(APIError) as refused:
        args = {"p_job_id": world.job_id, "p_outcomes": {str(uuid.uuid4()): {"status": "applied"}}}
        client.rpc("record_parameter_update_outcomes", args).execute()
    assert refused.value.code == "22023" and "no request with id" in (refused.value.message or "")


def test_the_first_outcome_recorded_wins(world: World) -> None:
    client = world.clients["job token for this job"]

    def record(status: str) -> dict[str, Any]:
        args = {"p_job_id": world.job_id, "p_outcomes": {world.request_id: {"status": status}}}
        stored: dict[str, Any] = client.rpc("record_parameter_update_outcomes", args).execute().data
        return stored

    assert record("applied") == {"recorded": [world.request_id]}
    assert record("rejected") == {"recorded": []}  # only what this call stored; never the history
    row = client.table(REQUESTS).select("status").eq("id", world.request_id).single().execute().data
    assert row["status"] == "applied"


def test_an_ownerless_job_is_nobodys_until_a_backend_adopts_it(
    stack_env: dict[str, str],
    new_user: Callable[[], tuple[str, str]],
    job_token: Callable[[str], str],
    service_http: Any,
) -> None:
    """NULL never matches: a job token has no user, an ownerless job has no owner; neither makes them equal."""
    created = service_http.post(
        f"/rest/v1/{TABLE}",
        json={"status": "running", "name": "ownerless"},
        headers={"Prefer": "return=representation"},
    )
    created.raise_for_status()
    job_id = created.json()[0]["id"]
    assert created.json()[0]["user_id"] is None

    def client(jwt: str) -> Client:
        options = ClientOptions(headers={"Authorization": f"Bearer {jwt}"})
        return create_client(stack_env["API_URL"], stack_env["ANON_KEY"], options=options)

    owner_id, owner_jwt = new_user()
    args = {"p_job_id": job_id, "p_params": {"learning_rate": 1e-4}}
    for jwt in (job_token(job_id), job_token(str(uuid.uuid4())), owner_jwt):
        with pytest.raises(APIError) as refused:
            client(jwt).rpc("request_parameter_update", args).execute()
        assert refused.value.code == "PT404"

    service = create_client(stack_env["API_URL"], stack_env["SERVICE_ROLE_KEY"])
    assert service.rpc("liveparams_adopt_job", {"p_job_id": job_id, "p_user_id": owner_id}).execute().data is True
    assert client(owner_jwt).rpc("request_parameter_update", args).execute().data["seq"] == 1
    other_id, _ = new_user()
    assert service.rpc("liveparams_adopt_job", {"p_job_id": job_id, "p_user_id": other_id}).execute().data is False


def test_owners_create_and_rename_their_jobs_but_cannot_forge_history(
    stack_env: dict[str, str], new_user: Callable[[], tuple[str, str]]
) -> None:
    owner_id, owner_jwt = new_user()
    owner = create_client(
        stack_env["API_URL"],
        stack_env["ANON_KEY"],
        options=ClientOptions(headers={"Authorization": f"Bearer {owner_jwt}"}),
    )
    created = owner.table(TABLE).insert({"name": "mine", "status": "running"}).execute().data[0]
    assert created["user_id"] == owner_id  # defaults to auth.uid()
    renamed = owner.table(TABLE).update({"name": "renamed"}).eq("id", created["id"]).execute().data
    assert renamed[0]["name"] == "renamed"
    with pytest.raises(APIError) as forged:
        owner.table(TABLE).insert({"name": "forged", "parameter_updates": [{"learning_rate": 1}]}).execute()
    assert forged.value.code == "42501"
    with pytest.raises(APIError) as someone_elses:
        owner.table(TABLE).insert({"name": "not mine", "user_id": new_user()[0]}).execute()
    assert someone_elses.value.code == "42501"


@pytest.mark.anyio
async def test_realtime_delivers_a_jobs_requests_only_to_whom_rls_shows_them(
    stack_env: dict[str, str],
    new_user: Callable[[], tuple[str, str]],
    new_job: Callable[..., str],
    job_token: Callable[[str], str],
    request_update: Callable[..., dict[str, Any]],
) -> None:
    """The same callers as the matrix, on the Realtime path an agent and a UI use for the requests table."""
    owner_id, owner_jwt = new_user()
    _, stranger_jwt = new_user()
    job_id, other_job = new_job(owner_id), new_job(owner_id)
    session = trainer_session(stack_env, job_id)
    revoked_after_joining = CredentialAdmin(stack_env["API_URL"], stack_env["SERVICE_ROLE_KEY"]).issue(job_id)
    secret = parse_credential(revoked_after_joining.secret)
    revoked_session = (
        SyncGoTrueClient(
            url=f"{stack_env['API_URL']}/auth/v1", headers={"apikey": stack_env["ANON_KEY"]}, persist_session=False
        )
        .sign_in_with_password({"email": secret.email, "password": secret.password})
        .session
    )
    assert revoked_session is not None
    tokens = {
        "owner": owner_jwt,
        "job token": job_token(job_id),
        "trainer session": session,
        "other user": stranger_jwt,
        "other job's token": job_token(other_job),
        "revoked trainer session": revoked_session.access_token,
    }
    watches = {
        who: Watch.open(stack_env, name="requests")  # one topic: the barrier's broadcast reaches every watch
        .on_changes(table=REQUESTS, event="INSERT", filter=f"job_id=eq.{job_id}")
        .on_broadcast()
        for who in tokens
    }
    try:
        for who, token in tokens.items():
            await watches[who].subscribe(token)
        # Revoked while its channel is open and its access token unexpired: it receives nothing more.
        CredentialAdmin(stack_env["API_URL"], stack_env["SERVICE_ROLE_KEY"]).revoke(
            job_id, revoked_after_joining.credential_id
        )
        stored = request_update(owner_jwt, job_id, {"learning_rate": 3e-4})
        for who in ("owner", "job token", "trainer session"):
            record = (await watches[who].next_change())["data"]["record"]
            assert (record["id"], record["seq"], record["params"]) == (stored["id"], 1, {"learning_rate": 3e-4}), who
        hidden = ("other user", "other job's token", "revoked trainer session")
        await barrier([watches[who] for who in hidden], watches["owner"], "after-request")
        for who in hidden:
            assert watches[who].changes.empty(), who
    finally:
        for watch in watches.values():
            await watch.close()
    # anon may not read the table, so as on the real server it may not even filter on it
    anon = Watch.open(stack_env, name="requests").on_changes(
        table=REQUESTS, event="INSERT", filter=f"job_id=eq.{job_id}"
    )
    try:
        await anon.channel.subscribe(lambda state, error: anon.states.put_nowait((state, error)))
        assert await anon.next_state() == RealtimeSubscribeStates.SUBSCRIBED  # the join; then the system error
        state, error = await next_item(anon.states)
    finally:
        await anon.close()
    assert state == RealtimeSubscribeStates.CHANNEL_ERROR and "invalid column for filter job_id" in str(error)
