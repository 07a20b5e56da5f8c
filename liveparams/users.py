"""People on a Supabase project, through its Auth API (GoTrue): create one, sign one in, find one by email.

Creating and finding users is the admin API, which takes the service key; signing in
takes the public (anon or publishable) key, as an app's login page does. The session a
sign-in returns is what the CLI acts as (kept by :mod:`liveparams._user_session`): the
server then allows exactly what the owner may do from a UI.
"""

from __future__ import annotations

from contextlib import closing

import httpx
from supabase_auth import SyncGoTrueClient
from supabase_auth.errors import AuthError
from supabase_auth.types import Session

from liveparams._api import JobError

USERS_PER_PAGE = 1000  # GoTrue's largest admin list page


def create_user(url: str, service_key: str, email: str, password: str) -> str:
    """Create a confirmed user with ``password``; return its id."""
    try:
        with closing(_auth(url, service_key)) as auth:
            created = auth.admin.create_user({"email": email, "password": password, "email_confirm": True})
    except (AuthError, httpx.HTTPError) as exc:
        raise _explain(exc, url) from exc
    return created.user.id


def sign_in(url: str, public_key: str, email: str, password: str) -> Session:
    """Sign ``email`` in with its password; return the session."""
    try:
        with closing(_auth(url, public_key)) as auth:
            session = auth.sign_in_with_password({"email": email, "password": password}).session
    except (AuthError, httpx.HTTPError) as exc:
        raise _explain(exc, url) from exc
    if session is None:  # unconfirmed users get no session
        raise JobError(f"{email} could not sign in: the address is not confirmed")
    return session


def find_user_id(url: str, service_key: str, email: str) -> str:
    """The id of the user with ``email`` (any letter case), or a `JobError` saying there is none."""
    wanted = email.strip().lower()
    try:
        with closing(_auth(url, service_key)) as auth:
            return _find(auth, wanted, email)
    except (AuthError, httpx.HTTPError) as exc:
        raise _explain(exc, url) from exc


def _find(auth: SyncGoTrueClient, wanted: str, email: str) -> str:
    page = 1
    while True:
        users = auth.admin.list_users(page=page, per_page=USERS_PER_PAGE)
        for user in users:
            if (user.email or "").lower() == wanted:
                return user.id
        if len(users) < USERS_PER_PAGE:
            raise JobError(f"no user with the email {email!r}: create one with `liveparams user create`")
        page += 1


def _auth(url: str, key: str) -> SyncGoTrueClient:
    return SyncGoTrueClient(
        url=f"{url}/auth/v1",
        headers={"apikey": key, "Authorization": f"Bearer {key}"},
        auto_refresh_token=False,
        persist_session=False,
    )


def _explain(exc: Exception, url: str) -> JobError:
    if isinstance(exc, httpx.HTTPError):
        return JobError(f"cannot reach {url}: {exc.__class__.__name__}: {exc}")
    return JobError(f"{exc.message} (Auth)" if isinstance(exc, AuthError) else str(exc))
