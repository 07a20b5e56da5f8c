"""Users on the local stack, which has no Auth server: a row in its minimal ``auth.users`` and a token.

The token carries the claims a Supabase access token has for RLS (``sub``,
``role``, ``aud``, ``email``), signed with the stack's JWT secret, so code under
test sees the same ``auth.uid()`` it would see after a real sign-in.
"""

from __future__ import annotations

import uuid

import psycopg

from liveparams.tokens import mint_jwt
from liveparams_stack.keys import JWT_SECRET

__all__ = ["create_user"]


def create_user(db_url: str, email: str | None = None, expires_in: float = 3600.0) -> tuple[str, str]:
    """Insert a user into ``auth.users`` of the database at ``db_url``; return ``(user_id, access_token)``."""
    email = email or f"{uuid.uuid4().hex}@liveparams.test"
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute("insert into auth.users (email) values (%s) returning id", [email]).fetchone()
    if row is None:  # `returning` always yields the row; this keeps the type checker honest
        raise RuntimeError("inserting the user returned nothing")
    user_id = str(row[0])
    claims = {"sub": user_id, "role": "authenticated", "aud": "authenticated", "email": email}
    return user_id, mint_jwt(claims, JWT_SECRET, expires_in=expires_in)
