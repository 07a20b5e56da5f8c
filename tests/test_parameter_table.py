"""One table of parameters: the docs, the database RPC and the agent must say the same thing."""

from __future__ import annotations

from typing import Any

import pytest
from supabase import create_client

from agent import PARAMETERS, ParameterSpec
from liveparams import paramdoc


def test_docs_parameter_table_is_current() -> None:
    text = paramdoc.DOC.read_text(encoding="utf-8")
    assert text == paramdoc.rewrite(text), "docs/parameters.md is stale: run python -m liveparams.paramdoc"
    for name in PARAMETERS:
        assert f"| `{name}` |" in text


def _as_sql_spec(spec: ParameterSpec) -> dict[str, Any]:
    row: dict[str, Any] = {"type": spec.type.value}
    if spec.restart_only:
        row["restart_only"] = True
        return row
    if spec.min is not None:
        row["min"] = spec.min
    if spec.max is not None:
        row["max"] = spec.max
    if spec.min_exclusive:
        row["min_exclusive"] = True
    if spec.choices:
        row["choices"] = list(spec.choices)
    return row


@pytest.mark.stack
def test_database_bounds_match_the_agents(stack_env: dict[str, str]) -> None:
    client = create_client(stack_env["API_URL"], stack_env["ANON_KEY"])
    in_database = client.rpc("liveparams_parameter_spec").execute().data
    assert in_database == {name: _as_sql_spec(spec) for name, spec in PARAMETERS.items()}
