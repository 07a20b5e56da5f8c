"""REST access to the job through the official ``supabase`` client: requests, outcomes, the trainer's state.

Errors from the client are translated at each call, by the package's one translator
(``liveparams._supabase.mapped_errors``), into :class:`RestError` with ``transient`` set
when a retry can succeed, so callers never see postgrest or httpx exceptions.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
from postgrest.exceptions import APIError
from supabase import AsyncClient

from liveparams._supabase import ClientFailure, create_client, http_client, mapped_errors
from liveparams._token_hints import TRAINER_KEY, refusal_hint
from liveparams._trainer_credential import HOW_TO_GET_ONE
from liveparams.agent._config import AgentConfig
from liveparams.agent._credential import Credential
from liveparams.agent._exceptions import RestError
from liveparams.contract import RestartRecord

__all__ = ["RestClient"]

REQUEST_TIMEOUT = 10.0  # seconds per REST call; close() cuts a pending one at its own deadline
# An idle connection is kept this much longer than the heartbeat's gap, so that an idle agent's heartbeat
# reuses it: a new connection per heartbeat cost more CPU than the call (docs/benchmarks.md, "Idle agent").
KEEPALIVE_MARGIN = 20.0

logger = logging.getLogger(__name__)

# PostgREST refusing the bearer itself (expired, bad signature): 301 before v12.2, 303 ("JWT expired") after.
JWT_REFUSED_CODES = ("PGRST301", "PGRST303")


def _rest_error(what: str, config: AgentConfig) -> Callable[[ClientFailure], RestError]:
    """How a failed call reads in the agent's log: what it was doing, the server's answer (keys redacted)."""

    def to_error(failure: ClientFailure) -> RestError:
        if not failure.answered:
            return RestError(config.redact(f"{what}: {failure.kind} {failure.message}".rstrip()), transient=True)
        # A fixed key the server refuses (bad signature, expired) gets the hint; a session is refreshed instead.
        hint = None if config.credential else refusal_hint(failure.code, failure.message, TRAINER_KEY, HOW_TO_GET_ONE)
        message = f"{what}: {hint}" if hint else config.redact(f"{what}: {failure.code or 'error'} {failure.message}")
        return RestError(message.rstrip(), transient=failure.transient)

    return to_error


class RestClient:
    """Reads the job's requests, records outcomes and the trainer's state. Lives on the agent's event loop.

    A call whose token PostgREST refuses (expired) is made once more after a refresh of the trainer
    session, so an outcome is never dropped for that; while a session can still be refreshed, the
    refusal is transient (the caller retries), never final.

    Args:
        config (`AgentConfig`): where the row is.
        credential (`Credential`): the bearer to present.
    """

    def __init__(self, config: AgentConfig, credential: Credential) -> None:
        self._config = config
        self._credential = credential
        self._client: AsyncClient | None = None
        self._bearer = ""  # the token self._client was built with
        self._http: httpx.AsyncClient | None = None
        # The re-reader and the outcome writer may both make the first call: build one client, not two.
        self._building = asyncio.Lock()
        self.answered_at: float | None = None
        """When (``time.monotonic()``) a call last got an answer that was not a failure of the server
        (a result or a refusal): whether the server is answering at all."""

    async def _get(self, bearer: str) -> AsyncClient:
        if self._client is not None and self._bearer == bearer:
            return self._client
        async with self._building:
            if self._client is None or self._bearer != bearer:
                self._http = self._http or self._new_http()
                cfg = self._config
                self._client = await create_client(
                    cfg.url, self._credential.api_key, bearer, schema=cfg.schema, http_client=self._http
                )
                self._bearer = bearer
            return self._client

    async def _rpc(self, what: str, function: str, args: dict[str, Any]) -> Any:
        """Call ``function``; once more after a refresh of the trainer session if its token was refused."""
        credential = self._credential
        refreshed = False
        while True:
            bearer = await credential.bearer()
            try:
                with mapped_errors(_rest_error(what, self._config)):
                    client = await self._get(bearer)
                    data = (await client.rpc(function, args).execute()).data
                self.answered_at = time.monotonic()
                return data
            except RestError as exc:
                if not exc.transient:  # a refusal is an answer too: the server is up
                    self.answered_at = time.monotonic()
                cause = exc.__cause__
                if not (credential.refreshable and isinstance(cause, APIError) and cause.code in JWT_REFUSED_CODES):
                    raise
                if not refreshed and await credential.refresh(stale=bearer):
                    refreshed = True
                    logger.info("The trainer session's token was refused (%s); refreshed it, trying again", cause.code)
                    continue
                raise RestError(str(exc), transient=not credential.revoked) from cause

    async def read_requests(
        self, after_seq: int | None, replay_after_step: int | None, limit: int
    ) -> dict[str, Any] | None:
        """The job's requests after ``after_seq`` (``read_parameter_update_requests``), or ``None`` if the
        job is not visible to this key. Only new rows travel, however long the job's history.
        """
        args = {
            "p_job_id": self._config.job_id,
            "p_after_seq": after_seq,
            "p_replay_after_step": replay_after_step,
            "p_limit": limit,
        }
        data = await self._rpc("reading the job's requests", "read_parameter_update_requests", args)
        return data if isinstance(data, dict) else None

    async def record_outcomes(self, outcomes: dict[str, dict[str, Any]]) -> None:
        """Store ``{request id: outcome row}`` through the outcomes RPC (its reply names only what it stored)."""
        cfg = self._config
        await self._rpc("recording outcomes", cfg.outcomes_rpc, {"p_job_id": cfg.job_id, "p_outcomes": outcomes})

    async def record_trainer_state(self, state: str, step: int | None = None) -> int | None:
        """Store the trainer's attachment and ``step`` on the job row (``record_trainer_state``); return the seq of the
        job's newest request (0: none), which tells the heartbeat whether push missed one, or ``None`` from a
        database before 20261207060000_heartbeat_latest_seq.sql (the function returned nothing).
        """
        args = {"p_job_id": self._config.job_id, "p_state": state, "p_step": step}
        latest = await self._rpc("recording the trainer's state", "record_trainer_state", args)
        return latest if isinstance(latest, int) and not isinstance(latest, bool) else None

    async def record_trainer_restart(self, record: RestartRecord) -> None:
        """Store the last in-process restart or rewind on the job row (``record_trainer_restart``)."""
        args = {"p_job_id": self._config.job_id, **record.to_args()}
        await self._rpc("recording the trainer's restart", "record_trainer_restart", args)

    async def record_metrics(self, points: list[dict[str, Any]]) -> None:
        """Store metric points (``record_training_metrics``, which keeps the job's history bounded)."""
        args = {"p_job_id": self._config.job_id, "p_points": points}
        await self._rpc("recording metrics", "record_training_metrics", args)

    async def broadcast(self, topic: str, event: str, payload: dict[str, Any]) -> None:
        """Send one private Broadcast message over Realtime's REST endpoint (no channel to join or keep).

        The server answers 202 whether or not the topic's write policy let it through (a refused
        private message is dropped there, silently): only the transport and the bearer can fail here.
        """
        bearer = await self._credential.bearer()
        message = {"topic": topic, "event": event, "payload": payload, "private": True}
        headers = {"apikey": self._credential.api_key, "Authorization": f"Bearer {bearer}"}
        with mapped_errors(_rest_error("broadcasting metrics", self._config)):
            self._http = self._http or self._new_http()
            url = f"{self._config.url}/realtime/v1/api/broadcast"
            response = await self._http.post(url, json={"messages": [message]}, headers=headers)
        if response.status_code >= 300:
            raise RestError(f"broadcasting metrics: HTTP {response.status_code}", transient=response.status_code >= 500)

    def _new_http(self) -> httpx.AsyncClient:
        return http_client(REQUEST_TIMEOUT, keepalive=self._config.heartbeat_interval + KEEPALIVE_MARGIN)

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        http, self._http, self._client = self._http, None, None
        if http is not None:
            await http.aclose()
