"""Auth helpers the tests import by name (a module of its own: ``from conftest import`` is ambiguous once
several test folders have a conftest.py)."""

from __future__ import annotations

from supabase_auth import SyncGoTrueClient

SHORT_TOKEN_LIFETIME_S = 4  # [auth] jwt_expiry of the short-lived stack (short_env)


def auth_client(stack_env: dict[str, str], key: str) -> SyncGoTrueClient:
    """The official Auth client (what ``supabase.auth`` is) on the stack, with ``key`` as its apikey."""
    return SyncGoTrueClient(
        url=f"{stack_env['API_URL']}/auth/v1",
        headers={"apikey": key, "Authorization": f"Bearer {key}"},
        auto_refresh_token=False,
        persist_session=False,
    )
