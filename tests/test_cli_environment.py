"""One lookup of the environment for the training process and the CLI (no server needed)."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest

from liveparams._client_config import ClientConfig
from liveparams._exceptions import CommandError
from liveparams.agent import AgentConfig
from liveparams.tokens import mint_job_token, mint_jwt
from liveparams_stack.keys import ANON_KEY, JWT_SECRET, PUBLISHABLE_KEY, SERVICE_ROLE_KEY

JOB = str(uuid.uuid4())
URL = "http://127.0.0.1:54321"
TROUBLESHOOTING = Path(__file__).resolve().parents[1] / "docs" / "troubleshooting.md"


@pytest.fixture(autouse=True)
def no_kept_sign_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sign-in kept by `liveparams user login` on this machine would act instead of the keys under test."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)


def test_the_trainer_reads_the_names_supabase_status_prints() -> None:
    config = AgentConfig.from_env({"JOB_ID": JOB, "API_URL": URL, "SERVICE_ROLE_KEY": SERVICE_ROLE_KEY})
    assert config is not None and (config.url, config.key) == (URL, SERVICE_ROLE_KEY)

    token = mint_job_token(JOB, JWT_SECRET, 600)
    env = {"JOB_ID": JOB, "SUPABASE_API_URL": URL, "LIVEPARAMS_TOKEN": token, "ANON_KEY": ANON_KEY}
    config = AgentConfig.from_env({**env, "SERVICE_ROLE_KEY": SERVICE_ROLE_KEY})
    assert config is not None and (config.key, config.api_key) == (token, ANON_KEY)  # the job token wins
    # A name chosen on purpose beats one that came with a pasted block.
    config = AgentConfig.from_env({**env, "SUPABASE_URL": "https://x.supabase.co"})
    assert config is not None and config.url == "https://x.supabase.co"


@pytest.mark.parametrize("anon", [ANON_KEY, PUBLISHABLE_KEY])
def test_the_trainer_refuses_the_anon_key_with_the_line_troubleshooting_quotes(
    anon: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assert AgentConfig.from_env({"JOB_ID": JOB, "SUPABASE_URL": URL, "SUPABASE_KEY": anon}) is None
    (record,) = caplog.records
    assert "public (anon) key" in record.getMessage()
    documented = " ".join(TROUBLESHOOTING.read_text(encoding="utf-8").split())
    assert record.getMessage() in documented


def test_the_cli_acts_as_the_user_before_the_service_key() -> None:
    user = mint_jwt({"sub": JOB, "role": "authenticated"}, JWT_SECRET, 600)  # a person's token, as Auth signs one
    both = {"API_URL": URL, "ANON_KEY": ANON_KEY, "SERVICE_ROLE_KEY": SERVICE_ROLE_KEY}
    config = ClientConfig.from_env(environ={**both, "LIVEPARAMS_USER_TOKEN": user})
    assert (config.key, config.access_token, config.is_service) == (ANON_KEY, user, False)
    config = ClientConfig.from_env(environ=both)
    assert (config.key, config.access_token, config.is_service) == (SERVICE_ROLE_KEY, None, True)
    assert config.acting_as == "with the service role key (every job)"
    with pytest.raises(CommandError, match="the anon key alone sees no job"):
        ClientConfig.from_env(environ={"API_URL": URL, "ANON_KEY": ANON_KEY})
    with pytest.raises(CommandError, match="not a project URL"):
        ClientConfig.from_env(environ={"API_URL": "127.0.0.1:54321", "SERVICE_ROLE_KEY": SERVICE_ROLE_KEY})
