"""Who a request is: API keys and JWTs turned into a database role and the claims RLS sees.

One definition for every front of the stack. REST (and Auth) resolve the
``apikey`` and ``Authorization`` headers the way the CLI's API gateway and
PostgREST do together (`identify`); Realtime checks one token the way the
Realtime server does (``realtime/auth.py``). Both raise the same `AuthError`
and produce the same `Identity`. The opaque ``sb_publishable_…`` and
``sb_secret_…`` keys stand for ``anon`` and ``service_role``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import jwt

from liveparams_stack import keys

ANON_ROLE = "anon"
# PostgREST's own code for a JWT it refuses; the gateway's refusals carry no code.
JWT_REFUSED = "PGRST301"
_INVALID_API_KEY = ("Invalid API key", "Double check your Supabase `anon` or `service_role` API key.")


@dataclass(frozen=True)
class Identity:
    """Verified claims of a caller; ``claims`` is what RLS sees as ``request.jwt.claims``."""

    claims: dict[str, Any]

    @property
    def role(self) -> str:
        """The database role the request runs as: the ``role`` claim, ``anon`` without one (as PostgREST)."""
        return str(self.claims.get("role") or ANON_ROLE)

    def seconds_until_expiry(self) -> float | None:
        exp = self.claims.get("exp")
        return None if exp is None else float(exp) - time.time()


class AuthError(Exception):
    """Credentials a server refuses: ``code`` and ``message`` as that server words them, ``hint`` if it gives one."""

    def __init__(self, code: str, message: str, hint: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.hint = hint

    def postgrest_body(self) -> dict[str, Any]:
        """The 401 body PostgREST answers with (``PGRST301``), or the gateway's ``{message, hint}`` before it."""
        if self.code == JWT_REFUSED:
            return {"code": self.code, "details": None, "hint": self.hint, "message": self.message}
        return {"message": self.message, "hint": self.hint}


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token the CLI's gateway passes on as ``Authorization``: a user's bearer, else what the apikey stands for.

    The gateway (supabase/cli ``kong.yml``) keeps an ``Authorization`` header
    unless it carries an ``sb_`` key, and otherwise derives one from the
    ``apikey``. With neither, nothing is passed and PostgREST runs as ``anon``.
    """
    authorization = headers.get("Authorization", "")
    bearer = authorization[7:].strip() if authorization.lower().startswith("bearer ") else None
    if bearer and not keys.is_opaque_key(bearer):
        return bearer
    return headers.get("apikey") or bearer or None


def identify(headers: Mapping[str, str], jwt_secret: str) -> Identity:
    """Resolve a REST/Auth request's credentials; raise AuthError the way Supabase answers 401."""
    token = bearer_token(headers)
    if token is None:
        return Identity({"role": ANON_ROLE})
    if keys.is_opaque_key(token):
        role = keys.OPAQUE_KEY_ROLES.get(token)
        if role is None:
            raise AuthError("gateway", *_INVALID_API_KEY)
        return Identity({"role": role})
    if token.count(".") != 2 and token == headers.get("apikey"):
        raise AuthError("gateway", *_INVALID_API_KEY)
    return Identity(_decode(token, jwt_secret))


@functools.lru_cache(maxsize=4096)
def _verified(token: str, secret: str) -> Mapping[str, Any]:
    """The claims of a token whose signature checked out (a refusal raises, and is never cached).

    Verifying is a tenth of the server's time with 1,000 agents; each sends the same token every
    time, so a token is verified once and only its expiry is looked at again (``_decode``).
    """
    return MappingProxyType(jwt.decode(token, secret, algorithms=["HS256"], options={"verify_aud": False}))


def _decode(token: str, secret: str) -> dict[str, Any]:
    try:
        claims = _verified(token, secret)
        if isinstance(exp := claims.get("exp"), int | float) and exp <= time.time():  # as PyJWT decides it
            raise jwt.ExpiredSignatureError("Signature has expired")
    except jwt.ExpiredSignatureError:
        raise AuthError(JWT_REFUSED, "JWT expired") from None
    except jwt.InvalidSignatureError:
        raise AuthError(JWT_REFUSED, "JWSError JWSInvalidSignature") from None
    except jwt.DecodeError:
        raise AuthError(JWT_REFUSED, f"Expected 3 parts in JWT; got {token.count('.') + 1}") from None
    except jwt.InvalidTokenError as exc:
        raise AuthError(JWT_REFUSED, str(exc)) from None
    return dict(claims)


__all__ = ["ANON_ROLE", "AuthError", "Identity", "bearer_token", "identify"]
