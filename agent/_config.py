"""Configuration of the update agent, from code or from the environment (:meth:`AgentConfig.from_env`)."""

from __future__ import annotations

import enum
import logging
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from liveparams._token_hints import trainer_token_problem
from liveparams._trainer_credential import CREDENTIAL_VAR, TrainerSecret, parse_credential
from liveparams.agent._exceptions import ConfigError
from liveparams.agent._requests import MAX_REQUEST_BYTES
from liveparams.environment import (
    PUBLIC_KEY_VARS,
    TRAINER_KEY_VARS,
    TRAINER_TOKEN_VAR,
    URL_VARS,
    first_set,
    is_header_safe,
    key_role,
)

__all__ = ["AgentConfig", "Transport", "job_topic", "requests_topic"]

logger = logging.getLogger(__name__)

DEFAULT_REQUESTS_TABLE = "parameter_update_requests"
DEFAULT_SHUTDOWN_TIMEOUT = 2.0
LEGACY_REFRESH_VAR = "LIVEPARAMS_REFRESH_TOKEN"  # the one-use credential before LIVEPARAMS_CREDENTIAL
METRICS_VAR = "LIVEPARAMS_METRICS"
# LIVEPARAMS_METRICS's values (any case); another one is refused, as other bad values are.
METRICS_SWITCH = dict.fromkeys(("1", "on", "true", "yes"), True) | dict.fromkeys(("0", "off", "false", "no"), False)
TRANSPORT_VAR = "LIVEPARAMS_TRANSPORT"


class Transport(str, enum.Enum):
    """How new requests are pushed to the agent (docs/internals.md, "Request transports").

    Either way the agent re-reads over REST after every (re)join and every ``resync_interval``,
    so what push loses is still taken once, in order.
    """

    POSTGRES_CHANGES = "postgres_changes"
    """``postgres_changes`` on the requests table, filtered by job: Realtime checks each change against every
    subscriber, on one thread (the default: it needs nothing but the table in the publication)."""
    BROADCAST = "broadcast"
    """Broadcast from Database on the private topic ``job:<id>`` (migration 20261207050000_request_broadcast.sql):
    Realtime sends each row to the topic's members only."""


# The lookup order is the one the CLI uses too (liveparams.environment).
_URL_VARS = URL_VARS
_KEY_VARS = TRAINER_KEY_VARS
_API_KEY_VARS = PUBLIC_KEY_VARS
# Optional overrides: environment variable -> AgentConfig field.
_NAME_VARS = {
    "LIVEPARAMS_SCHEMA": "schema",
    "LIVEPARAMS_REQUESTS_TABLE": "requests_table",
    "LIVEPARAMS_OUTCOMES_RPC": "outcomes_rpc",
}


@dataclass(frozen=True)
class AgentConfig:
    """Which job, how to authenticate, and the agent's limits.

    Every field is described by its ``help`` metadata (``AgentConfig.describe()`` lists them).
    ``repr()`` masks the keys.

    Environment variables read by :meth:`AgentConfig.from_env` (the field each one sets is in brackets):

    - ``JOB_ID`` [job_id]: the training job's row id (a UUID). Without it the agent is disabled.
    - ``SUPABASE_URL`` or ``API_URL`` (and the other names of ``liveparams.environment.URL_VARS``) [url]: the
      project URL, e.g. ``https://<ref>.supabase.co``.
    - ``LIVEPARAMS_TOKEN``, else a service key (``SUPABASE_SERVICE_ROLE_KEY``, ``SERVICE_ROLE_KEY``, ...),
      else ``SUPABASE_KEY`` [key]: a job-scoped token (preferred: it can only read this job and record
      outcomes on it), or a project key.
    - ``SUPABASE_ANON_KEY`` or ``ANON_KEY`` (or a publishable key) [api_key]: the project's public key,
      sent as ``apikey`` with a job token (hosted gateways only accept project keys there). Read only
      when ``LIVEPARAMS_TOKEN`` is the key.
    - ``LIVEPARAMS_CREDENTIAL`` [credential]: a trainer credential (``liveparams credential issue``), the
      preferred credential; it names its job and needs the public key below. (``LIVEPARAMS_REFRESH_TOKEN``,
      the older one-use refresh token, is no longer read: a warning says how to replace it.)
    - ``LIVEPARAMS_TRANSPORT`` [transport]: ``postgres_changes`` (default) or ``broadcast``.
    - ``LIVEPARAMS_METRICS`` [metrics]: ``on`` (default; or 1, true, yes) or ``off`` (or 0, false, no).
    - ``LIVEPARAMS_SCHEMA`` [schema], ``LIVEPARAMS_REQUESTS_TABLE`` [requests_table],
      ``LIVEPARAMS_OUTCOMES_RPC`` [outcomes_rpc]: names, for projects whose schema differs from the
      shipped migrations.
    """

    # > Which job, and how to reach it
    job_id: str = field(metadata={"help": "The job's row id in the table (a UUID). Env: JOB_ID."})
    url: str = field(metadata={"help": "Project URL. Env: SUPABASE_URL or API_URL (all names: docs/configuration.md)."})
    key: str = field(
        default="",
        repr=False,
        metadata={
            "help": "Job-scoped token (preferred) or project key; sent as apikey and bearer, never logged. "
            "Env: LIVEPARAMS_TOKEN, else SUPABASE_SERVICE_ROLE_KEY or SERVICE_ROLE_KEY, else SUPABASE_KEY."
        },
    )
    api_key: str | None = field(
        default=None,
        repr=False,
        metadata={
            "help": "Project anon/publishable key sent as apikey when key is a job token; None: key is the apikey. "
            "Env (with LIVEPARAMS_TOKEN only): SUPABASE_ANON_KEY or ANON_KEY (all names: docs/configuration.md)."
        },
    )
    credential: str | None = field(
        default=None,
        repr=False,
        metadata={
            "help": "A trainer credential (liveparams credential issue), used instead of key: the agent signs in "
            "with it at start and refreshes the session itself; it names its job, which must be job_id. Needs "
            "api_key. Never logged. Env: LIVEPARAMS_CREDENTIAL."
        },
    )
    schema: str = field(default="public", metadata={"help": "Schema of the table. Env: LIVEPARAMS_SCHEMA."})
    requests_table: str = field(
        default=DEFAULT_REQUESTS_TABLE,
        metadata={"help": "Table of requests, one row per request (subscribed to). Env: LIVEPARAMS_REQUESTS_TABLE."},
    )
    outcomes_rpc: str = field(
        default="record_parameter_update_outcomes",
        metadata={"help": "RPC (p_job_id, p_outcomes) that records outcomes. Env: LIVEPARAMS_OUTCOMES_RPC."},
    )
    transport: Transport = field(
        default=Transport.POSTGRES_CHANGES,
        metadata={
            "help": "How new requests are pushed: postgres_changes, or broadcast (Broadcast from Database on the "
            "private topic job:<id>; fewer messages for Realtime to route, same connections). Env: "
            "LIVEPARAMS_TRANSPORT."
        },
    )

    # > Limits
    queue_size: int = field(
        default=256,
        metadata={"help": "Validated requests held for the trainer; beyond it they wait in the table, none is lost."},
    )
    max_request_bytes: int = field(
        default=MAX_REQUEST_BYTES,
        metadata={"help": "A request whose compact JSON is larger is rejected (the RPC's limit)."},
    )
    shutdown_timeout: float = field(
        default=DEFAULT_SHUTDOWN_TIMEOUT,
        metadata={
            "help": "Seconds close() may take, flushing outcomes included; what is left is not recorded, and then "
            "the run is not ended (its requests stay pending)."
        },
    )

    # > Timing of the agent thread
    poll_interval: float = field(
        default=2.0,
        metadata={
            "help": "Seconds between REST re-reads while push is down (degraded); longer while the server fails "
            "(doubling, up to backoff_max) or answers slowly (ten times the last read's time, up to backoff_max)."
        },
    )
    resync_interval: float = field(
        default=30.0,
        metadata={
            "help": "While push is healthy, seconds after the last read or heartbeat answer before a safety REST "
            "re-read (the heartbeat answers with the job's newest request, so a change push lost is read at the "
            "next heartbeat; this bounds it when the heartbeat fails or the database predates that answer)."
        },
    )
    probe_interval: float = field(
        default=60.0,
        metadata={
            "help": "Seconds between liveness probes (a broadcast round trip on the channel). What push misses "
            "meanwhile is read at the next heartbeat, so this bounds how long push stays down, not a loss."
        },
    )
    probe_timeout: float = field(
        default=5.0,
        metadata={
            "help": "A probe unanswered for this long means push cannot be trusted: the agent polls, and keeps the "
            "socket for the late reply of a server that is only behind; it rebuilds once the server answers REST "
            "and the reply is still missing recovery_grace later."
        },
    )
    recovery_grace: float = field(
        default=12.0,
        metadata={
            "help": "Seconds the client may spend rejoining/reconnecting on its own, or an overdue probe's reply "
            "may take once the server answers REST again, before the client is rebuilt."
        },
    )
    heartbeat_interval: float = field(
        default=25.0,
        metadata={
            "help": "Seconds between heartbeats on the job row (trainer_seen_at); a failed one is retried after "
            "0.5 s, then at doubling gaps. The row goes stale after two of them plus 5 s "
            "(liveparams_trainer_stale_seconds() in the database, 55 s): a trainer whose machine vanished reads as "
            "gone within 55 s, and a beat that lands up to 30 s late does not make a live one look gone."
        },
    )
    backoff_initial: float = field(default=0.5, metadata={"help": "First rebuild delay, doubled per failure."})
    backoff_max: float = field(default=30.0, metadata={"help": "Longest rebuild delay (jitter added on top)."})
    outcome_batch_size: int = field(default=50, metadata={"help": "Outcomes per RPC call."})
    outcome_writes_per_second: int = field(default=5, metadata={"help": "Rate limit of outcome RPC calls."})

    # > Live metrics (docs/contracts.md, "Live metrics")
    metrics: bool = field(
        default=True,
        metadata={
            "help": "Send what the trainer logs (loss, learning rate, ...) to the job's owner. Env: "
            "LIVEPARAMS_METRICS=off (or 0, false, no) turns it off; another value than these and on/1/true/yes "
            "disables the agent with a warning."
        },
    )
    metrics_live_interval: float = field(
        default=1.0, metadata={"help": "Seconds between two live metrics messages (Realtime Broadcast)."}
    )
    metrics_history_interval: float = field(
        default=10.0, metadata={"help": "Seconds between two writes of the metrics history (record_training_metrics)."}
    )

    def __post_init__(self) -> None:
        try:
            uuid.UUID(self.job_id)
        except (ValueError, TypeError, AttributeError):
            raise ConfigError(f"job_id must be a UUID (the row id), got {self.job_id!r}") from None
        try:
            object.__setattr__(self, "transport", Transport(self.transport))  # also given as its name in code
        except ValueError:
            names = " or ".join(t.value for t in Transport)
            raise ConfigError(f"transport ({TRANSPORT_VAR}) must be {names}, got {self.transport!r}") from None
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"url must start with http:// or https://, got {self.url!r}")
        if not (self.key or self.credential) or self.api_key == "" or self.credential == "":
            raise ConfigError("key or credential (and api_key, when given) must not be empty")
        for name in ("key", "api_key", "credential"):
            value = getattr(self, name)
            if value and not is_header_safe(value):  # the value itself is never shown: it is a credential
                raise ConfigError(f"{name} is not a key: it holds spaces, line breaks or characters no key has")
        if self.credential:
            self._check_credential(self.credential)
        if self.key and key_role(self.key) == "anon":
            raise ConfigError(
                "the key is the project's public (anon) key, which can read no job: give the training process "
                f"a trainer credential ({CREDENTIAL_VAR}, from `liveparams credential issue <job id>`), "
                "a job token (LIVEPARAMS_TOKEN) or a service key"
            )
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
                raise ConfigError(f"{f.name} must be positive, got {value!r}")

    def _check_credential(self, credential: str) -> None:
        """The credential must be one, and for this job: refused here, before anything is sent or spent."""
        if not self.api_key:
            raise ConfigError("a credential needs api_key: the project's publishable (or anon) key")
        try:
            secret = parse_credential(credential)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if secret.job_id != str(uuid.UUID(self.job_id)):
            raise ConfigError(
                f"{CREDENTIAL_VAR} is the credential of job {secret.job_id}, but JOB_ID is {self.job_id}: "
                "nothing was sent; set the JOB_ID the credential was issued for, or issue one for this job"
            )

    @property
    def trainer_secret(self) -> TrainerSecret | None:
        """The trainer credential, read (``None`` with a fixed key)."""
        return parse_credential(self.credential) if self.credential else None

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr)
        api_key = None if self.api_key is None else _mask(self.api_key)
        credential = None if self.credential is None else "***"
        return f"AgentConfig({shown}, key={_mask(self.key)!r}, api_key={api_key!r}, credential={credential!r})"

    @property
    def filter(self) -> str:
        """The Realtime filter that selects the job's requests."""
        return f"job_id=eq.{self.job_id}"

    @property
    def topic(self) -> str:
        """The job's Realtime channel: the agent tracks its Presence there, UIs join it to see who is attached."""
        return job_topic(self.job_id)

    @property
    def requests_topic(self) -> str:
        """The private topic the database broadcasts the job's new requests on (``transport=broadcast``)."""
        return requests_topic(self.job_id)

    def redact(self, text: str) -> str:
        """``text`` with the key cut out, for messages built from third-party exceptions (URLs carry the key)."""
        trainer = self.trainer_secret
        password = trainer.password if trainer is not None else None
        for secret in (self.key, self.api_key, self.credential, password):
            if secret:
                text = text.replace(secret, "***")
        return text

    @classmethod
    def describe(cls) -> dict[str, str]:
        """Field name → help text, for docs and ``--help``."""
        return {f.name: f.metadata["help"] for f in fields(cls)}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AgentConfig | None:
        """Build a config from the environment, or return ``None`` after one warning if it is incomplete.

        ``None`` means "runtime parameter updates disabled": training runs on without them.
        """
        env = os.environ if environ is None else environ
        job_id = env.get("JOB_ID", "").strip()
        if not job_id:
            logger.warning("No JOB_ID found, runtime parameter updates disabled")
            return None
        url = first_set(env, _URL_VARS)
        credential = env.get(CREDENTIAL_VAR, "").strip()
        if not credential and env.get(LEGACY_REFRESH_VAR, "").strip():
            logger.warning(
                "LIVEPARAMS_REFRESH_TOKEN is no longer read (a refresh token works once, then breaks restarts), "
                "runtime parameter updates disabled: run `liveparams credential rotate %s` where the secret key is, "
                "and give the training process the LIVEPARAMS_CREDENTIAL it prints instead",
                job_id,
            )
            return None
        key = "" if credential else first_set(env, _KEY_VARS)
        key_vars = (CREDENTIAL_VAR, *_KEY_VARS)
        missing = [
            " or ".join(names) for names, value in ((_URL_VARS, url), (key_vars, key or credential)) if not value
        ]
        if missing:
            logger.warning(
                "JOB_ID is set but no %s found, runtime parameter updates disabled", " and no ".join(missing)
            )
            return None
        overrides: dict[str, Any] = {
            name: env[var].strip() for var, name in _NAME_VARS.items() if env.get(var, "").strip()
        }
        token = "" if credential else env.get(TRAINER_TOKEN_VAR, "").strip()
        problem = trainer_token_problem(token, job_id) if token else None
        if problem:  # said before anything is sent: the server's own refusal names no variable
            logger.warning("Invalid liveparams configuration (%s), runtime parameter updates disabled", problem)
            return None
        if credential or token:
            overrides["api_key"] = first_set(env, _API_KEY_VARS) or None
        if credential:
            overrides["credential"] = credential
        if env.get(TRANSPORT_VAR, "").strip():
            overrides["transport"] = env[TRANSPORT_VAR].strip().lower()
        try:
            if metrics := env.get(METRICS_VAR, "").strip():
                overrides["metrics"] = _metrics_switch(metrics)
            return cls(job_id=job_id, url=url.rstrip("/"), key=key, **overrides)
        except ConfigError as exc:
            logger.warning("Invalid liveparams configuration (%s), runtime parameter updates disabled", exc)
            return None


def _metrics_switch(value: str) -> bool:
    """``LIVEPARAMS_METRICS``'s value as on or off; a typo is refused, not read as "on"."""
    try:
        return METRICS_SWITCH[value.lower()]
    except KeyError:
        words = {on: ", ".join(k for k, v in METRICS_SWITCH.items() if v is on) for on in (True, False)}
        raise ConfigError(f"{METRICS_VAR} must be on ({words[True]}) or off ({words[False]}), got {value!r}") from None


def job_topic(job_id: str) -> str:
    """The Realtime topic of a job (docs/contracts.md): Presence of the attached trainer lives there."""
    return f"liveparams-job-{job_id}"


def requests_topic(job_id: str) -> str:
    """The private Realtime topic of a job's new requests (public.liveparams_requests_topic_job reads it back)."""
    return f"job:{job_id}"


def _mask(secret: str) -> str:
    """Enough of a key to tell two apart in a bug report, never enough to use it."""
    return f"{secret[:4]}…({len(secret)} chars)" if len(secret) > 8 else "***"
