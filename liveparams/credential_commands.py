"""``liveparams credential issue | rotate | revoke | list``, and ``liveparams token`` (= ``credential issue``).

What a backend runs to give a training process its credential, and to take it away
(docs/security.md). Needs the project URL and its secret key (``sb_secret_…`` or the
legacy service_role key); a legacy job token needs the JWT secret instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from liveparams.credentials import CredentialAdmin, CredentialError, TrainerCredential
from liveparams.environment import JWT_SECRET_VARS, SERVICE_KEY_VARS, URL_VARS, first_set
from liveparams.tokens import DEFAULT_TTL_SECONDS, mint_job_token, parse_ttl

__all__ = ["add_credential_commands"]


def add_credential_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``credential`` (issue, rotate, revoke, list) and ``token`` on the CLI's subparsers."""
    credential = subparsers.add_parser(
        "credential",
        help="issue, rotate, revoke or list the trainer credentials of a job",
        description="A training process gets a credential that can read one job and record outcomes on it.",
    )
    actions = credential.add_subparsers(dest="action", required=True, metavar="ACTION")
    _issue_options(actions.add_parser("issue", help="issue a trainer credential for a job"))

    rotate = actions.add_parser("rotate", help="revoke every credential of a job and issue a new trainer session")
    _job_options(rotate)
    rotate.set_defaults(run=_run_rotate)

    revoke = actions.add_parser(
        "revoke", help="revoke a job's trainer credentials at once (all of them, or one with --credential)"
    )
    _job_options(revoke)
    revoke.add_argument("--credential", metavar="ID", help="revoke only this trainer session (its credential id)")
    revoke.set_defaults(run=_run_revoke)

    listing = actions.add_parser("list", help="list a job's trainer sessions (no secrets)")
    _job_options(listing)
    listing.set_defaults(run=_run_list)

    _issue_options(subparsers.add_parser("token", help="issue a trainer credential (same as `credential issue`)"))


def _job_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_id", help="the job's uuid")
    parser.add_argument("--url", help=f"project URL (default: ${', else $'.join(URL_VARS)})")
    parser.add_argument(
        "--secret-key", help=f"the project's secret key (default: ${', else $'.join(SERVICE_KEY_VARS)})"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _issue_options(parser: argparse.ArgumentParser) -> None:
    _job_options(parser)
    parser.add_argument(
        "--legacy-hs256",
        action="store_true",
        help="mint a job token with the JWT secret instead (no refresh; only on projects that still have the secret)",
    )
    parser.add_argument(
        "--ttl", default=str(DEFAULT_TTL_SECONDS), help="job token lifetime, e.g. 3600, 30m, 12h, 7d (default: 7d)"
    )
    parser.add_argument("--jwt-secret", help="the JWT secret for --legacy-hs256 (default: $SUPABASE_JWT_SECRET)")
    parser.set_defaults(run=_run_issue)


def _first(given: str | None, names: tuple[str, ...]) -> str | None:
    return given or first_set(os.environ, names) or None


def _admin(args: argparse.Namespace) -> CredentialAdmin:
    url = _first(args.url, URL_VARS)
    key = _first(args.secret_key, SERVICE_KEY_VARS)
    if not url:
        raise CredentialError("no Supabase URL: pass --url or set SUPABASE_URL")
    if not key:
        raise CredentialError("no secret key: pass --secret-key or set SUPABASE_SECRET_KEY")
    return CredentialAdmin(url, key)


def _run_issue(args: argparse.Namespace) -> int:
    if args.legacy_hs256:
        secret = _first(args.jwt_secret, JWT_SECRET_VARS)
        if not secret:
            raise CredentialError("no JWT secret: pass --jwt-secret or set SUPABASE_JWT_SECRET")
        try:
            ttl = parse_ttl(args.ttl)
            token = mint_job_token(args.job_id, secret, ttl)
        except ValueError as exc:
            raise CredentialError(str(exc)) from exc
        print(json.dumps({"job_id": args.job_id, "token": token, "expires_in": ttl}) if args.json else token)
        return 0
    if args.jwt_secret or args.ttl != str(DEFAULT_TTL_SECONDS):
        raise CredentialError("--ttl and --jwt-secret apply to --legacy-hs256 job tokens only")
    _print_session(_admin(args).issue(args.job_id), args.json)
    return 0


def _run_rotate(args: argparse.Namespace) -> int:
    _print_session(_admin(args).rotate(args.job_id), args.json)
    return 0


def _print_session(credential: TrainerCredential, as_json: bool) -> None:
    if as_json:
        print(
            json.dumps(
                {
                    "job_id": credential.job_id,
                    "credential_id": credential.credential_id,
                    "refresh_token": credential.refresh_token,
                }
            )
        )
        return
    print(
        f"# trainer session {credential.credential_id}: give these to the training process only "
        "(the refresh token is a secret; one process per credential)",
        file=sys.stderr,
    )
    print(f"JOB_ID={credential.job_id}")
    print(f"LIVEPARAMS_REFRESH_TOKEN={credential.refresh_token}")


def _run_revoke(args: argparse.Namespace) -> int:
    revoked = _admin(args).revoke(args.job_id, args.credential)
    if args.json:
        print(json.dumps({"job_id": args.job_id, "revoked_sessions": revoked, "job_tokens": args.credential is None}))
    elif args.credential is None:
        print(f"revoked {len(revoked)} trainer session(s) and every job token of job {args.job_id} issued until now")
    else:
        print(f"revoked trainer session {args.credential}" if revoked else "that session was already revoked")
    return 0


def _run_list(args: argparse.Namespace) -> int:
    rows = _admin(args).list(args.job_id)
    if args.json:
        print(json.dumps(rows))
        return 0
    for row in rows:
        state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "live"
        print(f"{row['id']}  issued {row['created_at']}  {state}")
    if not rows:
        print(f"job {args.job_id} has no trainer sessions")
    return 0
