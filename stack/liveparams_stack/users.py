"""Users on the local stack, made the way an application makes them on Supabase: the Auth admin API.

`create_user` creates a confirmed user through ``/auth/v1/admin/users`` and
signs it in with its password (``liveparams.users``, what ``liveparams user create``
does), so the access token is the one GoTrue issues (``sub``, ``role``,
``session_id``, …) and code under test sees the same ``auth.uid()`` it would see
after a real sign-in.
"""

from __future__ import annotations

import secrets
import uuid

from liveparams import users
from liveparams_stack.keys import ANON_KEY, SERVICE_ROLE_KEY

__all__ = ["create_user"]


def create_user(api_url: str, email: str | None = None) -> tuple[str, str]:
    """Create a user on the stack at ``api_url`` and sign it in; return ``(user_id, access_token)``."""
    email = email or f"{uuid.uuid4().hex}@liveparams.test"
    password = secrets.token_urlsafe(16)
    user_id = users.create_user(api_url, SERVICE_ROLE_KEY, email, password)
    return user_id, users.sign_in(api_url, ANON_KEY, email, password).access_token
