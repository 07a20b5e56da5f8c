"""Who a request is: the ``apikey`` header and ``Authorization: Bearer`` to a database role and JWT claims.

This is what Supabase's gateway and PostgREST do together. The bearer token,
when there is one, decides; otherwise the ``apikey`` does. A JWT must be HS256
with the project's secret and not expired; its ``role`` claim is the role the
request runs as (``anon`` when absent). The opaque ``sb_publishable_…`` and
``sb_secret_…`` keys stand for ``anon`` and ``service_role``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt

from liveparams_stack import keys

ANON_ROLE = "anon"
# The API gateway's own 401 bodies (it answers before PostgREST sees the request).
_NO_API_KEY = {"message": "No API key found in request", "hint": "No `apikey` request header or url param was found."}
_INVALID_API_KEY = {
    "message": "Invalid API key",
    "hint": "Double check your Supabase `anon` or `service_role` API key.",
}


@dataclass(frozen=True)
class Identity:
    """The role a request runs as and the claims put in ``request.jwt.claims``."""

    role: str
    claims: dict[str, Any] = field(default_factory=dict)


class AuthError(Exception):
    """The credentials are missing or invalid; ``body`` is the gateway's/PostgREST's 401 JSON."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body["message"])
        self.body = body


def identify(headers: Mapping[str, str], jwt_secret: str) -> Identity:
    """Resolve the request's credentials; raise AuthError the way Supabase answers 401."""
    apikey = headers.get("apikey")
    authorization = headers.get("Authorization", "")
    bearer = authorization[7:].strip() if authorization.lower().startswith("bearer ") else None
    if not apikey and not bearer:
        raise AuthError(_NO_API_KEY)
    if apikey and apikey not in keys.OPAQUE_KEY_ROLES and not _looks_like_jwt(apikey):
        raise AuthError(_INVALID_API_KEY)
    token = bearer or apikey
    assert token is not None
    if token in keys.OPAQUE_KEY_ROLES:
        role = keys.OPAQUE_KEY_ROLES[token]
        return Identity(role, {"role": role})
    claims = _decode(token, jwt_secret)
    return Identity(str(claims.get("role") or ANON_ROLE), claims)


def _decode(token: str, secret: str) -> dict[str, Any]:
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"verify_aud": False})
    except jwt.ExpiredSignatureError:
        raise AuthError(_postgrest_jwt_error("JWT expired")) from None
    except jwt.InvalidSignatureError:
        raise AuthError(_postgrest_jwt_error("JWSError JWSInvalidSignature")) from None
    except jwt.DecodeError:
        raise AuthError(_postgrest_jwt_error(f"Expected 3 parts in JWT; got {token.count('.') + 1}")) from None
    except jwt.InvalidTokenError as exc:
        raise AuthError(_postgrest_jwt_error(str(exc))) from None
    return dict(claims)


def _postgrest_jwt_error(message: str) -> dict[str, Any]:
    return {"code": "PGRST301", "details": None, "hint": None, "message": message}


def _looks_like_jwt(value: str) -> bool:
    return value.count(".") == 2


__all__ = ["ANON_ROLE", "AuthError", "Identity", "identify"]
