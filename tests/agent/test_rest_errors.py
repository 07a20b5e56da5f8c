"""Which REST failures are retried (transient) and which are refusals."""

from __future__ import annotations

import pytest

from liveparams._supabase import is_transient_code


@pytest.mark.parametrize(
    "code", [None, "", "500", "503", "520", "429", "408", "PGRST000", "PGRST003", "08006", "57P01"]
)
def test_transient(code: str | None) -> None:
    assert is_transient_code(code)


@pytest.mark.parametrize("code", ["400", "401", "404", "PGRST301", "PGRST202", "22023", "42501", "P0002", "55000"])
def test_refusals(code: str) -> None:
    assert not is_transient_code(code)
