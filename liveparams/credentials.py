"""Trainer credentials: what a backend gives a training process instead of a project key.

Two kinds (docs/security.md):

- A **trainer credential** (the default): a Supabase Auth user made for one job through the
  admin API, with the job and the credential's id in its ``app_metadata`` (which only the
  admin API can change), and a random password. The trainer gets that password as one value
  that names its job (``LIVEPARAMS_CREDENTIAL``, :mod:`liveparams._trainer_credential`) and
  signs in with it at every start, so it works for the job's whole life, on any machine, in
  several processes at once; the agent keeps each session fresh. Access tokens are signed by
  Auth with whatever key the project uses, so this works with asymmetric JWT signing keys and
  ``sb_secret_…`` keys as well as legacy ones. A row in ``trainer_credentials`` must be live
  for RLS to accept it, and revoking deletes the Auth user, so revoking is immediate.
- A **job token** (legacy): an HS256 JWT signed with the project's JWT secret whose claims
  name one job and no user. It cannot refresh; it is revoked per job (every job token of the
  job issued so far).
"""

from __future__ import annotations

import secrets
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

from supabase import Client, ClientOptions, create_client
from supabase_auth import SyncGoTrueClient
from supabase_auth.errors import AuthError

from liveparams._exceptions import CredentialError
from liveparams._supabase import ClientFailure, mapped_errors
from liveparams._trainer_credential import TrainerSecret

__all__ = ["CredentialAdmin", "CredentialError", "TrainerCredential"]

PASSWORD_BYTES = 48  # 64 characters: under bcrypt's 72-byte limit, which GoTrue enforces
CREDENTIALS_TABLE = "trainer_credentials"
REVOKE_RPC = "liveparams_revoke_trainer_credentials"


@dataclass(frozen=True)
class TrainerCredential:
    """A trainer credential as issued: give the trainer ``secret`` (``LIVEPARAMS_CREDENTIAL``) and ``job_id``."""

    job_id: str
    credential_id: str
    auth_user_id: str
    secret: str = field(repr=False)


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
        """A new trainer credential for ``job_id``: an Auth user and its credential row, checked by one sign-in."""
        self.job(job_id)
        secret = TrainerSecret(job_id, str(uuid.uuid4()), secrets.token_urlsafe(PASSWORD_BYTES))
        user_id = str(uuid.uuid4())
        metadata = {"liveparams_job_id": job_id, "liveparams_credential_id": secret.credential_id}
        with _mapped("creating the trainer's Auth user"):
            self._client.auth.admin.create_user(
                {
                    "id": user_id,
                    "email": secret.email,
                    "password": secret.password,
                    "email_confirm": True,
                    "app_metadata": metadata,
                }
            )
        try:
            with _mapped("recording the credential"):
                row = {"id": secret.credential_id, "job_id": job_id, "auth_user_id": user_id}
                self._client.table(CREDENTIALS_TABLE).insert(row).execute()
            self._check_sign_in(secret)
        except BaseException:
            self._delete_user(user_id)
            raise
        return TrainerCredential(job_id, secret.credential_id, user_id, secret.encode())

    def _check_sign_in(self, secret: TrainerSecret) -> None:
        """Sign the trainer in once, as the agent will, and end that session: a project whose Auth refuses
        password sign-ins fails here, where the backend sees it, rather than in every training process."""
        auth = self._auth_client()  # its own client: a sign-in on the admin client would change its bearer
        with _mapped("signing the trainer in"):
            session = auth.sign_in_with_password({"email": secret.email, "password": secret.password}).session
            if session is None:
                raise CredentialError("signing the trainer in returned no session")
            auth.sign_out({"scope": "local"})

    def revoke(self, job_id: str, credential_id: str | None = None) -> list[str]:
        """Revoke one trainer credential, or (no ``credential_id``) every credential and job token of the job.

        Takes effect at once (RLS checks the row); the credentials' Auth users are deleted so that
        neither their password nor their sessions' refresh tokens work any more. Returns the ids revoked.
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
        """Revoke every credential of the job, then issue a new trainer credential.

        When the issue fails, the old credentials stay revoked: the error says so, and how to issue one.
        """
        self.revoke(job_id)
        try:
            return self.issue(job_id)
        except CredentialError as exc:
            raise CredentialError(
                f"{exc}; the job's old credentials are already revoked: issue a new one with "
                f"`liveparams credential issue {job_id}`"
            ) from None

    def list(self, job_id: str) -> list[dict[str, Any]]:
        """The job's trainer credentials, newest first: id, created_at, revoked_at (no secrets)."""
        self.job(job_id)
        with _mapped("listing credentials"):
            query = self._client.table(CREDENTIALS_TABLE).select("id, created_at, revoked_at").eq("job_id", job_id)
            return cast("list[dict[str, Any]]", query.order("created_at", desc=True).execute().data)

    def job(self, job_id: str) -> dict[str, Any]:
        """The job's row (its trainer's state included), or a `CredentialError` when there is no such job."""
        _check_job_id(job_id)
        with _mapped("reading the job"):
            found = self._client.table("local_training_jobs").select("*").eq("id", job_id).execute().data
        if not found:
            raise CredentialError(f"training job {job_id} not found")
        return cast("dict[str, Any]", found[0])

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


def _mapped(what: str) -> AbstractContextManager[None]:
    """Turn the clients' exceptions into one-line :class:`CredentialError` s (what failed, and why)."""
    return mapped_errors(partial(_refusal, what), chain=False)


def _refusal(what: str, failure: ClientFailure) -> CredentialError:
    if not failure.answered and not failure.from_auth:
        return CredentialError(f"{what}: {failure.kind} {failure.message}")
    return CredentialError(f"{what}: {failure.message or failure.code}")


def _check_job_id(job_id: str) -> None:
    _check_uuid(job_id, "job id")


def _check_uuid(value: str, what: str) -> None:
    try:
        uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        raise CredentialError(f"the {what} must be a uuid, got {value!r}") from None
