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
import uuid

from liveparams._confirm import add_yes_option, confirmed
from liveparams._trainer_credential import CREDENTIAL_VAR
from liveparams._views import trainer_attachment
from liveparams.credentials import CredentialAdmin, CredentialError, TrainerCredential
from liveparams.environment import JWT_SECRET_VARS, SERVICE_KEY_VARS, TRAINER_TOKEN_VAR, URL_VARS, first_set
from liveparams.tokens import DEFAULT_TTL_SECONDS, mint_job_token, parse_ttl

__all__ = ["add_credential_commands"]

ISSUE_DESCRIPTION = (
    f"Make a trainer credential for JOB_ID and print JOB_ID=... and {CREDENTIAL_VAR}=... for the "
    "training process (a secret: put it where WANDB_API_KEY or HF_TOKEN go). It works for the job's whole life: "
    "every start, restart or new machine signs in with it, and several processes may share it. It reads that one "
    "job and records outcomes on it, nothing else, until `liveparams credential revoke` or `rotate`. Needs the "
    "project URL and its secret key."
)
ISSUE_EPILOG = (
    'example (backend): set -a; eval "$(liveparams credential issue "$JOB_ID")"; set +a '
    f"(with --legacy-hs256 the same line sets {TRAINER_TOKEN_VAR} instead)"
)
ASKS = "On a terminal it says what it revokes and asks first; elsewhere it needs --yes."


def add_credential_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``credential`` (issue, rotate, revoke, list) and ``token`` on the CLI's subparsers."""
    credential = subparsers.add_parser(
        "credential",
        help="issue, rotate, revoke or list the trainer credentials of a job",
        description="A training process gets a credential that can read one job and record outcomes on it. "
        "Run these where the project's secret key is (a backend, CI), never on the training machine.",
    )
    actions = credential.add_subparsers(dest="action", required=True, metavar="ACTION")
    _issue_options(
        actions.add_parser(
            "issue", help="issue a trainer credential for a job", description=ISSUE_DESCRIPTION, epilog=ISSUE_EPILOG
        )
    )

    rotate = actions.add_parser(
        "rotate",
        help="revoke every credential of a job and issue a new one",
        description="Revoke every trainer credential and job token of the job (running trainers stop receiving "
        "updates at once; training goes on), then print a new LIVEPARAMS_CREDENTIAL, as `credential issue` does. "
        + ASKS,
    )
    _job_options(rotate)
    add_yes_option(rotate, "rotate")
    rotate.set_defaults(run=_run_rotate)

    revoke = actions.add_parser(
        "revoke",
        help="revoke a job's trainer credentials at once (all of them, or one with --credential)",
        description="Refuse the credentials from now on: RLS at once, and their Auth users are deleted, so "
        "neither the credential nor a session signed in with it works any more. Training goes on without updates. "
        + ASKS,
    )
    _job_options(revoke)
    add_yes_option(revoke, "revoke")
    revoke.add_argument("--credential", metavar="ID", help="revoke only this credential (its id, see `list`)")
    revoke.set_defaults(run=_run_revoke)

    listing = actions.add_parser("list", help="list a job's trainer credentials (ids and dates, no secrets)")
    _job_options(listing)
    listing.set_defaults(run=_run_list)

    _issue_options(
        subparsers.add_parser(
            "token",
            help="issue a trainer credential (same as `credential issue`)",
            description=ISSUE_DESCRIPTION,
            epilog=ISSUE_EPILOG,
        )
    )


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
        help=f"mint a job token with the JWT secret instead and print JOB_ID=... and {TRAINER_TOKEN_VAR}=... "
        "(no refresh; only on projects that still have the secret)",
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
        if args.json:
            print(json.dumps({"job_id": args.job_id, "token": token, "expires_in": ttl}))
        else:
            _print_for_trainer(f"job token of job {args.job_id}, valid {ttl} s", args.job_id, TRAINER_TOKEN_VAR, token)
        return 0
    if args.jwt_secret or args.ttl != str(DEFAULT_TTL_SECONDS):
        raise CredentialError("--ttl and --jwt-secret apply to --legacy-hs256 job tokens only")
    _print_credential(_admin(args).issue(args.job_id), args.json)
    return 0


def _run_rotate(args: argparse.Namespace) -> int:
    admin = _admin(args)
    if not _revoking_confirmed(admin, args, None, "rotate"):
        return 1
    _print_credential(admin.rotate(args.job_id), args.json)
    return 0


def _print_credential(credential: TrainerCredential, as_json: bool) -> None:
    if as_json:
        fields = {"job_id": credential.job_id, "credential_id": credential.credential_id}
        print(json.dumps({**fields, "credential": credential.secret}))
        return
    note = f"trainer credential {credential.credential_id} (every process of the job may use it)"
    _print_for_trainer(note, credential.job_id, CREDENTIAL_VAR, credential.secret)


def _print_for_trainer(note: str, job_id: str, variable: str, secret: str) -> None:
    """``JOB_ID=...`` and ``variable=secret`` on stdout, which `set -a; eval "$(...)"; set +a` loads; ``note``
    on stderr."""
    print(f"# {note}: give these to the training process only ({variable} is a secret)", file=sys.stderr)
    print(f"JOB_ID={job_id}")
    print(f"{variable}={secret}")


def _revoking_confirmed(admin: CredentialAdmin, args: argparse.Namespace, credential: str | None, doing: str) -> bool:
    """Whether to revoke ``credential`` of the job (all of them when None) for ``doing`` (`revoke`, `rotate`):
    ``--yes``, else the person's answer on a terminal to what it takes away (how many live credentials of which
    job, and whether a trainer is attached now)."""
    if args.yes:
        return True
    live = [row["id"] for row in admin.list(args.job_id) if not row["revoked_at"]]
    if credential is not None:
        try:
            credential = str(uuid.UUID(credential))
        except ValueError:
            return True  # `revoke` refuses it, saying why
        if credential not in live:  # already revoked, or not the job's: nothing to take away
            return True
        what = f"trainer credential {credential} of job {args.job_id}"
    else:
        what = f"{len(live)} live trainer credential(s) of job {args.job_id} and every job token of it issued until now"
    then = ", then issues a new trainer credential" if doing == "rotate" else ""
    trainer = trainer_attachment(admin.job(args.job_id)).detail
    return confirmed(
        warning=f"This revokes {what}{then}.\nTrainer now: {trainer}. A trainer using {'it' if credential else 'them'} "
        "stops receiving updates at once and for good (training goes on).",
        question=f"{doing.capitalize()}?",
        refusal=f"not revoking {what}",
        declined="Nothing revoked.",
    )


def _run_revoke(args: argparse.Namespace) -> int:
    admin = _admin(args)
    if not _revoking_confirmed(admin, args, args.credential, "revoke"):
        return 1
    revoked = admin.revoke(args.job_id, args.credential)
    if args.json:
        job_tokens = args.credential is None
        print(json.dumps({"job_id": args.job_id, "revoked_credentials": revoked, "job_tokens": job_tokens}))
    elif args.credential is None:
        print(f"revoked {len(revoked)} trainer credential(s) and every job token of job {args.job_id} issued until now")
    else:
        print(f"revoked trainer credential {args.credential}" if revoked else "that credential was already revoked")
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
        print(f"job {args.job_id} has no trainer credentials")
    return 0
