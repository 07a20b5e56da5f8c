"""postgres_changes filters and ``select`` as the real server applies and refuses them, seen by the official client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from realtime_support import Watch, anyio_backend, barrier, next_item, published_table, run_sql  # noqa: F401

pytestmark = [pytest.mark.stack, pytest.mark.anyio]


@pytest.fixture
def table(stack_env: dict[str, str]) -> Iterator[str]:
    with published_table(stack_env) as name:
        yield name


# (id, name, score, flag, note), inserted in this order after the subscription is ready.
ROWS = [
    (1, "alpha", 10, True, None),
    (2, "beta", 20, False, "x"),
    (3, "Gamma", 30, None, "y"),
    (4, "delta,comma", 40, True, "z"),
]
# filter -> ids of ROWS it lets through (evaluated on the inserted row, with PostgreSQL operators).
EXPECTED = {
    "score=gte.20,score=lte.30": [2, 3],  # comma = AND
    "score=neq.20": [1, 3, 4],
    "score=lt.20": [1],
    "score=gt.30": [4],
    "id=in.(1,3)": [1, 3],
    "id=not.in.(1,3)": [2, 4],
    "name=like.%ta": [2],
    "name=ilike.g%": [3],
    "name=match.^[a-d]": [1, 2, 4],
    "name=imatch.^g": [3],
    "note=is.null": [1],
    "note=not.is.null": [2, 3, 4],
    "flag=is.true": [1, 4],
    "flag=isdistinct.true": [2, 3],  # NULL-safe: the NULL flag passes
    "flag=not.isdistinct.false": [2],
    'name=eq."delta,comma"': [4],  # a quoted value keeps its comma
    "name=not.eq.alpha,score=lt.40": [2, 3],
}


def system_message(state: tuple[Any, Exception | None]) -> str:
    """The Python client reports a ``system`` error as CHANNEL_ERROR with the payload as JSON text."""
    return str(json.loads(str(state[1]))["message"])


async def test_each_operator_selects_the_rows_the_server_would(stack_env, table):
    watches = {
        f: Watch.open(stack_env, name="filters").on_changes(table=table, event="INSERT", filter=f).on_broadcast()
        for f in EXPECTED
    }
    marker = Watch.open(stack_env, name="filters").on_changes(table=table, event="INSERT", filter="id=eq.99")
    marker.on_broadcast()
    try:
        for watch in [*watches.values(), marker]:
            await watch.subscribe(stack_env["SERVICE_ROLE_KEY"])
        for row in ROWS:
            run_sql(stack_env, f"insert into {table} values (%s, %s, %s, %s, %s)", *row)
        run_sql(stack_env, f"insert into {table} (id, name) values (99, 'end')")
        await marker.next_change()  # the server has fanned out every change up to the marker row
        await barrier(list(watches.values()), marker, "end")  # and each socket has delivered them
        seen = {}
        for text, watch in watches.items():
            seen[text] = []
            while not watch.changes.empty():
                seen[text].append(watch.changes.get_nowait()["data"]["record"]["id"])
            seen[text] = [i for i in seen[text] if i != 99]  # the marker row
    finally:
        for watch in [*watches.values(), marker]:
            await watch.close()
    assert seen == EXPECTED


@pytest.mark.parametrize(
    ("filter", "message"),
    [
        ("score=foo.1", 'Error parsing `filter` params: ["foo", "1"]'),
        ("undefined", 'Error parsing `filter` params: ["undefined"]'),
        ("id=in.1", "Error parsing `filter` params: `in` filter value must be wrapped by parentheses"),
        ("id=eq.1,,score=eq.2", "Error parsing `filter` params: filter must not contain empty segments"),
        ("nope=eq.1", "invalid column for filter nope"),
        ("score=eq.abc", 'invalid input syntax for type integer: "abc"'),
        ("note=is.maybe", "invalid value for is filter: must be null, true, false, or unknown"),
        ("score=is.true", "is true filter requires a boolean column, got integer"),
        ("score=like.1%", "operator like requires a text-compatible column type, got integer"),
        ("name=match.(", "invalid regular expression for match filter"),
        ("id=in.(" + ",".join(str(i) for i in range(101)) + ")", "too many values for `in` filter. Maximum 100"),
    ],
)
async def test_a_filter_the_server_refuses_ends_in_a_system_error(stack_env, table, filter, message):
    watch = Watch.open(stack_env).on_changes(table=table, event="*", filter=filter)
    try:
        await watch.channel.subscribe(lambda state, error: watch.states.put_nowait((state, error)))
        system = await next_item(watch.states)  # the join itself succeeds; the error is the system message
        assert system[1] is None, system
        error = await next_item(watch.states)
    finally:
        await watch.close()
    assert message in system_message(error), error


async def test_select_cuts_record_and_old_record_to_the_columns_and_key(stack_env, table):
    run_sql(stack_env, f"alter table {table} replica identity full")
    run_sql(stack_env, f"insert into {table} values (1, 'alpha', 10, true, 'n')")
    watch = Watch.open(stack_env).on_changes(table=table, event="UPDATE", select=["score"])
    whole = Watch.open(stack_env).on_changes(table=table, event="UPDATE")
    try:
        await watch.subscribe(stack_env["SERVICE_ROLE_KEY"])
        await whole.subscribe(stack_env["SERVICE_ROLE_KEY"])
        run_sql(stack_env, f"update {table} set score = 11, name = 'beta' where id = 1")
        data = (await watch.next_change())["data"]
        full = (await whole.next_change())["data"]
    finally:
        await watch.close()
        await whole.close()
    assert data["record"] == {"id": 1, "score": 11}
    assert data["old_record"] == {"id": 1, "score": 10}
    assert [c["name"] for c in data["columns"]] == ["id", "score"]
    assert full["record"]["name"] == "beta" and full["old_record"]["name"] == "alpha"


async def test_a_select_column_the_role_cannot_read_ends_in_a_system_error(stack_env, table):
    watch = Watch.open(stack_env).on_changes(table=table, event="*", select=["nope"])
    try:
        await watch.channel.subscribe(lambda state, error: watch.states.put_nowait((state, error)))
        await next_item(watch.states)
        error = await next_item(watch.states)
    finally:
        await watch.close()
    assert "invalid column for select nope" in system_message(error), error


async def test_update_always_carries_old_record(stack_env, table):
    """The real server sends ``old_record`` on every UPDATE: the key under the default replica identity."""
    run_sql(stack_env, f"insert into {table} values (7, 'alpha', 1, null, null)")
    watch = Watch.open(stack_env).on_changes(table=table, event="UPDATE")
    try:
        await watch.subscribe(stack_env["SERVICE_ROLE_KEY"])
        run_sql(stack_env, f"update {table} set score = 2 where id = 7")
        data = (await watch.next_change())["data"]
    finally:
        await watch.close()
    assert data["old_record"] == {"id": 7}
    assert data["record"]["score"] == 2


async def test_delete_lists_every_column_and_carries_the_key(stack_env, table):
    """``columns`` comes from the table, not from the old identity, as on the real server."""
    run_sql(stack_env, f"insert into {table} values (5, 'alpha', 1, null, null)")
    watch = Watch.open(stack_env).on_changes(table=table, event="DELETE")
    try:
        await watch.subscribe(stack_env["SERVICE_ROLE_KEY"])
        run_sql(stack_env, f"delete from {table} where id = 5")
        data = (await watch.next_change())["data"]
    finally:
        await watch.close()
    assert [(c["name"], c["type"]) for c in data["columns"]] == [
        ("id", "int8"),
        ("name", "text"),
        ("score", "int4"),
        ("flag", "bool"),
        ("note", "text"),
    ]
    assert data["old_record"] == {"id": 5} and "record" not in data
