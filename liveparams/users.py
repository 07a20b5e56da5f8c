"""People on a Supabase project, through its Auth API (GoTrue): create one, sign one in, find one by email.

Creating and finding users is the admin API, which takes the service key; signing in
takes the public (anon or publishable) key, as an app's login page does. The session a
sign-in returns is what the CLI acts as (kept by :mod:`liveparams._user_session`): the
server then allows exactly what the owner may do from a UI.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing

from supabase_auth import SyncGoTrueClient
from supabase_auth.types import Session

from liveparams._exceptions import CommandError
from liveparams._supabase import ClientFailure, mapped_errors

__all__ = ["create_user", "find_user_id", "sign_in"]

USERS_PER_PAGE = 1000  # GoTrue's largest admin list page


def create_user(url: str, service_key: str, email: str, password: str) -> str:
    """Create a confirmed user with ``password``; return its id."""
    with mapped_errors(_refusal(url, email)), closing(_auth(url, service_key)) as auth:
        created = auth.admin.create_user({"email": email, "password": password, "email_confirm": True})
    return created.user.id


def sign_in(url: str, public_key: str, email: str, password: str) -> Session:
    """Sign ``email`` in with its password; return the session."""
    with mapped_errors(_refusal(url)), closing(_auth(url, public_key)) as auth:
        session = auth.sign_in_with_password({"email": email, "password": password}).session
    if session is None:  # unconfirmed users get no session
        raise CommandError(f"{email} could not sign in: the address is not confirmed")
    return session


def find_user_id(url: str, service_key: str, email: str) -> str:
    """The id of the user with ``email`` (any letter case), or a `CommandError` saying there is none."""
    wanted = email.strip().lower()
    with mapped_errors(_refusal(url)), closing(_auth(url, service_key)) as auth:
        return _find(auth, wanted, email)


def _find(auth: SyncGoTrueClient, wanted: str, email: str) -> str:
    page = 1
    while True:
        users = auth.admin.list_users(page=page, per_page=USERS_PER_PAGE)
        for user in users:
            if (user.email or "").lower() == wanted:
                return user.id
        if len(users) < USERS_PER_PAGE:
            raise CommandError(f"no user with the email {email!r}: create one with `liveparams user create`")
        page += 1


def _auth(url: str, key: str) -> SyncGoTrueClient:
    return SyncGoTrueClient(
        url=f"{url}/auth/v1",
        headers={"apikey": key, "Authorization": f"Bearer {key}"},
        auto_refresh_token=False,
        persist_session=False,
    )


def _refusal(url: str, email: str = "EMAIL") -> Callable[[ClientFailure], CommandError]:
    """A failed Auth call in one sentence: Auth's words (and, for an ``email`` that has a user already, how to
    sign in as it), or that ``url`` could not be reached."""

    def to_error(failure: ClientFailure) -> CommandError:
        if failure.code == "email_exists":
            return CommandError(f"{failure.message} (Auth): sign in with `liveparams user login {email}`")
        if failure.from_auth:
            return CommandError(f"{failure.message} (Auth)")
        return CommandError(f"cannot reach {url}: {failure.kind}: {failure.message}")

    return to_error
