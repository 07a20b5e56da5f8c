"""``liveparams user create | login``: a person to own jobs, and the token the CLI acts as.

Both print the access token alone on stdout (``export LIVEPARAMS_USER_TOKEN=$(...)``)
and say on stderr what happened. ``create`` takes the service key (the Auth admin
API, as a backend creates users); ``login`` takes the public key, as a login page.
A token lasts as long as the project's ``jwt_expiry`` (an hour by default): sign in
again with ``login``.
"""

from __future__ import annotations

import argparse
import getpass
import os
import secrets
import sys

from liveparams.environment import PUBLIC_KEY_VARS, SERVICE_KEY_VARS, URL_VARS, first_set
from liveparams.jobs import JobError, check_url
from liveparams.users import create_user, sign_in

PASSWORD_VAR = "LIVEPARAMS_USER_PASSWORD"
MAX_EMAIL_CHARS = 255


def add_user_group(subparsers: argparse._SubParsersAction) -> None:
    """Register ``user create|login`` on the CLI's subparsers."""
    group = subparsers.add_parser("user", help="create a user or sign one in; prints the token the CLI acts as")
    actions = group.add_subparsers(dest="user_command", required=True, metavar="ACTION")

    create = actions.add_parser(
        "create",
        help="create a confirmed user (needs the service key) and print its access token",
        description="Create a confirmed user through the Auth admin API (service key: $SUPABASE_SERVICE_ROLE_KEY "
        "or $SERVICE_ROLE_KEY), sign it in (public key: $SUPABASE_ANON_KEY or $ANON_KEY) and print the access "
        "token on stdout: export LIVEPARAMS_USER_TOKEN=$(liveparams user create me@example.com)",
    )
    create.add_argument("email")
    create.add_argument(
        "--password", help=f"its password (default: ${PASSWORD_VAR}, else a random one shown once on stderr)"
    )
    _options(create)
    create.set_defaults(run=_run_create)

    login = actions.add_parser(
        "login",
        help="sign a user in with its password and print its access token",
        description="Sign in with the public key ($SUPABASE_ANON_KEY or $ANON_KEY) and print the access token: "
        "export LIVEPARAMS_USER_TOKEN=$(liveparams user login me@example.com)",
    )
    login.add_argument("email")
    login.add_argument("--password", help=f"its password (default: ${PASSWORD_VAR}, else asked for)")
    _options(login)
    login.set_defaults(run=_run_login)


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="project URL (default: $SUPABASE_URL, else $API_URL, ...)")


def _url(args: argparse.Namespace) -> str:
    url = args.url or first_set(os.environ, URL_VARS)
    if not url:
        raise JobError("no Supabase URL: pass --url or set SUPABASE_URL (or API_URL)")
    check_url(url)
    return url.rstrip("/")


def _key(names: tuple[str, ...], what: str) -> str:
    key = first_set(os.environ, names)
    if not key:
        raise JobError(f"no {what}: set {' or '.join(names[:1] + names[-1:])}")
    return key


def _email(text: str) -> str:
    email = text.strip()
    local, at, domain = email.partition("@")
    if not (local and at and "." in domain) or len(email) > MAX_EMAIL_CHARS or not email.isprintable():
        raise JobError(f"not an email address: {text!r}")
    return email


def _run_create(args: argparse.Namespace) -> int:
    email, url = _email(args.email), _url(args)
    password = args.password or os.environ.get(PASSWORD_VAR) or None
    generated = password is None
    password = password or secrets.token_urlsafe(16)
    service_key = _key(SERVICE_KEY_VARS, "service key")
    public_key = _key(PUBLIC_KEY_VARS, "public (anon) key")
    user_id = create_user(url, service_key, email, password)
    token = sign_in(url, public_key, email, password)
    shown = f"; its password is {password} (shown once)" if generated else ""
    print(f"created user {user_id} ({email}){shown}", file=sys.stderr)
    print(token)
    return 0


def _run_login(args: argparse.Namespace) -> int:
    email, url = _email(args.email), _url(args)
    password = args.password or os.environ.get(PASSWORD_VAR)
    if not password:
        if not sys.stdin.isatty():
            raise JobError(f"no password: pass --password or set {PASSWORD_VAR}")
        password = getpass.getpass(f"password for {email}: ")
    print(sign_in(url, _key(PUBLIC_KEY_VARS, "public (anon) key"), email, password))
    return 0
