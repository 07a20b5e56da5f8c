"""The trainer credential as the training process reads it: configuration, hints, refresh timing; no network."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from supabase_auth.types import Session

from liveparams._trainer_credential import TrainerSecret, parse_credential
from liveparams.agent import AgentConfig, ConfigError
from liveparams.agent._credential import Credential
from liveparams.tokens import mint_job_token, mint_jwt

JOB = "6f1c2b9e-3a43-4c52-9d0e-1f2a3b4c5d6e"
OTHER_JOB = "0b6c1a57-6e4f-4a53-9d2c-5f1f0b1e2a3c"
URL = "https://x.supabase.co"
PASSWORD = "pw_with-underscores_and-dashes_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"
SECRET = TrainerSecret(JOB, "9d6b3c1e-2f4a-4b5c-8d7e-0a1b2c3d4e5f", PASSWORD).encode()
PUBLIC = "sb_publishable_x"


def trainer_env(**overrides: str) -> dict[str, str]:
    return {"JOB_ID": JOB, "SUPABASE_URL": URL, "LIVEPARAMS_CREDENTIAL": SECRET, "SUPABASE_PUBLISHABLE_KEY": PUBLIC,
            "SUPABASE_SERVICE_ROLE_KEY": "service-role-key-never-used-here", **overrides}  # fmt: skip


def disabled_because(env: dict[str, str], caplog: pytest.LogCaptureFixture) -> str:
    """The one warning a training process logs when its configuration cannot work (and it then trains on)."""
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert AgentConfig.from_env(env) is None
    assert len(caplog.records) == 1 and "runtime parameter updates disabled" in caplog.records[0].getMessage()
    return caplog.records[0].getMessage()


def test_the_credential_names_its_job_and_round_trips() -> None:
    secret = parse_credential(SECRET)
    assert (secret.job_id, secret.password) == (JOB, PASSWORD)
    assert secret.email == f"trainer-{secret.credential_id}@liveparams.invalid"
    assert SECRET.startswith(f"lpcred_{JOB}_") and PASSWORD not in repr(secret)


def test_from_env_prefers_the_credential_and_never_shows_it() -> None:
    config = AgentConfig.from_env(trainer_env())
    assert config is not None
    assert (config.credential, config.key, config.api_key) == (SECRET, "", PUBLIC)
    assert SECRET not in repr(config) and PASSWORD not in repr(config) and "credential='***'" in repr(config)
    assert config.redact(f"password={PASSWORD} value={SECRET}") == "password=*** value=***"


def test_a_credential_needs_the_public_key(caplog: pytest.LogCaptureFixture) -> None:
    env = {k: v for k, v in trainer_env().items() if k != "SUPABASE_PUBLISHABLE_KEY"}
    assert "needs api_key" in disabled_because(env, caplog)
    with pytest.raises(ConfigError, match="key or credential"):
        AgentConfig(job_id=JOB, url=URL)


def test_a_credential_of_another_job_is_refused_naming_both_ids(caplog: pytest.LogCaptureFixture) -> None:
    said = disabled_because(trainer_env(JOB_ID=OTHER_JOB), caplog)
    assert f"credential of job {JOB}, but JOB_ID is {OTHER_JOB}" in said and "nothing was sent" in said
    assert PASSWORD not in said


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("not-a-credential", "not a trainer credential"),
        (SECRET[:60], "a damaged trainer credential"),
        (SECRET[:-1], "a damaged trainer credential"),
        ("eyJhbGciOiJIUzI1NiJ9.e30.c2ln", "a JWT or project key"),
    ],
)
def test_a_bad_credential_gets_a_hint_not_revoked(value: str, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    said = disabled_because(trainer_env(LIVEPARAMS_CREDENTIAL=value), caplog)
    assert f"LIVEPARAMS_CREDENTIAL is {kind}" in said and "liveparams credential issue" in said
    assert "revoked" not in said and value not in said


def test_the_old_refresh_token_is_no_longer_read_and_says_how_to_replace_it(caplog: pytest.LogCaptureFixture) -> None:
    env = {**{k: v for k, v in trainer_env().items() if k != "LIVEPARAMS_CREDENTIAL"}, "LIVEPARAMS_REFRESH_TOKEN": "r"}
    said = disabled_because(env, caplog)
    assert "LIVEPARAMS_REFRESH_TOKEN is no longer read" in said and f"liveparams credential rotate {JOB}" in said


@pytest.mark.parametrize(
    ("token", "said"),
    [
        ("garbage", "is not a token (not a JWT)"),
        (mint_jwt({"role": "authenticated", "iss": "liveparams", "job_id": JOB, "exp": 1}, "s" * 32), "expired at"),
        (mint_job_token(OTHER_JOB, "s" * 32), f"job token of job {OTHER_JOB}, but JOB_ID is {JOB}"),
        (SECRET, "set it as LIVEPARAMS_CREDENTIAL instead"),
    ],
)
def test_a_bad_job_token_gets_a_hint(token: str, said: str, caplog: pytest.LogCaptureFixture) -> None:
    env = {"JOB_ID": JOB, "SUPABASE_URL": URL, "LIVEPARAMS_TOKEN": token, "SUPABASE_ANON_KEY": PUBLIC}
    message = disabled_because(env, caplog)
    assert "LIVEPARAMS_TOKEN" in message and said in message and token not in message


@pytest.mark.parametrize(("lifetime", "due"), [(3600, 2700), (300, 225), (100, 50), (4, 2)])
def test_a_session_is_refreshed_well_before_it_expires(lifetime: int, due: float) -> None:
    """A quarter of the lifetime ahead, at least a minute when the lifetime allows, at most half of it."""
    credential = Credential(AgentConfig(job_id=JOB, url=URL, api_key=PUBLIC, credential=SECRET))
    assert credential.refresh_due_in() == 0  # no session yet: now
    credential._session = Session.model_construct(access_token="a", refresh_token="r", expires_in=lifetime)
    credential._received_at = time.monotonic()
    assert credential.refresh_due_in() == pytest.approx(due, abs=0.5)


def test_a_fixed_token_expiring_within_a_day_is_one_warning_at_start(caplog: pytest.LogCaptureFixture) -> None:
    secret = "s" * 32
    with caplog.at_level(logging.WARNING):
        for ttl in (3600, 7 * 24 * 3600):
            Credential(AgentConfig(job_id=JOB, url=URL, key=mint_job_token(JOB, secret, ttl))).warn_if_expiring()
        Credential(AgentConfig(job_id=JOB, url=URL, key="sb_secret_not_a_jwt")).warn_if_expiring()
    assert [record.getMessage()[:37] for record in caplog.records] == ["The token expires in 1.0 h and cannot"]


def test_callers_that_find_the_token_stale_together_cause_one_renewal(monkeypatch: pytest.MonkeyPatch) -> None:
    """REST, the Realtime channel and the refresh loop may all find the token stale at once: one of them
    renews the session (a refresh token presented twice could end it), the others use the result."""
    credential = Credential(AgentConfig(job_id=JOB, url=URL, api_key=PUBLIC, credential=SECRET))
    renewals: list[float] = []

    async def renew() -> Session:
        renewals.append(time.monotonic())
        await asyncio.sleep(0.05)
        return Session.model_construct(access_token=f"a{len(renewals)}", refresh_token="r", expires_in=3600)

    monkeypatch.setattr(credential, "_renew", renew)

    async def three_callers() -> list[bool]:
        return list(await asyncio.gather(*(credential.refresh() for _ in range(3))))

    assert asyncio.run(three_callers()) == [True, True, True]
    assert len(renewals) == 1
