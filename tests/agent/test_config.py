"""AgentConfig from code and from the environment (no network)."""

from __future__ import annotations

import logging

import pytest

from liveparams.agent import AgentConfig, ConfigError, Transport
from liveparams.tokens import mint_job_token

JOB = "0b6c1a57-6e4f-4a53-9d2c-5f1f0b1e2a3c"
TOKEN = mint_job_token(JOB, "a-test-secret-of-32-characters!!")


def test_from_env_prefers_the_job_token_and_the_public_url_fallback() -> None:
    env = {
        "JOB_ID": JOB,
        "NEXT_PUBLIC_SUPABASE_URL": "http://127.0.0.1:54321/",
        "LIVEPARAMS_TOKEN": TOKEN,
        "SUPABASE_SERVICE_ROLE_KEY": "service",
        "SUPABASE_KEY": "anon",
    }
    config = AgentConfig.from_env(env)
    assert config is not None
    assert (config.job_id, config.url, config.key) == (JOB, "http://127.0.0.1:54321", TOKEN)


def test_a_job_token_is_paired_with_the_public_key_as_apikey() -> None:
    env = {
        "JOB_ID": JOB,
        "SUPABASE_URL": "https://x.supabase.co",
        "LIVEPARAMS_TOKEN": TOKEN,
        "NEXT_PUBLIC_SUPABASE_ANON_KEY": "anon-key-value",
    }
    config = AgentConfig.from_env(env)
    assert config is not None and (config.key, config.api_key) == (TOKEN, "anon-key-value")
    assert "anon-key-value" not in repr(config)


def test_a_project_key_is_its_own_apikey() -> None:
    env = {"JOB_ID": JOB, "SUPABASE_URL": "https://x", "SUPABASE_SERVICE_ROLE_KEY": "service", "SUPABASE_ANON_KEY": "a"}
    config = AgentConfig.from_env(env)
    assert config is not None and (config.key, config.api_key) == ("service", None)


@pytest.mark.parametrize(("present", "expected"), [(("SUPABASE_SERVICE_ROLE_KEY",), "service"), ((), "anon")])
def test_key_fallback_order(present: tuple[str, ...], expected: str) -> None:
    env = {"JOB_ID": JOB, "SUPABASE_URL": "https://x.supabase.co", "SUPABASE_KEY": "anon"}
    env.update({name: "service" for name in present})
    config = AgentConfig.from_env(env)
    assert config is not None and config.key == expected


def test_names_can_be_overridden() -> None:
    env = {
        "JOB_ID": JOB,
        "SUPABASE_URL": "https://x.supabase.co",
        "SUPABASE_KEY": "k" * 20,
        "LIVEPARAMS_SCHEMA": "training",
        "LIVEPARAMS_REQUESTS_TABLE": "requests",
        "LIVEPARAMS_OUTCOMES_RPC": "record_outcomes",
    }
    config = AgentConfig.from_env(env)
    assert config is not None
    assert (config.schema, config.requests_table, config.outcomes_rpc) == ("training", "requests", "record_outcomes")
    assert config.filter == f"job_id=eq.{JOB}"
    assert config.topic == f"liveparams-job-{JOB}"


def test_the_transport_is_postgres_changes_unless_broadcast_is_asked_for() -> None:
    env = {"JOB_ID": JOB, "SUPABASE_URL": "https://x.supabase.co", "SUPABASE_KEY": "k" * 20}
    default = AgentConfig.from_env(env)
    chosen = AgentConfig.from_env(env | {"LIVEPARAMS_TRANSPORT": " Broadcast "})
    assert default is not None and chosen is not None
    assert (default.transport, chosen.transport) == (Transport.POSTGRES_CHANGES, Transport.BROADCAST)
    assert chosen.requests_topic == f"job:{JOB}"
    by_name: dict[str, str] = {"job_id": JOB, "url": "https://x.supabase.co", "key": "k", "transport": "broadcast"}
    assert AgentConfig(**by_name).transport is Transport.BROADCAST  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "metrics"),
    [*[(v, True) for v in ("", "1", " ON ", "True", "yes")], *[(v, False) for v in ("0", "Off", "FALSE", " no ")]],
)
def test_metrics_are_switched_by_the_usual_yes_and_no_words(value: str, metrics: bool) -> None:
    env = {"JOB_ID": JOB, "SUPABASE_URL": "https://x.supabase.co", "SUPABASE_KEY": "k" * 20}
    config = AgentConfig.from_env(env | {"LIVEPARAMS_METRICS": value})
    assert config is not None and config.metrics is metrics


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "No JOB_ID found, runtime parameter updates disabled"),
        (
            {"JOB_ID": JOB, "SUPABASE_URL": "https://x.supabase.co", "SUPABASE_KEY": "k", "LIVEPARAMS_TRANSPORT": "ws"},
            "transport (LIVEPARAMS_TRANSPORT) must be postgres_changes or broadcast, got 'ws'",
        ),
        *(
            (
                {"JOB_ID": JOB, "SUPABASE_URL": "https://x.supabase.co", "SUPABASE_KEY": "k", "LIVEPARAMS_METRICS": v},
                f"LIVEPARAMS_METRICS must be on (1, on, true, yes) or off (0, off, false, no), got {v.strip()!r}",
            )
            for v in ("disabled", "none", "n", " offf ")
        ),
        (
            {"JOB_ID": JOB, "SUPABASE_KEY": "k"},
            "no SUPABASE_URL or NEXT_PUBLIC_SUPABASE_URL or SUPABASE_API_URL or API_URL found",
        ),
        (
            {"JOB_ID": JOB, "SUPABASE_URL": "https://x.supabase.co"},
            "no LIVEPARAMS_CREDENTIAL or LIVEPARAMS_TOKEN or SUPABASE_SERVICE_ROLE_KEY",
        ),
        ({"JOB_ID": "abc123", "SUPABASE_URL": "https://x.supabase.co", "SUPABASE_KEY": "k"}, "must be a UUID"),
    ],
)
def test_missing_or_invalid_config_disables_with_one_warning(
    env: dict[str, str], message: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assert AgentConfig.from_env(env) is None
    assert len(caplog.records) == 1
    assert message in caplog.records[0].getMessage()
    assert "disabled" in caplog.records[0].getMessage()


def test_repr_and_errors_never_show_the_key() -> None:
    config = AgentConfig(job_id=JOB, url="https://x.supabase.co", key=TOKEN)
    assert TOKEN[20:] not in repr(config)
    assert "key=" in repr(config)
    assert config.redact(f"wss://x/realtime/v1/websocket?apikey={TOKEN}") == "wss://x/realtime/v1/websocket?apikey=***"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"job_id": "nope"},
        {"url": "ftp://x"},
        {"key": ""},
        {"queue_size": 0},
        {"shutdown_timeout": -1.0},
    ],
)
def test_invalid_config_raises(kwargs: dict[str, object]) -> None:
    base: dict[str, object] = {"job_id": JOB, "url": "https://x.supabase.co", "key": "k"}
    with pytest.raises(ConfigError):
        AgentConfig(**(base | kwargs))  # type: ignore[arg-type]


def test_every_field_is_documented() -> None:
    assert all(help_text for help_text in AgentConfig.describe().values())


@pytest.mark.parametrize("field", ["key", "api_key", "credential"])
def test_a_credential_with_a_line_break_is_refused_without_showing_it(field: str) -> None:
    """`key=open("token").read()` keeps the line break, and a pasted `credential issue` block has two lines.
    Sent, the HTTP library would refuse the header and print its whole value in the error, so it is
    refused at once, and the message does not contain it."""
    secret = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.c2lnbmF0dXJl"
    valid: dict[str, str] = {"key": secret} if field == "key" else {"api_key": "sb_publishable_x", "credential": "r"}
    with pytest.raises(ConfigError, match=f"{field} is not a key") as refused:
        AgentConfig(job_id=JOB, url="https://x.supabase.co", **{**valid, field: f"{secret}\n"})
    assert secret not in str(refused.value)
