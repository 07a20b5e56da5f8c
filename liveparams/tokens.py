"""Job tokens (legacy trainer credentials) and the project's one JWT minter.

A job token is an HS256 JWT signed with the project's JWT secret whose claims name
one job and no user (no ``sub``). RLS lets it read that one job and record outcomes
there, until it expires or the job's job tokens are revoked (``liveparams credential
revoke``). Trainer sessions, which work with any signing key and refresh, are issued
by :mod:`liveparams.credentials`; docs/security.md compares the two.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt

__all__ = ["DEFAULT_TTL_SECONDS", "mint_job_token", "mint_jwt", "parse_ttl"]

DEFAULT_TTL_SECONDS = 7 * 24 * 3600
ISSUER = "liveparams"


def mint_jwt(claims: dict[str, Any], jwt_secret: str, expires_in: float | None = 3600.0) -> str:
    """Sign ``claims`` with HS256, adding ``iat`` and (unless ``expires_in`` is None) ``exp``.

    The one JWT minter of the project (job tokens, the local stack's Auth, tests).
    Claims given by the caller win, so a test can mint an already expired token
    by passing its own ``exp``.
    """
    now = int(time.time())
    payload: dict[str, Any] = {"iat": now}
    if expires_in is not None:
        payload["exp"] = now + int(expires_in)
    payload.update(claims)
    return jwt.encode(payload, jwt_secret, algorithm="HS256")


def mint_job_token(job_id: str, jwt_secret: str, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> str:
    """Return a token that can read job ``job_id`` and record outcomes on it.

    Raises `ValueError` if ``job_id`` is not a uuid or the TTL is not positive,
    so a typo cannot mint a token for nothing.
    """
    try:
        uuid.UUID(job_id)
    except ValueError:
        raise ValueError(f"the job id must be a uuid, got {job_id!r}") from None
    if ttl_seconds <= 0:
        raise ValueError(f"ttl must be positive, got {ttl_seconds} s")
    return mint_jwt({"role": "authenticated", "job_id": job_id, "iss": ISSUER}, jwt_secret, expires_in=ttl_seconds)


def parse_ttl(text: str) -> int:
    """``"90"``/``"90s"``, ``"30m"``, ``"12h"``, ``"7d"`` → seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip().lower()
    scale = units.get(text[-1:])
    number = text[:-1] if scale else text
    if not number.isdigit():
        raise ValueError(f"invalid duration {text!r}: use e.g. 3600, 30m, 12h or 7d")
    return int(number) * (scale or 1)
