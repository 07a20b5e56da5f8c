"""One-line hints for a token that cannot work: which credential is wrong, and how to get a good one.

Why: the libraries' own words ("Expected 3 parts in JWT", ``JWSInvalidSignature``, "JWT
expired") name neither the variable that holds the token nor the command that makes a good
one. What can be told from the token itself (not a JWT, expired, made for another job, the
wrong kind) is said before anything is sent; a bad signature only the server can tell, so its
refusal is translated (:func:`refusal_hint`). A token is never repeated in a hint.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from liveparams._trainer_credential import CREDENTIAL_PREFIX, CREDENTIAL_VAR, HOW_TO_GET_ONE
from liveparams.environment import TRAINER_TOKEN_VAR, USER_TOKEN_VAR, key_role, unverified_claims

__all__ = ["TRAINER_KEY", "USER_SIGN_IN", "refusal_hint", "trainer_token_problem", "user_token_problem"]

USER_SIGN_IN = "sign in with `liveparams user login EMAIL`"
TRAINER_KEY = f"{TRAINER_TOKEN_VAR} (or the key the training process was given)"
# What PostgREST (and the stack) answer for a bearer they cannot verify: its code, and the words of its message.
JWT_REFUSED_CODES = ("PGRST301", "PGRST303", "401")  # PostgREST 12+: 303 for claims (expired)


def trainer_token_problem(key: str, job_id: str) -> str | None:
    """Why the training process's fixed key (``LIVEPARAMS_TOKEN`` or a project key) cannot work for
    ``job_id``, or ``None`` when nothing is wrong that can be seen without the server."""
    where = TRAINER_KEY
    if key.startswith(CREDENTIAL_PREFIX):
        return f"{where} holds a trainer credential: set it as {CREDENTIAL_VAR} instead"
    if key.startswith("sb_"):
        return None  # an opaque project key: only the server can tell
    claims = unverified_claims(key)
    if not claims:
        return f"{where} is not a token (not a JWT): {HOW_TO_GET_ONE}"
    expired = _expired(claims)
    if expired:
        return f"{where} expired {expired}: {HOW_TO_GET_ONE}"
    if claims.get("job_id") not in (None, job_id):
        return f"{where} is a job token of job {claims.get('job_id')}, but JOB_ID is {job_id}: nothing was sent"
    if claims.get("sub") and not (claims.get("app_metadata") or {}).get("liveparams_job_id"):
        return f"{where} is a person's sign-in token, not a trainer's: {HOW_TO_GET_ONE}"
    return None


def user_token_problem(token: str) -> str | None:
    """Why ``LIVEPARAMS_USER_TOKEN`` (or ``--user-token``) cannot act as a person, or ``None``."""
    where = f"{USER_TOKEN_VAR} (or --user-token)"
    fix = f"unset it to use your stored sign-in, or {USER_SIGN_IN}"
    if token.startswith(CREDENTIAL_PREFIX) or unverified_claims(token).get("job_id"):
        return f"{where} holds a trainer's credential, which never acts as a person: {fix}"
    if token.startswith("sb_") or key_role(token) in ("anon", "service_role"):
        return f"{where} holds a project key, not a person's sign-in token: {fix}"
    claims = unverified_claims(token)
    if not claims:
        return f"{where} is not a sign-in token (not a JWT): {fix}"
    if (claims.get("app_metadata") or {}).get("liveparams_job_id"):
        return f"{where} is a trainer's access token, which never acts as a person: {fix}"
    expired = _expired(claims)
    if expired:
        return f"{where} expired {expired}: {fix}"
    return None


def refusal_hint(code: str | None, message: str, which: str, fix: str) -> str | None:
    """The hint for the server's refusal of a bearer token (``PGRST301`` or a 401), or ``None`` for
    any other answer. ``which`` names the credential, ``fix`` says how to get a good one."""
    if code not in JWT_REFUSED_CODES:
        return None
    if "expired" in message.lower():
        said = "has expired"
    elif code == "PGRST301":  # "JWSError JWSInvalidSignature", "No suitable key or wrong key type", ...
        said = "is not signed by this project (another project or stack?)"
    else:
        said = "was refused by the server"
    return f"{which} {said}: {fix}"


def _expired(claims: dict[str, Any]) -> str | None:
    """``"at 2026-12-06 22:00 UTC"`` when the claims' ``exp`` has passed, else ``None``."""
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or exp > time.time():
        return None
    return f"at {datetime.fromtimestamp(exp, tz=timezone.utc):%Y-%m-%d %H:%M} UTC"
