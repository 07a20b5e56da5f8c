"""The well-known keys of a local Supabase stack.

The values are the ones `supabase start` (Supabase CLI 3.1.0) prints, read from
the CLI's sources: it signs ``{"iss": "supabase-demo", "role": <role>, "exp":
1983812996}`` with HS256 and the default JWT secret, and maps its fixed
``sb_publishable_…``/``sb_secret_…`` keys to ``anon``/``service_role``. Using
the same values lets code, tests and docs run unchanged against either stack.
They are public; never use them for anything but local development.
"""

from __future__ import annotations

JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"

ANON_KEY = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9"
    ".CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0"
)
SERVICE_ROLE_KEY = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9sZSIsImV4cCI6MTk4MzgxMjk5Nn0"
    ".EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU"
)
PUBLISHABLE_KEY = "sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH"
SECRET_KEY = "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz"

# What an opaque (non-JWT) API key stands for, as the Supabase API gateway maps it.
OPAQUE_KEY_ROLES = {PUBLISHABLE_KEY: "anon", SECRET_KEY: "service_role"}


def is_opaque_key(token: str) -> bool:
    """``sb_``-prefixed keys are API keys, never user tokens."""
    return token.startswith("sb_")


__all__ = [
    "ANON_KEY",
    "JWT_SECRET",
    "OPAQUE_KEY_ROLES",
    "PUBLISHABLE_KEY",
    "SECRET_KEY",
    "SERVICE_ROLE_KEY",
    "is_opaque_key",
]
