"""``liveparams run [--job JOB_ID] -- COMMAND ...``: any training command, unchanged, with live updates.

It execs ``COMMAND`` in place of itself (``os.execvpe``), so the command *is* the
process: its exit code, its signals (Ctrl-C, a SIGTERM to the whole group) and
its stdin/stdout are the command's own. The only difference is the environment:
``JOB_ID`` when ``--job`` gives it, and the bootstrap folder at the head of
``PYTHONPATH`` (``liveparams/run-bootstrap``), whose ``sitecustomize`` gives every
``transformers.Trainer`` the callback at ``train()`` in every Python process the
command starts. When the environment cannot configure updates (no ``JOB_ID``,
no URL or credential), one warning says why and the command runs exactly as
without ``liveparams run``: the environment is left as it was. A ``--job`` typed on
the command line is different: one that is no job id, or not the job of the trainer
credential the environment holds, is a mistake to fix, so nothing starts (exit 2).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path

from liveparams._trainer_credential import CREDENTIAL_VAR, parse_credential
from liveparams.agent import AgentConfig
from liveparams.environment import TRAINER_TOKEN_VAR, unverified_claims

__all__ = ["BOOTSTRAP_DIR", "add_run_command", "job_problem", "run_environment"]

BOOTSTRAP_DIR = Path(__file__).resolve().parent / "run-bootstrap"


def add_run_command(subparsers: argparse._SubParsersAction) -> None:
    """Register ``run`` on the CLI's subparsers."""
    run = subparsers.add_parser(
        "run",
        help="run a training command unchanged, with live updates for every Trainer it starts",
        description="Exec COMMAND with every transformers.Trainer (hence every TRL trainer) it starts, in this "
        "process or any it launches (torchrun, accelerate launch, trl), given RuntimeParameterCallback.from_env "
        "at train(). Configuration comes from the environment (docs/configuration.md); without it, one warning "
        "and the command runs as it is. A --job that is no job id, or not the job of the trainer credential "
        "(LIVEPARAMS_CREDENTIAL or LIVEPARAMS_TOKEN) in the environment, starts nothing (exit 2). "
        "Example: liveparams run --job $JOB_ID -- torchrun --nproc_per_node 2 train.py",
    )
    run.add_argument("--job", metavar="JOB_ID", help="the job's id (default: $JOB_ID)")
    run.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND ...")
    run.set_defaults(run=_run)


def run_environment(environ: Mapping[str, str], job: str | None = None) -> dict[str, str]:
    """The command's environment: ``environ`` with ``JOB_ID`` and the bootstrap, or as it is without a config.

    Logs the one warning (``AgentConfig.from_env``'s) when the configuration is incomplete.
    """
    env = dict(environ)
    if job:
        env["JOB_ID"] = job
    if AgentConfig.from_env(env) is None:
        return env
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BOOTSTRAP_DIR), env.get("PYTHONPATH")]))
    return env


def job_problem(environ: Mapping[str, str], job: str) -> str | None:
    """Why ``job`` (``--job``) cannot be this run's job, or ``None``: it is no job id, or the trainer credential
    (``LIVEPARAMS_CREDENTIAL``, else a ``LIVEPARAMS_TOKEN`` job token) in ``environ`` is another job's.

    Whatever else the configuration lacks is not ``--job``'s problem: ``run_environment`` warns and runs.
    """
    try:
        job = str(uuid.UUID(job))
    except ValueError:  # not check_job_id: its module loads the network client, which a training's start skips
        return f"--job {job!r} is not a job id (a uuid; `liveparams job list` shows them)"
    credential = environ.get(CREDENTIAL_VAR, "").strip()
    if credential:
        held = CREDENTIAL_VAR
        try:
            issued_for = parse_credential(credential).job_id
        except ValueError:  # not a credential at all: the configuration's own warning says so
            return None
    else:
        held = TRAINER_TOKEN_VAR
        issued_for = str(unverified_claims(environ.get(TRAINER_TOKEN_VAR, "").strip()).get("job_id") or job)
    if issued_for.lower() == job:
        return None
    return (
        f"--job {job} is not the job of {held}, which was issued for job {issued_for}: pass --job {issued_for} "
        f"(or leave --job out), or give the training the credential of job {job} (`liveparams credential issue {job}`)"
    )


def _run(args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print("liveparams run: no command given (liveparams run -- python train.py)", file=sys.stderr)
        return 2
    if args.job is not None and (problem := job_problem(os.environ, args.job)):
        print(f"liveparams run: {problem}; nothing was started", file=sys.stderr)
        return 2
    _warnings_to_stderr()
    env = run_environment(os.environ, args.job)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(command[0], command, env)  # returns only when the command cannot be started
    except OSError as exc:
        print(f"liveparams run: cannot run {command[0]!r}: {exc.strerror or exc}", file=sys.stderr)
        return 127 if isinstance(exc, FileNotFoundError) else 126  # what a shell answers
    return 0  # not reached


def _warnings_to_stderr() -> None:
    """The configuration's warning as one line, ``liveparams run: <why>; the command runs without it``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("liveparams run: %(message)s; the command runs as it is"))
    handler.setLevel(logging.WARNING)
    logger = logging.getLogger("liveparams.agent")
    logger.addHandler(handler)
    logger.propagate = False
