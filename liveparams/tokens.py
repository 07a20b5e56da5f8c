"""Job-scoped tokens: what a backend gives a training process instead of a service key.

A job token is an HS256 JWT signed with the project's JWT secret whose claims
name one job and no user (no ``sub``). The migration's RLS policy lets it read
that one row and the outcomes RPC lets it record outcomes there; nothing else.
"""

from __future__ import annotations

import time
import uuid

import jwt

DEFAULT_TTL_SECONDS = 7 * 24 * 3600
ISSUER = "liveparams"


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
    now = int(time.time())
    claims = {"role": "authenticated", "job_id": job_id, "iss": ISSUER, "iat": now, "exp": now + ttl_seconds}
    return jwt.encode(claims, jwt_secret, algorithm="HS256")


def parse_ttl(text: str) -> int:
    """``"90"``/``"90s"``, ``"30m"``, ``"12h"``, ``"7d"`` → seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip().lower()
    scale = units.get(text[-1:])
    number = text[:-1] if scale else text
    if not number.isdigit():
        raise ValueError(f"invalid duration {text!r}: use e.g. 3600, 30m, 12h or 7d")
    return int(number) * (scale or 1)
