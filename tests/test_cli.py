"""The ``liveparams`` commands a person types, run as subprocesses against the stack."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cli_helpers import as_owner, clean_environ, liveparams

from liveparams.agent import AgentConfig

pytestmark = pytest.mark.stack


@pytest.fixture
def owner_job(new_user: Callable[[], tuple[str, str]], new_job: Callable[..., str]) -> tuple[str, str, str]:
    owner_id, owner_jwt = new_user()
    return owner_id, owner_jwt, new_job(owner_id)


def test_set_as_owner_appends_a_stamped_request(stack_env: dict[str, str], owner_job: tuple[str, str, str]) -> None:
    owner_id, owner_jwt, job_id = owner_job
    result = liveparams(
        "set", job_id, "learning_rate=5e-5", "command=save_checkpoint", "--json", env=as_owner(stack_env, owner_jwt)
    )
    assert result.returncode == 0, result.stderr
    stored = json.loads(result.stdout)
    assert stored["learning_rate"] == 5e-5
    assert stored["command"] == "save_checkpoint"
    assert stored["requested_by"] == owner_id
    uuid.UUID(stored["id"])

    watched = liveparams("watch", job_id, "--once", "--json", env=as_owner(stack_env, owner_jwt))
    assert watched.returncode == 0, watched.stderr
    lines = [json.loads(line) for line in watched.stdout.splitlines()]
    assert [(line["id"], line["status"]) for line in lines] == [(stored["id"], "pending")]


def test_set_with_the_service_key(stack_env: dict[str, str], owner_job: tuple[str, str, str]) -> None:
    _, _, job_id = owner_job
    env = {"SUPABASE_URL": stack_env["API_URL"], "SUPABASE_SERVICE_ROLE_KEY": stack_env["SERVICE_ROLE_KEY"]}
    result = liveparams("set", job_id, "weight_decay=0.01", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("requested ")


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("bogus=1", 'unknown parameter "bogus"'),
        ("learning_rate=-1", "out of range"),
        ("learning_rate=fast", "must be a number"),
        ("num_generations=1", "out of range"),
    ],
)
def test_set_rejections_are_one_clear_line(
    stack_env: dict[str, str], owner_job: tuple[str, str, str], assignment: str, message: str
) -> None:
    _, owner_jwt, job_id = owner_job
    result = liveparams("set", job_id, assignment, env=as_owner(stack_env, owner_jwt))
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1


def test_set_reads_a_number_as_python_does_and_still_refuses_nan(
    stack_env: dict[str, str], owner_job: tuple[str, str, str]
) -> None:
    """``.5e-4``, ``1.``, ``1_000`` and ``+1e-8`` are not JSON numbers: they were sent as strings and refused."""
    _, owner_jwt, job_id = owner_job
    owner = as_owner(stack_env, owner_jwt)
    typed = ["learning_rate=.5e-4", "weight_decay=1.", "max_steps=1_000", "adam_epsilon=+1e-8"]
    result = liveparams("set", job_id, *typed, "learning_rate_mode=constant", "--json", env=owner)
    assert result.returncode == 0, result.stderr
    stored = json.loads(result.stdout)
    sent = {name: stored[name] for name in ("learning_rate", "weight_decay", "max_steps", "adam_epsilon")}
    assert sent == {"learning_rate": 5e-5, "weight_decay": 1.0, "max_steps": 1000, "adam_epsilon": 1e-8}
    assert stored["learning_rate_mode"] == "constant"  # a string parameter's value stays a string
    for value in ("nan", "inf", "-infinity"):  # Python reads them too: still no number JSON carries
        refused = liveparams("set", job_id, f"weight_decay={value}", env=owner)
        assert refused.returncode == 1
        assert refused.stderr == (
            f"liveparams: error: weight_decay={value}: not a finite number (NaN and infinities cannot be sent)\n"
        )


def test_set_on_someone_elses_job_says_not_found(
    stack_env: dict[str, str], owner_job: tuple[str, str, str], new_user: Callable[[], tuple[str, str]]
) -> None:
    _, _, job_id = owner_job
    _, stranger_jwt = new_user()
    result = liveparams("set", job_id, "learning_rate=1e-4", env=as_owner(stack_env, stranger_jwt))
    assert result.returncode == 1
    assert f"training job {job_id} not found" in result.stderr


def test_unreachable_server_and_bad_arguments_are_explained() -> None:
    env = {"SUPABASE_URL": "http://127.0.0.1:9", "SUPABASE_SERVICE_ROLE_KEY": "x"}
    job_id = str(uuid.uuid4())
    unreachable = liveparams("set", job_id, "learning_rate=1e-4", env=env)
    assert unreachable.returncode == 1
    assert "cannot reach" in unreachable.stderr and "Traceback" not in unreachable.stderr

    truncated = liveparams("set", job_id[:8], "learning_rate=1e-4", env=env)  # issue 13: was a raw Postgres error
    assert truncated.returncode == 1 and f"not a job id: '{job_id[:8]}'" in truncated.stderr
    not_a_number = liveparams("set", job_id, "learning_rate=NaN", env=env)  # issue 13: was a traceback
    assert not_a_number.returncode == 1
    assert (
        not_a_number.stderr
        == "liveparams: error: learning_rate=NaN: not a finite number (NaN and infinities cannot be sent)\n"
    )

    too_long = liveparams("set", job_id, "max_steps=1" + "0" * 5000, env=env)  # beyond Python's int parsing
    assert too_long.returncode == 1
    assert (
        too_long.stderr
        == "liveparams: error: max_steps: a number of 5001 digits cannot be sent (no parameter allows it)\n"
    )

    malformed = liveparams("set", job_id, "learning_rate", env=env)
    assert malformed.returncode == 1 and "expected NAME=VALUE" in malformed.stderr

    no_url = liveparams("set", job_id, "learning_rate=1e-4")
    assert no_url.returncode == 1 and "SUPABASE_URL" in no_url.stderr

    for command in ("set", "watch", "token", "stack", "job", "user"):
        helped = liveparams(command, "--help")
        assert helped.returncode == 0 and "usage:" in helped.stdout


def test_token_mints_a_job_scoped_token(stack_env: dict[str, str]) -> None:
    job_id = str(uuid.uuid4())
    env = {"SUPABASE_JWT_SECRET": stack_env["JWT_SECRET"]}
    result = liveparams("token", job_id, "--legacy-hs256", "--ttl", "2h", "--json", env=env)
    assert result.returncode == 0, result.stderr
    minted = json.loads(result.stdout)
    claims: dict[str, Any] = jwt.decode(minted["token"], stack_env["JWT_SECRET"], algorithms=["HS256"])
    assert claims["job_id"] == job_id and claims["role"] == "authenticated" and "sub" not in claims
    assert claims["exp"] - claims["iat"] == 7200

    assert liveparams("token", job_id, "--legacy-hs256").returncode == 1  # no secret
    bad = liveparams("token", "not-a-uuid", "--legacy-hs256", env={"SUPABASE_JWT_SECRET": "s" * 32})
    assert bad.returncode == 1 and "uuid" in bad.stderr.lower()


def test_a_legacy_job_token_loads_with_the_line_the_help_gives(stack_env: dict[str, str]) -> None:
    """`set -a; eval "$(liveparams token JOB --legacy-hs256)"; set +a` sets JOB_ID and LIVEPARAMS_TOKEN, the
    variables the agent reads, as it does for a trainer credential; bash never runs (and prints) the token."""
    job_id = str(uuid.uuid4())
    script = 'set -a; eval "$("$0" -m liveparams.cli token "$1" --legacy-hs256)"; set +a; env'
    loaded = subprocess.run(
        ["bash", "-c", script, sys.executable, job_id],
        env={**clean_environ(), "SUPABASE_JWT_SECRET": stack_env["JWT_SECRET"]},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert loaded.returncode == 0 and "command not found" not in loaded.stderr, loaded.stderr
    env = dict(line.split("=", 1) for line in loaded.stdout.splitlines() if "=" in line)
    assert env["JOB_ID"] == job_id and env["LIVEPARAMS_TOKEN"] not in loaded.stderr
    claims = jwt.decode(env["LIVEPARAMS_TOKEN"], stack_env["JWT_SECRET"], algorithms=["HS256"])
    assert claims["job_id"] == job_id
    trainer = {**env, "SUPABASE_URL": stack_env["API_URL"], "SUPABASE_ANON_KEY": stack_env["ANON_KEY"]}
    config = AgentConfig.from_env(trainer)
    assert config is not None and (config.job_id, config.key) == (job_id, env["LIVEPARAMS_TOKEN"])


def test_watch_streams_outcomes_as_they_are_recorded(
    stack_env: dict[str, str],
    owner_job: tuple[str, str, str],
    request_update: Callable[..., dict[str, Any]],
    job_token: Callable[[str], str],
) -> None:
    import httpx

    _, owner_jwt, job_id = owner_job
    stored = request_update(owner_jwt, job_id, {"learning_rate": 1e-4})
    watcher = subprocess.Popen(
        [sys.executable, "-m", "liveparams.cli", "watch", job_id, "--json"],
        env={**clean_environ(), **as_owner(stack_env, owner_jwt)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watcher.stdout is not None
        first = json.loads(watcher.stdout.readline())
        assert (first["id"], first["status"]) == (stored["id"], "pending")
        token = job_token(job_id)
        outcome = {
            "status": "applied",
            "step": 7,
            "at": "2026-01-01T00:00:00.000Z",
            "changes": {"learning_rate": {"old": 1e-3, "new": 1e-4}},
        }
        httpx.post(
            f"{stack_env['API_URL']}/rest/v1/rpc/record_parameter_update_outcomes",
            json={"p_job_id": job_id, "p_outcomes": {stored["id"]: outcome}},
            headers={"apikey": stack_env["ANON_KEY"], "Authorization": f"Bearer {token}"},
        ).raise_for_status()
        line = json.loads(watcher.stdout.readline())
        assert (line["id"], line["status"], line["step"]) == (stored["id"], "applied", 7)
        assert "1.00e-03 → 1.00e-04" in line["detail"]  # the one number format
    finally:
        watcher.terminate()
        watcher.wait(10)


def test_set_says_the_request_is_stored_when_its_wait_fails_and_a_retry_with_its_id_stores_nothing_more(
    older_database: None,
    faults: Callable[..., dict[str, Any]],
    stack_env: dict[str, str],
    owner_job: tuple[str, str, str],
    service_http: Any,
) -> None:
    """A `set --wait` whose wait fails has stored its request: said so, a retry would not queue it twice."""
    _, owner_jwt, job_id = owner_job
    owner = as_owner(stack_env, owner_jwt)
    faults("private_only", enabled=True)  # no policy for the private channel, no public one: the wait cannot subscribe
    request_id = str(uuid.uuid4())
    asked = ["set", job_id, "command=save_checkpoint", "--request-id", request_id]
    failed = liveparams(*asked, "--wait", "30", env=owner)
    assert (failed.returncode, failed.stdout) == (1, ""), failed.stderr
    stored_as = f"stored as #1 ({request_id})"
    lines = failed.stderr.splitlines()
    assert lines[0] == f"liveparams: {stored_as}; waiting up to 30 s for its outcome", lines  # before the wait
    assert lines[-1] == (
        f"liveparams: error: {stored_as}; could not follow its outcome: could not subscribe to the job's changes "
        f"over Realtime; see `liveparams watch {job_id}` (a retry with --request-id {request_id} stores nothing more)"
    )
    retried = liveparams(*asked, env=owner)
    assert retried.returncode == 0 and retried.stdout.startswith(f"requested #1 ({request_id}): "), retried.stderr
    rows = service_http.get("/rest/v1/parameter_update_requests", params={"job_id": f"eq.{job_id}"}).json()
    assert [row["id"] for row in rows] == [request_id]  # one request, however often it was asked


def test_set_warns_when_no_trainer_is_attached(
    stack_env: dict[str, str], owner_job: tuple[str, str, str], job_token: Callable[[str], str]
) -> None:
    import httpx

    _, owner_jwt, job_id = owner_job
    unattached = liveparams("set", job_id, "learning_rate=1e-4", env=as_owner(stack_env, owner_jwt))
    assert unattached.returncode == 0, unattached.stderr
    assert "warning: no trainer has attached yet" in unattached.stderr
    assert "the request waits for the next attach" in unattached.stderr

    def trainer(state: str, step: int | None = None) -> None:
        httpx.post(
            f"{stack_env['API_URL']}/rest/v1/rpc/record_trainer_state",
            json={"p_job_id": job_id, "p_state": state, "p_step": step},
            headers={"apikey": stack_env["ANON_KEY"], "Authorization": f"Bearer {job_token(job_id)}"},
        ).raise_for_status()

    trainer("attached")  # what the agent does when it starts
    attached = liveparams("set", job_id, "learning_rate=2e-4", env=as_owner(stack_env, owner_jwt))
    assert attached.returncode == 0 and "warning" not in attached.stderr
    trainer("crashed", 120)  # not an end: the resumed run gets the request
    detached = liveparams("set", job_id, "learning_rate=3e-4", env=as_owner(stack_env, owner_jwt))
    assert detached.returncode == 0
    waits = "warning: the trainer detached: crashed at step 120; the request waits for the next attach"
    assert waits in detached.stderr
    trainer("attached")
    trainer("completed", 130)  # the end of the run: nothing more is taken
    ended = liveparams("set", job_id, "learning_rate=4e-4", env=as_owner(stack_env, owner_jwt))
    assert ended.returncode == 1 and f"the run of training job {job_id} ended at step 130 (completed)" in ended.stderr


def test_watch_reads_a_request_as_the_agent_does(
    stack_env: dict[str, str], owner_job: tuple[str, str, str], service_http: Any
) -> None:
    """An entry a seed writer stored as JSON text: the agent applies it, so watch shows it (not "(malformed)")."""
    _, owner_jwt, job_id = owner_job
    service_http.patch(
        "/rest/v1/local_training_jobs", params={"id": f"eq.{job_id}"}, json={"parameter_updates": ['{"max_steps": 50}']}
    ).raise_for_status()
    watched = liveparams("watch", job_id, "--once", "--json", env=as_owner(stack_env, owner_jwt))
    assert watched.returncode == 0, watched.stderr
    (line,) = [json.loads(line) for line in watched.stdout.splitlines()]
    assert line["params"] == {"max_steps": 50} and line["status"] == "pending"


def test_trainer_attachment_tells_attached_detached_and_silent_apart() -> None:
    """What `set` warns about and `watch` shows, from the job row's trainer columns (no server)."""
    from datetime import datetime, timedelta, timezone

    from liveparams._views import HEARTBEAT_STALE_S, trainer_attachment

    now = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)
    recent = (now - timedelta(seconds=5)).isoformat()
    stale = (now - timedelta(seconds=HEARTBEAT_STALE_S + 1)).isoformat()
    attached = {"trainer_attached_at": recent, "trainer_seen_at": recent, "trainer_detached_at": None}
    assert trainer_attachment({}, now).detail == "no trainer has attached yet"
    assert trainer_attachment(attached, now).detail == "a trainer is attached"  # no step: an older agent
    beating = trainer_attachment({**attached, "trainer_step": 12}, now)
    assert beating.attached and beating.label == "attached"  # `job list`; `job show`/`watch` say the step
    assert beating.detail == "a trainer is attached, at step 12 at its last heartbeat"
    killed = trainer_attachment({**attached, "trainer_seen_at": stale}, now)
    assert not killed.attached and "stopped responding" in killed.detail
    crashed = {**attached, "trainer_detached_at": recent, "trainer_detach_reason": "crashed", "trainer_detach_step": 7}
    assert trainer_attachment(crashed, now).detail == "the trainer detached: crashed at step 7"
    paused = trainer_attachment({**attached, "trainer_paused_at": recent, "trainer_pause_step": 40}, now)
    assert paused.attached and paused.label == "paused at step 40"  # `job list`; `job show`/`watch` say more
    assert paused.detail == "a trainer is attached, paused at step 40 (command=resume goes on)"
    assert trainer_attachment({**crashed, "trainer_paused_at": recent}, now).label == "crashed at step 7"


def test_the_last_in_process_restart_reads_the_same_in_job_show_and_watch() -> None:
    """From the job row's trainer_restart_* columns (no server): `job show`'s line and `watch`'s title."""
    from liveparams._render import job_title
    from liveparams._views import restart_text

    at = "2026-12-07T04:30:01.123+00:00"
    restart = {
        "trainer_restart_kind": "restart",
        "trainer_restart_step": 12,
        "trainer_restarted_at": at,
        "trainer_restart_settings": {"gradient_accumulation_steps": 4},
        "trainer_restart_seconds": 1.234,
    }
    text = "restarted in-process at step 12 with gradient_accumulation_steps=4 in 1.23 s (2026-12-07 04:30:01 UTC)"
    assert restart_text(restart) == text
    assert text in job_title("j1", {"status": "running", **restart})
    rewind = {**restart, "trainer_restart_kind": "rewind", "trainer_restart_step": 10, "trainer_restart_from_step": 15}
    assert restart_text(rewind) == "rewound from step 15 to step 10 in 1.23 s (2026-12-07 04:30:01 UTC)"
    assert restart_text({"status": "running"}) == ""


def test_watch_shows_an_outcome_whatever_shape_its_changes_have() -> None:
    """`changes` is any JSON object a trainer credential wrote: a bare value per name is shown, not a crash."""
    from liveparams._views import JobView, summarize

    view = JobView(job={})
    view.take(
        {
            "id": "r1",
            "seq": 1,
            "params": {"learning_rate": 5e-5},
            "status": "applied",
            "step": 7,
            "changes": {"learning_rate": 5e-5, "command": {"old": None, "new": "stop"}},
        }
    )
    (shown,) = summarize(view)
    assert (shown.status, shown.step, shown.detail) == ("applied", 7, "learning_rate: 5e-05, stop done")
