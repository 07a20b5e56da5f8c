"""Trainer credentials: what a backend gives a training process instead of a project key.

Two kinds (docs/security.md):

- A **trainer session** (the default): a Supabase Auth user made for one job through the
  admin API, with the job and the credential's id in its ``app_metadata`` (which only the
  admin API can change). The backend signs it in once with a random password it then
  forgets, and hands the trainer only the refresh token; the agent keeps the session
  fresh. Access tokens are signed by Auth with whatever key the project uses, so this
  works with asymmetric JWT signing keys and ``sb_secret_…`` keys as well as legacy ones.
  A row in ``trainer_credentials`` must be live for RLS to accept it, so revoking is immediate.
- A **job token** (legacy): an HS256 JWT signed with the project's JWT secret whose claims
  name one job and no user. It cannot refresh; it is revoked per job (every job token of the
  job issued so far).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
from postgrest.exceptions import APIError
from supabase import Client, ClientOptions, create_client
from supabase_auth import SyncGoTrueClient
from supabase_auth.errors import AuthError

__all__ = ["CredentialAdmin", "CredentialError", "TrainerCredential"]

# Trainer users never receive mail; the reserved .invalid domain (RFC 2606) says so.
TRAINER_EMAIL_DOMAIN = "liveparams.invalid"
PASSWORD_BYTES = 48  # 64 characters; used once, in memory, then forgotten
CREDENTIALS_TABLE = "trainer_credentials"
REVOKE_RPC = "liveparams_revoke_trainer_credentials"


class CredentialError(Exception):
    """A credential could not be issued, listed or revoked; the message is one sentence without secrets."""


@dataclass(frozen=True)
class TrainerCredential:
    """A trainer session as issued: give the trainer ``refresh_token`` (a secret) and ``job_id``."""

    job_id: str
    credential_id: str
    auth_user_id: str
    refresh_token: str = field(repr=False)


class CredentialAdmin:
    """Issues, lists and revokes the trainer credentials of jobs, as a backend holding the secret key.

    Args:
        url (`str`): the project URL.
        secret_key (`str`): ``sb_secret_…`` or the legacy service_role key; never logged or shown.
    """

    def __init__(self, url: str, secret_key: str) -> None:
        self._url = url.rstrip("/")
        self._key = secret_key
        options = ClientOptions(auto_refresh_token=False, persist_session=False, postgrest_client_retry=False)
        self._client: Client = create_client(self._url, secret_key, options)

    def issue(self, job_id: str) -> TrainerCredential:
        """A new trainer session for ``job_id``: an Auth user, its credential row, and a refresh token."""
        _check_job_id(job_id)
        self._require_job(job_id)
        credential_id, user_id = str(uuid.uuid4()), str(uuid.uuid4())
        email, password = f"trainer-{credential_id}@{TRAINER_EMAIL_DOMAIN}", secrets.token_urlsafe(PASSWORD_BYTES)
        metadata = {"liveparams_job_id": job_id, "liveparams_credential_id": credential_id}
        with _mapped("creating the trainer's Auth user"):
            self._client.auth.admin.create_user(
                {"id": user_id, "email": email, "password": password, "email_confirm": True, "app_metadata": metadata}
            )
        try:
            with _mapped("recording the credential"):
                row = {"id": credential_id, "job_id": job_id, "auth_user_id": user_id}
                self._client.table(CREDENTIALS_TABLE).insert(row).execute()
            # Its own client: a sign-in on the admin client would make its later calls carry the trainer's token.
            with _mapped("signing the trainer in"):
                session = self._auth_client().sign_in_with_password({"email": email, "password": password}).session
            if session is None:
                raise CredentialError("signing the trainer in returned no session")
        except BaseException:
            self._delete_user(user_id)
            raise
        return TrainerCredential(job_id, credential_id, user_id, session.refresh_token)

    def revoke(self, job_id: str, credential_id: str | None = None) -> list[str]:
        """Revoke one trainer session, or (no ``credential_id``) every session and job token of the job.

        Takes effect at once (RLS checks the row); the sessions' Auth users are deleted so that
        their refresh tokens stop working too. Returns the ids of the sessions revoked.
        """
        _check_job_id(job_id)
        if credential_id is not None:
            _check_uuid(credential_id, "credential id")
        with _mapped("revoking"):
            args = {"p_job_id": job_id, "p_credential_id": credential_id}
            rows: list[dict[str, Any]] = cast("list[dict[str, Any]]", self._client.rpc(REVOKE_RPC, args).execute().data)
        for row in rows:
            if row.get("auth_user_id"):
                self._delete_user(str(row["auth_user_id"]))
        return [str(row["credential_id"]) for row in rows]

    def rotate(self, job_id: str) -> TrainerCredential:
        """Revoke every credential of the job, then issue a new trainer session."""
        self.revoke(job_id)
        return self.issue(job_id)

    def list(self, job_id: str) -> list[dict[str, Any]]:
        """The job's trainer sessions, newest first: id, created_at, revoked_at (no secrets)."""
        _check_job_id(job_id)
        self._require_job(job_id)
        with _mapped("listing credentials"):
            query = self._client.table(CREDENTIALS_TABLE).select("id, created_at, revoked_at").eq("job_id", job_id)
            return cast("list[dict[str, Any]]", query.order("created_at", desc=True).execute().data)

    def _require_job(self, job_id: str) -> None:
        with _mapped("reading the job"):
            found = self._client.table("local_training_jobs").select("id").eq("id", job_id).execute().data
        if not found:
            raise CredentialError(f"training job {job_id} not found")

    def _delete_user(self, user_id: str) -> None:
        try:
            self._client.auth.admin.delete_user(user_id)
        except AuthError as exc:
            if exc.code != "user_not_found":
                raise CredentialError(f"deleting the trainer's Auth user {user_id}: {exc.message}") from None

    def _auth_client(self) -> SyncGoTrueClient:
        return SyncGoTrueClient(
            url=f"{self._url}/auth/v1", headers={"apikey": self._key}, auto_refresh_token=False, persist_session=False
        )


@contextmanager
def _mapped(what: str) -> Iterator[None]:
    """Turn the clients' exceptions into one-line :class:`CredentialError` s (what failed, and why)."""
    try:
        yield
    except APIError as exc:
        raise CredentialError(f"{what}: {exc.message or exc.code}") from None
    except AuthError as exc:
        raise CredentialError(f"{what}: {exc.message}") from None
    except httpx.HTTPError as exc:
        raise CredentialError(f"{what}: {type(exc).__name__} {exc}") from None


def _check_job_id(job_id: str) -> None:
    _check_uuid(job_id, "job id")


def _check_uuid(value: str, what: str) -> None:
    try:
        uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        raise CredentialError(f"the {what} must be a uuid, got {value!r}") from None
