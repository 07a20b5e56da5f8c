"""Where the API is and who is asking: a `ClientConfig` from the options and the environment.

Which credential acts, in this order: a signed-in user (``--user-token``/``LIVEPARAMS_USER_TOKEN``,
else the sign-in ``liveparams user login`` keeps), with the public key as ``apikey``: the
server allows what that person may do as a job's owner; else a service key: every job.
Also the checks every command makes of what it was given before anything is sent: the URL
(:func:`check_url`) and the job id (:func:`check_job_id`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from liveparams._exceptions import CommandError
from liveparams._token_hints import user_token_problem
from liveparams._user_session import SignIn
from liveparams.environment import (
    PUBLIC_KEY_VARS,
    SERVICE_KEY_VARS,
    URL_VARS,
    USER_TOKEN_VAR,
    first_set,
    is_header_safe,
    key_role,
    unverified_claims,
)

__all__ = ["ClientConfig", "check_job_id", "check_url"]


@dataclass(frozen=True)
class ClientConfig:
    """Where the API is and who is asking.

    Args:
        url (`str`): the project URL, e.g. ``http://127.0.0.1:54321``.
        key (`str`): the API key sent as ``apikey`` (anon/publishable, or the service role key).
        access_token (`str`, *optional*): a signed-in user's JWT; requests then act as that user,
            which is how a UI acts for a job's owner. Without it, the key's role acts.
        sign_in (`SignIn`, *optional*): the kept sign-in ``access_token`` came from; :func:`connect`
            keeps a client's token fresh from it, for commands that run longer than a token lives.
    """

    url: str
    key: str
    access_token: str | None = None
    sign_in: SignIn | None = field(default=None, compare=False)

    def __repr__(self) -> str:
        return f"ClientConfig(url={self.url!r}, key='***', access_token={'***' if self.access_token else None})"

    @property
    def acting_as(self) -> str:
        """Who the server sees, in words: the signed-in user (by email) or the key's role."""
        if self.access_token:
            claims = unverified_claims(self.access_token)
            return f"as {claims.get('email') or claims.get('sub') or 'a signed-in user'}"
        return "with the service role key (every job)" if self.is_service else "with a project key"

    @property
    def is_service(self) -> bool:
        """Whether the key is a service key: a ``service_role`` JWT or an ``sb_secret_`` key."""
        return self.access_token is None and key_role(self.key) == "service_role"

    @classmethod
    def from_env(
        cls,
        url: str | None = None,
        key: str | None = None,
        access_token: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> ClientConfig:
        """Fill what was not given from the environment (the names and order of ``liveparams/environment.py``).

        A signed-in user's token (``LIVEPARAMS_USER_TOKEN``), else the sign-in kept by ``liveparams user
        login`` for this URL, wins over a service key: with it the server checks what the owner may do,
        as a UI's requests are checked. Without one (or with a service key passed as ``key``), a service
        key acts on every job. The anon key alone sees no job (RLS), so it is refused here, wherever it
        came from, rather than answered with "not found" or "permission denied" later. A token that
        cannot work is refused with a hint.
        """
        env = os.environ if environ is None else environ
        url = url or first_set(env, URL_VARS)
        access_token = access_token or first_set(env, (USER_TOKEN_VAR,)) or None
        if not url:
            raise CommandError(f"no Supabase URL: pass --url or set {' or '.join(URL_VARS[:2])} (or API_URL)")
        check_url(url)
        url = url.rstrip("/")
        if access_token:
            problem = user_token_problem(access_token) if is_header_safe(access_token) else None
            if problem:
                raise CommandError(problem)
        kept = None if access_token or key_role(key or "") == "service_role" else SignIn.load(url, env)
        if kept is not None:
            access_token = kept.access_token()  # refreshed when due; a `SignInError` says why not
            key = key or first_set(env, PUBLIC_KEY_VARS) or kept.api_key
        if access_token:
            key = key or first_set(env, PUBLIC_KEY_VARS) or first_set(env, SERVICE_KEY_VARS)
        else:
            key = key or first_set(env, SERVICE_KEY_VARS) or first_set(env, ("SUPABASE_KEY",))
            if key_role(key) == "anon" if key else first_set(env, PUBLIC_KEY_VARS):  # --key or SUPABASE_KEY alike
                raise CommandError(
                    "the anon key alone sees no job: sign in (`liveparams user login EMAIL`, or set "
                    f"{USER_TOKEN_VAR}) or use a service key"
                )
        if not key:
            raise CommandError(
                "no API key: sign in (`liveparams user login EMAIL`, with SUPABASE_ANON_KEY or ANON_KEY), "
                "or set SUPABASE_SERVICE_ROLE_KEY (or SERVICE_ROLE_KEY); or pass --key"
            )
        for name, value in (("key", key), ("user token", access_token)):
            if value is not None and not is_header_safe(value):
                raise CommandError(f"the {name} is not a key: it holds spaces or characters no key has")
        return cls(url=url, key=key, access_token=access_token, sign_in=kept)


def check_url(url: str) -> None:
    """Refuse what is not an http(s) URL of a host, in one sentence."""
    parsed = urlsplit(url) if is_header_safe(url) else None
    try:
        valid = parsed is not None and parsed.scheme in ("http", "https") and bool(parsed.hostname) and parsed.port != 0
    except ValueError:  # a port that is not a number
        valid = False
    if not valid:
        raise CommandError(f"not a project URL: {url!r} (expected e.g. http://127.0.0.1:54321)")


def check_job_id(job_id: str) -> str:
    """The job id in canonical form, or a `CommandError` that says what a job id looks like."""
    try:
        return str(uuid.UUID(job_id))
    except (ValueError, TypeError, AttributeError):
        raise CommandError(
            f"not a job id: {job_id!r} (a job id is a uuid such as 3f0c5a4e-9b1d-4c2e-8f00-5a6b7c8d9e0f; "
            "`liveparams job list` shows them)"
        ) from None
