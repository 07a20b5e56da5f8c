"""The environment variables liveparams reads, and their order: one definition for the agent and the CLI.

Each value can come under the name a Supabase project's own tools print
(``supabase status -o env`` and ``liveparams stack status -o env``: ``API_URL``,
``ANON_KEY``, ``SERVICE_ROLE_KEY``, ...), the ``SUPABASE_``-prefixed name apps
and the Supabase docs use (``SUPABASE_URL``, ``SUPABASE_ANON_KEY``, ...), or the
prefixed form of the first (``SUPABASE_API_URL``, what ``sed 's/^/SUPABASE_/'``
makes of it). The first name set wins, most specific first, so a name chosen on
purpose beats one that came with a pasted block. ``SECRET_KEY`` alone is never
read: too many other tools (Django, Flask) use that name for something else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jwt

__all__ = [
    "JWT_SECRET_VARS",
    "PUBLIC_KEY_VARS",
    "SERVICE_KEY_VARS",
    "TRAINER_KEY_VARS",
    "TRAINER_TOKEN_VAR",
    "URL_VARS",
    "USER_TOKEN_VAR",
    "first_set",
    "is_header_safe",
    "key_role",
    "unverified_claims",
]

URL_VARS = ("SUPABASE_URL", "NEXT_PUBLIC_SUPABASE_URL", "SUPABASE_API_URL", "API_URL")
PUBLIC_KEY_VARS = (
    "SUPABASE_ANON_KEY",
    "NEXT_PUBLIC_SUPABASE_ANON_KEY",
    "SUPABASE_PUBLISHABLE_KEY",
    "NEXT_PUBLIC_SUPABASE_PUBLISHABLE_KEY",
    "ANON_KEY",
    "PUBLISHABLE_KEY",
)
SERVICE_KEY_VARS = ("SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_SECRET_KEY", "SERVICE_ROLE_KEY")
JWT_SECRET_VARS = ("SUPABASE_JWT_SECRET", "JWT_SECRET")
TRAINER_TOKEN_VAR = "LIVEPARAMS_TOKEN"  # the training process's job-scoped credential
USER_TOKEN_VAR = "LIVEPARAMS_USER_TOKEN"  # a signed-in person's access token, for the CLI
# What the agent authenticates with: its job token, else a service key, else a generic key.
TRAINER_KEY_VARS = (TRAINER_TOKEN_VAR, *SERVICE_KEY_VARS, "SUPABASE_KEY")


def first_set(env: Mapping[str, str], names: tuple[str, ...]) -> str:
    """The value of the first of ``names`` set to something other than blanks in ``env``, stripped; ``""`` if none."""
    return next((env[name].strip() for name in names if env.get(name, "").strip()), "")


def is_header_safe(value: str) -> bool:
    """Printable ASCII without spaces: what a URL, a key or a token is made of (HTTP headers carry them).

    A value read from a file keeps its line break, and a pasted block brings several lines;
    refused before use, neither reaches an HTTP library's error message, which would print it.
    """
    return bool(value) and all("!" <= char <= "~" for char in value)


def key_role(key: str) -> str | None:
    """The database role a project key or JWT stands for (``anon``, ``service_role``, ...), read without
    verifying it (the server does that); ``None`` when it says nothing (an opaque or malformed key).

    Why: the public key can read no job, and a service key reads them all; both are worth saying
    before anything is sent.
    """
    if key.startswith("sb_publishable_"):
        return "anon"
    if key.startswith("sb_secret_"):
        return "service_role"
    role = unverified_claims(key).get("role")
    return role if isinstance(role, str) else None


def unverified_claims(token: str) -> dict[str, Any]:
    """A JWT's claims, for display and the checks above only (the server verifies it); ``{}`` for anything else."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return claims if isinstance(claims, dict) else {}
