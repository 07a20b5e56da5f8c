"""The options every command that talks to a project shares, and how they become a `ClientConfig`.

Which credential acts, in this order: a signed-in user (``--user-token``/``LIVEPARAMS_USER_TOKEN``,
else the sign-in ``liveparams user login`` keeps), with the public key as ``apikey``: the
server allows what that person may do as a job's owner; else a service key: every
job. Each command's ``--help`` says which one it needs.
"""

from __future__ import annotations

import argparse

from liveparams._client_config import ClientConfig

__all__ = ["CREDENTIALS_HELP", "add_client_options", "client_config"]

CREDENTIALS_HELP = (
    "credentials: the signed-in user ($LIVEPARAMS_USER_TOKEN, else the sign-in kept by `liveparams user login`, "
    "with $SUPABASE_ANON_KEY or $ANON_KEY) acts as that user; else a service key "
    "($SUPABASE_SERVICE_ROLE_KEY or $SERVICE_ROLE_KEY, or --key) acts on every job. URL: $SUPABASE_URL or $API_URL. "
    'All names: docs/configuration.md; from the local stack: set -a; eval "$(liveparams stack status -o env)"; set +a'
)


def add_client_options(parser: argparse.ArgumentParser, as_json: bool = True) -> None:
    """``--url``, ``--key``, ``--user-token`` (and ``--json``) with the credentials rule in the epilog."""
    parser.add_argument("--url", help="project URL (default: $SUPABASE_URL, else $API_URL, ...)")
    parser.add_argument("--key", help="API key sent as apikey (default: see below)")
    parser.add_argument(
        "--user-token", help="a signed-in user's access token (default: $LIVEPARAMS_USER_TOKEN, else your kept sign-in)"
    )
    if as_json:
        parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.epilog = "\n\n".join(filter(None, [parser.epilog, CREDENTIALS_HELP]))


def client_config(args: argparse.Namespace) -> ClientConfig:
    """The `ClientConfig` the options and the environment give (`CommandError` says what is missing)."""
    return ClientConfig.from_env(args.url, args.key, args.user_token)
