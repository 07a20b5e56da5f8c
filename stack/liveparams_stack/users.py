"""Users on the local stack, made the way an application makes them on Supabase: the Auth admin API.

`create_user` creates a confirmed user through ``/auth/v1/admin/users`` and
signs it in with its password, so the access token is the one GoTrue issues
(``sub``, ``role``, ``session_id``, …) and code under test sees the same
``auth.uid()`` it would see after a real sign-in.
"""

from __future__ import annotations

import secrets
import uuid

from supabase_auth import SyncGoTrueClient

from liveparams_stack.keys import ANON_KEY, SERVICE_ROLE_KEY

__all__ = ["create_user"]


def create_user(api_url: str, email: str | None = None) -> tuple[str, str]:
    """Create a user on the stack at ``api_url`` and sign it in; return ``(user_id, access_token)``."""
    email = email or f"{uuid.uuid4().hex}@liveparams.test"
    password = secrets.token_urlsafe(16)
    admin = _auth(api_url, SERVICE_ROLE_KEY).admin
    user = admin.create_user({"email": email, "password": password, "email_confirm": True}).user
    session = _auth(api_url, ANON_KEY).sign_in_with_password({"email": email, "password": password}).session
    if session is None:  # a confirmed user's password sign-in always yields a session
        raise RuntimeError(f"signing in {email} returned no session")
    return user.id, session.access_token


def _auth(api_url: str, key: str) -> SyncGoTrueClient:
    return SyncGoTrueClient(
        url=f"{api_url}/auth/v1",
        headers={"apikey": key, "Authorization": f"Bearer {key}"},
        auto_refresh_token=False,
        persist_session=False,
    )
