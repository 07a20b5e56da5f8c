"""``liveparams user create | login | logout | token``: a person to own jobs, and their kept sign-in.

``create`` and ``login`` sign the person in and keep the session (``liveparams._user_session``:
a 0600 file under the user's config folder, refreshed as needed), as ``gh auth login`` does;
every command that acts as a person uses it from then on, for as long as the session lives.
``logout`` ends it. ``token`` prints a fresh access token for scripts. ``create`` takes the
service key (the Auth admin API, as a backend creates users); ``login`` takes the public key,
as a login page.
"""

from __future__ import annotations

import argparse
import getpass
import os
import secrets
import sys

from supabase_auth.types import Session

from liveparams._client_config import check_url
from liveparams._exceptions import CommandError
from liveparams._user_session import SignIn, keep
from liveparams.environment import PUBLIC_KEY_VARS, SERVICE_KEY_VARS, URL_VARS, first_set
from liveparams.users import create_user, sign_in

__all__ = ["add_user_group"]

PASSWORD_VAR = "LIVEPARAMS_USER_PASSWORD"
MAX_EMAIL_CHARS = 255


def add_user_group(subparsers: argparse._SubParsersAction) -> None:
    """Register ``user create|login|logout|token`` on the CLI's subparsers."""
    group = subparsers.add_parser("user", help="create a user, sign in or out; commands then act as you")
    actions = group.add_subparsers(dest="user_command", required=True, metavar="ACTION")

    create = actions.add_parser(
        "create",
        help="create a confirmed user (needs the service key) and sign it in",
        description="Create a confirmed user through the Auth admin API (service key: $SUPABASE_SERVICE_ROLE_KEY "
        "or $SERVICE_ROLE_KEY), sign it in (public key: $SUPABASE_ANON_KEY or $ANON_KEY) and keep the session, "
        f"as `user login` does. {KEPT}",
    )
    create.add_argument("email")
    create.add_argument(
        "--password", help=f"its password (default: ${PASSWORD_VAR}, else a random one shown once on stderr)"
    )
    _options(create)
    create.set_defaults(run=_run_create)

    login = actions.add_parser(
        "login",
        help="sign in with your password; commands then act as you",
        description=f"Sign in with the public key ($SUPABASE_ANON_KEY or $ANON_KEY). {KEPT}",
    )
    login.add_argument("email")
    login.add_argument("--password", help=f"its password (default: ${PASSWORD_VAR}, else asked for)")
    _options(login)
    login.set_defaults(run=_run_login)

    logout = actions.add_parser(
        "logout", help="sign out: end the kept session here and at Auth", description="Forget the session kept "
        "for the project and end it at Auth, so its refresh token no longer works.",
    )  # fmt: skip
    _options(logout)
    logout.set_defaults(run=_run_logout)

    token = actions.add_parser(
        "token",
        help="print your access token (refreshed when due), for scripts",
        description="Print the kept session's access token on stdout, refreshed first when it is due, e.g. "
        'curl -H "Authorization: Bearer $(liveparams user token)" ... It lasts the project\'s jwt_expiry.',
    )
    _options(token)
    token.set_defaults(run=_run_token)


KEPT = (
    "The session is kept in $XDG_CONFIG_HOME/liveparams/session.json (~/.config/liveparams/session.json), "
    "readable by you only, and refreshed as needed: `set`, `watch` and `job` then act as you until "
    "`liveparams user logout`. $LIVEPARAMS_USER_TOKEN, when set, is used instead."
)


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="project URL (default: $SUPABASE_URL, else $API_URL, ...)")


def _url(args: argparse.Namespace) -> str:
    url = args.url or first_set(os.environ, URL_VARS)
    if not url:
        raise CommandError("no Supabase URL: pass --url or set SUPABASE_URL (or API_URL)")
    check_url(url)
    return url.rstrip("/")


def _key(names: tuple[str, ...], what: str) -> str:
    key = first_set(os.environ, names)
    if not key:
        raise CommandError(f"no {what}: set {' or '.join(names[:1] + names[-1:])}")
    return key


def _email(text: str) -> str:
    email = text.strip()
    local, at, domain = email.partition("@")
    if not (local and at and "." in domain) or len(email) > MAX_EMAIL_CHARS or not email.isprintable():
        raise CommandError(f"not an email address: {text!r}")
    return email


def _password(text: str) -> str:
    """``text`` when it can be sent: Auth takes UTF-8, which a lone surrogate (half a character, from a
    mangled shell argument or variable) has no encoding in."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise CommandError("the password holds a broken character (a lone surrogate): retype it") from None
    return text


def _run_create(args: argparse.Namespace) -> int:
    email, url = _email(args.email), _url(args)
    password = args.password or os.environ.get(PASSWORD_VAR) or None
    generated = password is None
    password = _password(password) if password else secrets.token_urlsafe(16)
    service_key = _key(SERVICE_KEY_VARS, "service key")
    public_key = _key(PUBLIC_KEY_VARS, "public (anon) key")
    user_id = create_user(url, service_key, email, password)
    shown = f"; its password is {password} (shown once)" if generated else ""
    print(f"created user {user_id} ({email}){shown}", file=sys.stderr)
    _keep(url, public_key, email, sign_in(url, public_key, email, password))
    return 0


def _run_login(args: argparse.Namespace) -> int:
    email, url = _email(args.email), _url(args)
    password = args.password or os.environ.get(PASSWORD_VAR)
    if not password:
        if not sys.stdin.isatty():
            raise CommandError(f"no password: pass --password or set {PASSWORD_VAR}")
        password = getpass.getpass(f"password for {email}: ")
    password = _password(password)
    public_key = _key(PUBLIC_KEY_VARS, "public (anon) key")
    _keep(url, public_key, email, sign_in(url, public_key, email, password))
    return 0


def _keep(url: str, public_key: str, email: str, session: Session) -> None:
    path = keep(url, public_key, email, session)
    print(f"signed in as {email} on {url}; the session is kept in {path} (`liveparams user logout` ends it)",
          file=sys.stderr)  # fmt: skip


def _run_logout(args: argparse.Namespace) -> int:
    url = _url(args)
    kept = SignIn.load(url)
    if kept is None:
        print(f"not signed in on {url}", file=sys.stderr)
        return 0
    kept.log_out()
    print(f"signed out {kept.email} on {url}", file=sys.stderr)
    return 0


def _run_token(args: argparse.Namespace) -> int:
    url = _url(args)
    kept = SignIn.load(url)
    if kept is None:
        raise CommandError(f"not signed in on {url}: sign in with `liveparams user login EMAIL`")
    print(kept.access_token())  # a `SignInError` says why it cannot
    return 0
