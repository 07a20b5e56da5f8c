"""The trainer session's configuration, refresh timing and session file, without a network."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
import time
from pathlib import Path

import pytest
from supabase_auth.types import Session

from liveparams.agent import AgentConfig, ConfigError
from liveparams.agent._credential import Credential, default_session_file

JOB = "6f1c2b9e-3a43-4c52-9d0e-1f2a3b4c5d6e"
URL = "https://x.supabase.co"
REFRESH = "refresh-token-from-the-environment"


def session_config(tmp_path: Path, **overrides: object) -> AgentConfig:
    fields: dict[str, object] = {
        "job_id": JOB,
        "url": URL,
        "api_key": "sb_publishable_x",
        "refresh_token": REFRESH,
        "session_file": str(tmp_path / "session.json"),
    }
    return AgentConfig(**{**fields, **overrides})  # type: ignore[arg-type]


def test_from_env_prefers_a_trainer_session_and_needs_the_public_key(caplog: pytest.LogCaptureFixture) -> None:
    env = {
        "JOB_ID": JOB,
        "SUPABASE_URL": URL,
        "LIVEPARAMS_REFRESH_TOKEN": REFRESH,
        "SUPABASE_SERVICE_ROLE_KEY": "service-role-key-never-used-here",
        "SUPABASE_PUBLISHABLE_KEY": "sb_publishable_x",
        "LIVEPARAMS_SESSION_FILE": "/run/liveparams/session.json",
    }
    config = AgentConfig.from_env(env)
    assert config is not None
    assert (config.refresh_token, config.key, config.api_key) == (REFRESH, "", "sb_publishable_x")
    assert config.session_file == "/run/liveparams/session.json"
    assert REFRESH not in repr(config) and "refresh_token='***'" in repr(config)
    assert config.redact(f"token={REFRESH}") == "token=***"

    with caplog.at_level(logging.WARNING):
        assert AgentConfig.from_env({k: v for k, v in env.items() if k != "SUPABASE_PUBLISHABLE_KEY"}) is None
    assert "needs api_key" in caplog.text and "disabled" in caplog.text


def test_a_config_needs_a_key_or_a_refresh_token() -> None:
    with pytest.raises(ConfigError, match="key or refresh_token"):
        AgentConfig(job_id=JOB, url=URL)
    with pytest.raises(ConfigError, match="needs api_key"):
        AgentConfig(job_id=JOB, url=URL, refresh_token=REFRESH)


@pytest.mark.parametrize(("lifetime", "due"), [(3600, 2700), (300, 225), (100, 50), (4, 2)])
def test_a_session_is_refreshed_well_before_it_expires(tmp_path: Path, lifetime: int, due: float) -> None:
    """A quarter of the lifetime ahead, at least a minute when the lifetime allows, at most half of it."""
    credential = Credential(session_config(tmp_path))
    assert credential.refresh_due_in() == 0  # no session yet: now
    credential._session = Session.model_construct(access_token="a", refresh_token="r", expires_in=lifetime)
    credential._received_at = time.monotonic()
    assert credential.refresh_due_in() == pytest.approx(due, abs=0.5)


def test_the_session_file_continues_only_the_credential_it_came_from(tmp_path: Path) -> None:
    first = Credential(session_config(tmp_path))
    assert first._refresh_token() == REFRESH  # nothing saved yet: the environment's token
    first._save("rotated-1")
    path = tmp_path / "session.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert REFRESH not in path.read_text()  # only a hash of where the chain started
    assert Credential(session_config(tmp_path))._refresh_token() == "rotated-1"  # a restart resumes

    reissued = Credential(session_config(tmp_path, refresh_token="a-newly-issued-credential"))
    assert reissued._refresh_token() == "a-newly-issued-credential"  # not the old credential's token
    other_job = Credential(session_config(tmp_path, job_id="0b7e8f3c-1d2e-4f5a-8b9c-0d1e2f3a4b5c"))
    assert other_job._refresh_token() == REFRESH


def test_a_refresh_cut_short_by_close_still_keeps_the_new_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing cancels the refresh loop mid-exchange; the server has spent the old token by then,
    so the answer must still reach the session file, or a restarted trainer finds its session revoked."""
    credential = Credential(session_config(tmp_path))

    async def slow_exchange(refresh_token: str) -> Session:
        await asyncio.sleep(0.2)  # the request is out; the answer is on its way
        return Session.model_construct(access_token="a2", refresh_token="rotated-2", expires_in=3600)

    monkeypatch.setattr(credential, "_exchange", slow_exchange)

    async def close_during_a_refresh() -> None:
        loop = asyncio.create_task(credential.run())
        await asyncio.sleep(0.05)
        loop.cancel()
        await credential.settle(2.0)

    asyncio.run(close_during_a_refresh())
    assert json.loads((tmp_path / "session.json").read_text())["refresh_token"] == "rotated-2"
    assert Credential(session_config(tmp_path))._refresh_token() == "rotated-2"


def test_an_unwritable_session_file_is_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    credential = Credential(session_config(tmp_path, session_file=str(blocked / "session.json")))
    with caplog.at_level(logging.WARNING):
        credential._save("rotated-1")
        credential._save("rotated-2")
    assert len(caplog.records) == 1 and "Could not keep the trainer session" in caplog.text


def test_the_default_session_file_is_per_job_under_the_state_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", "/state")
    assert default_session_file(JOB) == Path("/state/liveparams") / f"session-{JOB}.json"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert str(default_session_file(JOB)).startswith(os.path.expanduser("~"))
    assert json.dumps(str(default_session_file(JOB)))  # a plain path


def test_a_fixed_token_expiring_within_a_day_is_one_warning_at_start(caplog: pytest.LogCaptureFixture) -> None:
    from liveparams.tokens import mint_job_token

    secret = "s" * 32
    with caplog.at_level(logging.WARNING):
        for ttl in (3600, 7 * 24 * 3600):
            Credential(AgentConfig(job_id=JOB, url=URL, key=mint_job_token(JOB, secret, ttl))).warn_if_expiring()
        Credential(AgentConfig(job_id=JOB, url=URL, key="sb_secret_not_a_jwt")).warn_if_expiring()
    assert [record.getMessage()[:37] for record in caplog.records] == ["The token expires in 1.0 h and cannot"]


def test_callers_that_learn_of_a_revocation_together_cause_one_exchange_and_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """REST, the Realtime channel and the refresh loop may all find the token stale at once: the refresh token
    is presented once (a second presentation of a spent one would itself end the session), and the
    revocation is said once."""
    from supabase_auth.errors import AuthApiError

    credential = Credential(session_config(tmp_path))
    presented: list[str] = []

    async def spent(refresh_token: str) -> Session:
        presented.append(refresh_token)
        await asyncio.sleep(0.05)
        raise AuthApiError("Invalid Refresh Token: Already Used", 400, "refresh_token_already_used")

    monkeypatch.setattr(credential, "_exchange", spent)

    async def three_callers() -> list[bool]:
        return list(await asyncio.gather(*(credential.refresh() for _ in range(3))))

    with caplog.at_level(logging.WARNING):
        assert asyncio.run(three_callers()) == [False, False, False]
    assert presented == [REFRESH] and credential.revoked
    assert caplog.text.count("The trainer credential was revoked") == 1


def test_a_caller_after_a_cancelled_one_waits_for_its_exchange_instead_of_sending_the_token_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credential = Credential(session_config(tmp_path))
    presented: list[str] = []

    async def slow_exchange(refresh_token: str) -> Session:
        presented.append(refresh_token)
        await asyncio.sleep(0.2)
        return Session.model_construct(access_token="a2", refresh_token="rotated-2", expires_in=3600)

    monkeypatch.setattr(credential, "_exchange", slow_exchange)

    async def cancel_one_then_ask_again() -> bool:
        first = asyncio.create_task(credential.refresh())
        await asyncio.sleep(0.05)
        first.cancel()
        return await credential.refresh()

    assert asyncio.run(cancel_one_then_ask_again())
    assert presented == [REFRESH] and credential._refresh_token() == "rotated-2"
