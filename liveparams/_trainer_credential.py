"""The trainer credential's one value, ``LIVEPARAMS_CREDENTIAL``: what it holds and how it is read.

A trainer credential is the password of a per-job Supabase Auth user (docs/security.md). It is
handed over as one opaque value that names its job, so that a training process started with the
wrong ``JOB_ID`` is refused before anything is sent, and so that the Auth user's email can be
derived from it without a lookup::

    lpcred_<job id>_<credential id>_<password><check>

Both ids are uuids (no ``_``); the password is URL-safe base64 (it may hold ``_``, so it comes
last); ``<check>`` is 8 hex digits of a SHA-256 of what precedes it, so a value cut short or
mistyped is told apart from a revoked one (as GitHub's tokens carry a checksum).
The agent signs in with it at every start (the password grant), which is why it survives restarts,
new machines and several processes at once: each sign-in is its own Auth session.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass, field

__all__ = ["CREDENTIAL_PREFIX", "CREDENTIAL_VAR", "TRAINER_EMAIL_DOMAIN", "TrainerSecret", "parse_credential"]

CREDENTIAL_VAR = "LIVEPARAMS_CREDENTIAL"
CREDENTIAL_PREFIX = "lpcred_"
CHECK_CHARS = 8
# Trainer users never receive mail; the reserved .invalid domain (RFC 2606) says so.
TRAINER_EMAIL_DOMAIN = "liveparams.invalid"
HOW_TO_GET_ONE = "get one with `liveparams credential issue <job id>` (or `credential rotate`) where the secret key is"


@dataclass(frozen=True)
class TrainerSecret:
    """A trainer credential, read: the job it is for, its id, and the Auth user's password (a secret)."""

    job_id: str
    credential_id: str
    password: str = field(repr=False)

    @property
    def email(self) -> str:
        """The Auth user's email: one user per credential, never mailed."""
        return f"trainer-{self.credential_id}@{TRAINER_EMAIL_DOMAIN}"

    def encode(self) -> str:
        """The ``LIVEPARAMS_CREDENTIAL`` value."""
        body = f"{CREDENTIAL_PREFIX}{self.job_id}_{self.credential_id}_{self.password}"
        return body + _check(body)


def parse_credential(value: str) -> TrainerSecret:
    """Read a ``LIVEPARAMS_CREDENTIAL`` value; ``ValueError`` says what is wrong and how to get a good one,
    without repeating the value (it may be a real secret pasted in the wrong place)."""
    text = value.strip()
    body, check = text[:-CHECK_CHARS], text[-CHECK_CHARS:]
    intact = text.startswith(CREDENTIAL_PREFIX) and hmac.compare_digest(check, _check(body))
    parts = body[len(CREDENTIAL_PREFIX) :].split("_", 2) if intact else []
    if len(parts) == 3 and parts[2] and _is_uuid(parts[0]) and _is_uuid(parts[1]):
        return TrainerSecret(str(uuid.UUID(parts[0])), str(uuid.UUID(parts[1])), parts[2])
    if text.startswith(("eyJ", "sb_")):
        kind = "a JWT or project key"
    elif text.startswith(CREDENTIAL_PREFIX):
        kind = "a damaged trainer credential (cut short or pasted with something else)"
    else:
        kind = "not a trainer credential"
    raise ValueError(f"{CREDENTIAL_VAR} is {kind}; it starts with {CREDENTIAL_PREFIX}: {HOW_TO_GET_ONE}")


def _check(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()[:CHECK_CHARS]


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return "_" not in text and len(text) == 36
