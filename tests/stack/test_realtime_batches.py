"""Changes that reach the server in one poll are rendered together; one that fails costs only itself.

The stack renders a poll's changes in one query and checks their rows in one transaction, as the
real server's ``list_changes`` does, so one change's failure must not take the rest of the poll
with it. The rows here are committed in one transaction, so one poll decodes them all.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from realtime_support import Watch, anyio_backend, published_table, run_sql  # noqa: F401

from liveparams.tokens import mint_jwt

pytestmark = [pytest.mark.stack, pytest.mark.anyio]

MARKER = 99


@pytest.fixture
def table(stack_env: dict[str, str]) -> Iterator[str]:
    with published_table(stack_env) as name:
        yield name


async def ids_until_marker(watch: Watch) -> list[int]:
    """The ids of the changes received up to the marker row (changes arrive in commit order)."""
    ids: list[int] = []
    while (row_id := (await watch.next_change())["data"]["record"]["id"]) != MARKER:
        ids.append(row_id)
    return ids


async def test_a_row_check_that_fails_for_one_subscriber_does_not_fail_the_others(stack_env, table):
    """The policy reads a claim as an integer: it raises for the subscriber whose claim is not one."""
    run_sql(
        stack_env,
        f"alter table {table} enable row level security;"
        f" create policy by_claim on {table} for select to authenticated"
        " using ((current_setting('request.jwt.claims', true)::jsonb ->> 'level')::int > 0)",
    )
    watches = {level: Watch.open(stack_env).on_changes(table=table, event="INSERT") for level in ("not a number", "1")}
    try:
        for level, watch in watches.items():
            claims = {"role": "authenticated", "level": level}
            await watch.subscribe(mint_jwt(claims, stack_env["JWT_SECRET"], expires_in=600))
        run_sql(stack_env, f"insert into {table} (id, name) values (1, 'a'), (2, 'b'), (3, 'c')")
        run_sql(stack_env, f"insert into {table} (id, name) values ({MARKER}, 'end')")
        seen = await ids_until_marker(watches["1"])
    finally:
        for watch in watches.values():
            await watch.close()
    assert seen == [1, 2, 3]
    assert watches["not a number"].changes.empty()


async def test_a_change_whose_filter_cannot_be_evaluated_does_not_keep_the_rest_of_its_poll(stack_env, table):
    """A filter checked at join stops casting once its column changes type: only its own change is lost."""
    stale = Watch.open(stack_env).on_changes(table=table, event="INSERT", filter="note=eq.abc")
    every = Watch.open(stack_env).on_changes(table=table, event="INSERT")
    try:
        await stale.subscribe(stack_env["SERVICE_ROLE_KEY"])
        await every.subscribe(stack_env["SERVICE_ROLE_KEY"])
        run_sql(stack_env, f"alter table {table} alter column note type integer using null")
        # Row 1's note makes the server evaluate note = 'abc'::integer, which fails; rows 2 and 3 have none.
        run_sql(stack_env, f"insert into {table} (id, name, note) values (2, 'b', null), (1, 'a', 5), (3, 'c', null)")
        run_sql(stack_env, f"insert into {table} (id, name) values ({MARKER}, 'end')")
        seen = await ids_until_marker(every)
    finally:
        await stale.close()
        await every.close()
    assert seen == [2, 3]
