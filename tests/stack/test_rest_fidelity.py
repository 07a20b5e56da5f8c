"""PostgREST behaviours the stack must match exactly, through the unmodified postgrest-py client.

Each test makes its own table or functions (so it needs the database directly,
``DB_URL``) and asks PostgREST's schema cache to reload, so it runs unchanged
against a real ``supabase start``. Statuses are read with an httpx response
hook: the client's own result objects do not carry them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from postgrest import SyncPostgrestClient
from postgrest.exceptions import APIError

pytestmark = pytest.mark.stack


class Rest:
    """A postgrest-py client as ``service_role`` that remembers the last HTTP response."""

    def __init__(self, stack_env: dict[str, str], key: str | None) -> None:
        self.last: httpx.Response | None = None
        headers = {"apikey": key, "Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.Client(event_hooks={"response": [self._keep]}, timeout=10)
        self.client = SyncPostgrestClient(stack_env["REST_URL"], headers=headers, http_client=self.http)

    def _keep(self, response: httpx.Response) -> None:
        self.last = response

    @property
    def status(self) -> int:
        assert self.last is not None
        return self.last.status_code

    @property
    def content_range(self) -> str:
        assert self.last is not None
        return self.last.headers["Content-Range"]


@pytest.fixture
def table(db: psycopg.Connection[Any]) -> Iterator[str]:
    """A fresh table ``(id int primary key, name text default 'unnamed', tag text)`` with three rows."""
    name = f"fidelity_{uuid.uuid4().hex[:8]}"
    db.execute(f"create table public.{name} (id int primary key, name text default 'unnamed', tag text)")
    db.execute(f"insert into public.{name} values (1, 'a', 'x'), (2, 'b', 'x'), (3, 'c', 'y')")
    db.execute("notify pgrst, 'reload schema'")
    yield name
    functions = db.execute(
        "select p.oid::regprocedure::text from pg_proc p where p.proname like %s", [f"{name}%"]
    ).fetchall()
    for (signature,) in functions:  # the tests' functions are named after the table
        db.execute(f"drop function {signature}")
    db.execute(f"drop table public.{name}")
    db.execute("notify pgrst, 'reload schema'")


@pytest.fixture
def service(stack_env: dict[str, str]) -> Iterator[Rest]:
    rest = Rest(stack_env, stack_env["SERVICE_ROLE_KEY"])
    yield rest
    rest.http.close()


def _names(service: Rest, table: str) -> list[str]:
    return [row["name"] for row in service.client.from_(table).select("name").order("id").execute().data]


def test_an_upsert_that_only_updates_answers_200_and_one_that_inserts_201(service: Rest, table: str) -> None:
    service.client.from_(table).upsert({"id": 1, "name": "A"}).execute()
    assert service.status == 200
    service.client.from_(table).upsert([{"id": 2, "name": "B"}, {"id": 4, "name": "D"}]).execute()
    assert service.status == 201
    service.client.from_(table).upsert({"id": 3, "name": "C"}, ignore_duplicates=True).execute()
    assert service.status == 201  # ignore-duplicates always answers 201
    assert _names(service, table) == ["A", "B", "c", "D"]


def test_count_exact_on_writes_and_rpc(service: Rest, table: str, db: psycopg.Connection[Any]) -> None:
    inserted = service.client.from_(table).insert([{"id": 5}, {"id": 6}], count="exact").execute()  # type: ignore[arg-type]
    assert inserted.count == 2 and service.content_range == "*/2"
    updated = service.client.from_(table).update({"tag": "z"}, count="exact").eq("tag", "x").execute()  # type: ignore[arg-type]
    assert updated.count == 2 and service.content_range == "0-1/2"
    deleted = service.client.from_(table).delete(count="exact").in_("id", [5, 6]).execute()  # type: ignore[arg-type]
    assert deleted.count == 2 and service.content_range == "*/2"

    db.execute(f"create function public.{table}_ids() returns setof int language sql as 'select id from {table}'")
    db.execute("notify pgrst, 'reload schema'")
    called = service.client.rpc(f"{table}_ids", {}, count="exact").execute()  # type: ignore[arg-type]
    assert sorted(called.data) == [1, 2, 3] and called.count == 3 and service.content_range == "0-2/3"


def test_a_partial_counted_read_answers_206_with_its_range(service: Rest, table: str) -> None:
    page = service.client.from_(table).select("id", count="exact").order("id").range(1, 1).execute()  # type: ignore[arg-type]
    assert page.data == [{"id": 2}] and page.count == 3
    assert service.status == 206 and service.content_range == "1-1/3"


def test_prefer_tx_is_ignored_as_on_supabase_start(stack_env: dict[str, str], service: Rest, table: str) -> None:
    """``supabase start`` runs PostgREST with ``db-tx-end=commit``: ``Prefer: tx=rollback`` commits anyway."""
    response = service.http.post(  # postgrest-py has no builder method that sends it
        f"{stack_env['REST_URL']}/{table}",
        json={"id": 7, "name": "kept"},
        headers={**service.client.session.headers, "Prefer": "tx=rollback"},
    )
    assert response.status_code == 201 and "tx=" not in response.headers.get("Preference-Applied", "")
    assert "kept" in _names(service, table)


def test_omitted_columns_take_their_default_only_with_missing_default(service: Rest, table: str) -> None:
    rows = [{"id": 8, "name": "given", "tag": "t"}, {"id": 9, "tag": "t"}]
    service.client.from_(table).insert(rows, default_to_null=False).execute()
    service.client.from_(table).insert([{"id": 10, "name": "given"}, {"id": 11}]).execute()
    got = service.client.from_(table).select("id, name").gte("id", 8).order("id").execute().data
    assert got == [
        {"id": 8, "name": "given"}, {"id": 9, "name": "unnamed"}, {"id": 10, "name": "given"}, {"id": 11, "name": None},
    ]  # fmt: skip


def test_ambiguous_overloads_answer_pgrst203_with_300(service: Rest, table: str, db: psycopg.Connection[Any]) -> None:
    db.execute(f"create function public.{table}_pick(v int) returns text language sql as $$ select 'int' $$")
    db.execute(f"create function public.{table}_pick(v text) returns text language sql as $$ select 'text' $$")
    db.execute("notify pgrst, 'reload schema'")
    with pytest.raises(APIError) as ambiguous:
        service.client.rpc(f"{table}_pick", {"v": 1}).execute()
    assert ambiguous.value.code == "PGRST203" and service.status == 300
    assert ambiguous.value.message.startswith("Could not choose the best candidate function between: ")


def test_row_typed_and_whole_body_arguments(service: Rest, table: str, db: psycopg.Connection[Any]) -> None:
    db.execute(f"create function public.{table}_label(r public.{table}) returns text"
               " language sql as $$ select r.name || '/' || r.tag $$")  # fmt: skip
    db.execute(f"create function public.{table}_echo(json) returns json language sql as $$ select $1 $$")
    db.execute("notify pgrst, 'reload schema'")
    assert service.client.rpc(f"{table}_label", {"r": {"id": 1, "name": "n", "tag": "t"}}).execute().data == "n/t"
    assert service.client.rpc(f"{table}_label", {"r": None}).execute().data is None  # the body is JSON `null`
    assert service.client.rpc(f"{table}_echo", {"any": [1, "two"]}).execute().data == {"any": [1, "two"]}


def test_filter_operators_beyond_comparisons(service: Rest, table: str) -> None:
    query = service.client.from_(table)
    assert [r["id"] for r in query.select("id").match({"tag": "x"}).order("id").execute().data] == [1, 2]
    assert [r["id"] for r in query.select("id").filter("name", "match", "^[ab]$").order("id").execute().data] == [1, 2]
    assert [r["id"] for r in query.select("id").filter("tag", "isdistinct", "x").execute().data] == [3]
    assert [r["id"] for r in query.select("id").not_.is_("tag", "null").order("id").execute().data] == [1, 2, 3]
    assert [r["id"] for r in query.select("id").text_search("name", "c").execute().data] == [3]


def test_requests_without_any_key_run_as_anon(stack_env: dict[str, str], table: str) -> None:
    """The CLI's gateway passes a key-less request on without ``Authorization``; PostgREST runs it as anon."""
    keyless = Rest(stack_env, key=None)
    assert len(keyless.client.from_(table).select("id").execute().data) == 3 and keyless.status == 200


@pytest.mark.parametrize(
    ("call", "feature"),
    [
        (lambda c, t: c.from_(t).select("id, other(*)").execute(), "embedded resources and aggregates in select"),
        (lambda c, t: c.from_(t).select("id").or_("id.eq.1,id.eq.2").execute(), "or/and filters"),
        (lambda c, t: c.from_(t).select("id").csv().execute(), "Accept: text/csv"),
        (lambda c, t: c.from_(t).select("id::text").execute(), "casts in select"),
        (lambda c, t: c.from_(t).select("id", count="planned").execute(), "Prefer: count=planned"),
    ],
    ids=["embedding", "or", "csv", "cast", "planned count"],
)
def test_unsupported_features_are_refused_by_name(
    local_stack: object, service: Rest, table: str, call: Any, feature: str
) -> None:
    if local_stack is None:
        pytest.skip("a real PostgREST supports these")
    with pytest.raises(APIError) as refused:
        call(service.client, table)
    assert refused.value.code == "PGRST501" and service.status == 501
    assert refused.value.message == f"not supported by the liveparams development stack: {feature}"


def test_a_body_nested_deeper_than_python_reads_is_refused_by_name(
    local_stack: object, stack_env: dict[str, str], table: str
) -> None:
    """PostgREST passes such a body to PostgreSQL; the stack cannot parse it, so it says so (not a 500)."""
    if local_stack is None:
        pytest.skip("a real PostgREST passes the body on")
    key = stack_env["SERVICE_ROLE_KEY"]
    response = httpx.post(
        f"{stack_env['REST_URL']}/{table}",
        content='{"id": 9, "tag": ' + "[" * 2_000 + "]" * 2_000 + "}",
        headers={"apikey": key, "Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    assert response.status_code == 501 and response.json()["code"] == "PGRST501"
    assert response.json()["message"] == (
        "not supported by the liveparams development stack: "
        "JSON bodies nested deeper than Python reads (about 1,000 levels)"
    )


def test_functions_changed_without_a_reload_are_still_called_right(
    service: Rest, table: str, db: psycopg.Connection[Any]
) -> None:
    """The stack caches the functions /rpc calls; what it cached must never answer for a function that changed."""
    db.execute(f"create function public.{table}_size(a int) returns int language sql as $$ select a $$")
    db.execute("notify pgrst, 'reload schema'")
    assert service.client.rpc(f"{table}_size", {"a": 2}).execute().data == 2  # now cached
    db.execute(f"drop function public.{table}_size(int)")
    db.execute(f"create function public.{table}_size(b int) returns int language sql as $$ select b * 10 $$")
    assert service.client.rpc(f"{table}_size", {"b": 3}).execute().data == 30  # a new argument name: read again
    db.execute(f"drop function public.{table}_size(int)")
    with pytest.raises(APIError) as gone:  # dropped: PostgREST's refusal, not the database's error
        service.client.rpc(f"{table}_size", {"b": 3}).execute()
    assert gone.value.code == "PGRST202" and service.status == 404


def test_a_schema_reload_shows_a_new_overload_of_a_called_function(
    service: Rest, table: str, db: psycopg.Connection[Any]
) -> None:
    db.execute(f"create function public.{table}_kind(v int) returns text language sql as $$ select 'int' $$")
    db.execute("notify pgrst, 'reload schema'")
    assert service.client.rpc(f"{table}_kind", {"v": 1}).execute().data == "int"  # now cached
    db.execute(f"create function public.{table}_kind(v text) returns text language sql as $$ select 'text' $$")
    db.execute("notify pgrst, 'reload schema'")
    deadline = time.monotonic() + 10  # PostgREST too reloads on its own connection, a moment later
    while time.monotonic() < deadline:
        try:
            service.client.rpc(f"{table}_kind", {"v": 1}).execute()
        except APIError as exc:
            assert exc.code == "PGRST203" and service.status == 300
            return
        time.sleep(0.05)
    pytest.fail("the new overload was never seen after NOTIFY pgrst, 'reload schema'")
