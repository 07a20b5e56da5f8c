"""Who a socket or channel acts as: API keys and JWTs turned into claims.

Mirrors the real server's checks: HS256 signed with the project's JWT secret,
``role`` and ``exp`` required; ``sb_publishable_…`` / ``sb_secret_…`` keys stand
for the anon / service_role claims.
"""

from __future__ import annotations

import time

import jwt

from liveparams_stack import keys
from liveparams_stack.identity import AuthError, Identity
from liveparams_stack.keys import is_opaque_key

__all__ = ["AuthError", "Identity", "is_opaque_key", "verify"]


def verify(token: str, jwt_secret: str) -> Identity:
    """Return the identity behind ``token`` or raise `AuthError`."""
    if is_opaque_key(token):
        role = keys.OPAQUE_KEY_ROLES.get(token)
        if role is None:
            raise AuthError("InvalidJWTToken", "Invalid API key")
        return Identity({"role": role})
    try:
        claims = jwt.decode(token, jwt_secret, algorithms=["HS256"], options={"verify_aud": False})
    except jwt.ExpiredSignatureError:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp", 0)
        raise AuthError("InvalidJWTToken", f"Token has expired {int(time.time() - exp)} seconds ago") from None
    except jwt.DecodeError:
        raise AuthError("MalformedJWT", "The token provided is not a valid JWT") from None
    except jwt.InvalidTokenError as exc:
        raise AuthError("InvalidJWTToken", str(exc)) from None
    if "role" not in claims or "exp" not in claims:
        raise AuthError("InvalidJWTToken", "Fields `role` and `exp` are required in JWT")
    return Identity(claims)
