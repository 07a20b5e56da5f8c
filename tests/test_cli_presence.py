"""``liveparams job show`` reads the trainer's Presence on the job's private channel, as the panel does.

Presence says at once that a trainer's process is gone (its socket closed), long before its heartbeat
goes stale; so what `job show` reads there must be the job's trainer, not someone who tracks a
``trainer`` on the topic's public channel with the publishable key and the job's id.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from cli_helpers import as_owner, liveparams
from presence_helpers import TRAINER_PRESENCE, tracked

from liveparams._views import PRESENCE_GRACE_S

pytestmark = pytest.mark.stack


@pytest.fixture
def attached_job(
    stack_env: dict[str, str],
    new_user: Callable[[], tuple[str, str]],
    new_job: Callable[..., str],
    service_http: httpx.Client,
) -> tuple[str, dict[str, str]]:
    """(job id, the owner's CLI environment) of a job whose row says a trainer attached a while ago and beat
    just now: `job show` then says what the topic's Presence says."""
    owner_id, owner_jwt = new_user()
    job_id = new_job(owner_id)
    now = datetime.now(timezone.utc)
    attached = (now - timedelta(seconds=4 * PRESENCE_GRACE_S)).isoformat()  # past Presence's grace at attach
    response = service_http.patch(
        "/rest/v1/local_training_jobs",
        params={"id": f"eq.{job_id}"},
        json={"trainer_attached_at": attached, "trainer_seen_at": now.isoformat()},
    )
    response.raise_for_status()
    return job_id, as_owner(stack_env, owner_jwt)


def test_job_show_counts_the_jobs_trainer_on_its_channel_and_not_a_stranger(
    stack_env: dict[str, str], job_token: Callable[[str], str], attached_job: tuple[str, dict[str, str]]
) -> None:
    job_id, owner = attached_job
    fake = {"trainer": "attached", "since": "a stranger's"}
    with tracked(stack_env, stack_env["ANON_KEY"], job_id, private=False, track=fake):
        shown = liveparams("job", "show", job_id, env=owner)
        assert "trainer: the trainer left the job's channel (killed, or reconnecting)" in shown.stdout, shown.stdout
        with tracked(stack_env, job_token(job_id), job_id, private=True, track=TRAINER_PRESENCE):
            shown = liveparams("job", "show", job_id, env=owner)
            assert "trainer: a trainer is attached" in shown.stdout, shown.stdout


def test_against_a_database_without_the_channel_policies_job_show_reads_the_public_channel(
    older_database: None,
    stack_env: dict[str, str],
    job_token: Callable[[str], str],
    attached_job: tuple[str, dict[str, str]],
) -> None:
    """There the private join is refused and the trainer is on the public channel: so is `job show`."""
    job_id, owner = attached_job
    shown = liveparams("job", "show", job_id, env=owner)  # it reads the topic's Presence: nobody there
    assert "trainer: the trainer left the job's channel (killed, or reconnecting)" in shown.stdout, shown.stdout
    with tracked(stack_env, job_token(job_id), job_id, private=False, track=TRAINER_PRESENCE):
        shown = liveparams("job", "show", job_id, env=owner)
        assert "trainer: a trainer is attached" in shown.stdout, shown.stdout
