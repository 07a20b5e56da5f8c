"""The bearer the agent presents: a fixed key or job token, or a trainer session it keeps fresh itself.

A trainer session (``AgentConfig.refresh_token``, issued by ``liveparams credential issue``)
is exchanged for a short-lived access token at start, and again before each one expires.
The agent owns that loop instead of leaving it to supabase-py, whose auto refresh leaves
10 s and swallows every failure but a network one, so a revoked credential would go
unnoticed (docs/internals.md, "Trainer sessions"). Rules that shape it:

- Each refresh rotates the refresh token, and a spent token presented again after the
  reuse interval revokes the whole session. So one refresh runs at a time, and the latest
  token is written to the session file (0600, atomic rename) before anything else, where
  a restarted trainer picks it up instead of the spent one in its environment.
- A refresh refused because the credential is gone (revoked, its Auth user deleted or
  banned, the session ended or replayed) makes the credential *revoked*: one warning,
  the agent stops asking, training goes on. Anything else (network, 5xx, rate limits)
  is retried with backoff until it works.
- New access tokens go to whoever registered with :meth:`Credential.on_token` (the
  Realtime channel, which is sent the token with ``set_auth``); REST reads :meth:`bearer`
  before each call.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import jwt
from supabase_auth import AsyncGoTrueClient
from supabase_auth.errors import AuthApiError, AuthError
from supabase_auth.types import Session

from liveparams.agent._config import AgentConfig
from liveparams.agent._exceptions import RestError
from liveparams.agent._outcomes import backoff_delay

__all__ = ["REVOKED_CODES", "Credential", "default_session_file"]

logger = logging.getLogger(__name__)

# Auth's answers that mean the refresh token will never work again (supabase/auth internal/tokens/service.go).
REVOKED_CODES = frozenset(
    {
        "refresh_token_not_found",
        "refresh_token_already_used",
        "user_banned",
        "user_not_found",
        "session_not_found",
        "session_expired",
    }
)
MIN_MARGIN_S = 60.0  # refresh at least this long before expiry when the lifetime allows
MARGIN_SHARE = 0.25  # ... and at least this share of the lifetime before it, at most half of it
RETRY_INITIAL_S = 0.5  # backoff of failed refreshes: doubled per failure, up to RETRY_MAX_S
RETRY_MAX_S = 30.0
REFRESH_TIMEOUT_S = 10.0
EXPIRY_NOTICE_S = 24 * 3600  # a fixed token expiring sooner than this is worth a warning at start

TokenListener = Callable[[str], Awaitable[None]]


def default_session_file(job_id: str) -> Path:
    """Where the latest refresh token of a job's session is kept: ``$XDG_STATE_HOME/liveparams`` or
    ``~/.local/state/liveparams``, one file per job."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "liveparams" / f"session-{job_id}.json"


class Credential:
    """What the agent authenticates with, on the agent's event loop.

    Args:
        config (`AgentConfig`): ``key`` (fixed) or ``refresh_token`` (a trainer session).
    """

    def __init__(self, config: AgentConfig) -> None:
        self._config = config
        self._session: Session | None = None
        self._received_at = 0.0  # monotonic time the current access token arrived
        self._lock = asyncio.Lock()
        self._exchanging: asyncio.Future[Session] | None = None  # the refresh in flight, see settle()
        self._listeners: list[TokenListener] = []
        self._file = Path(config.session_file) if config.session_file else default_session_file(config.job_id)
        self._origin = hashlib.sha256((config.refresh_token or "").encode()).hexdigest()
        self._file_warned = False
        self.revoked = False

    @property
    def refreshable(self) -> bool:
        """Whether this is a trainer session (refreshed by :meth:`run`) rather than a fixed token."""
        return self._config.refresh_token is not None

    @property
    def api_key(self) -> str:
        """The ``apikey`` every request carries: the project's public key, or the fixed key itself."""
        return self._config.api_key or self._config.key

    def on_token(self, listener: TokenListener) -> None:
        """Call ``listener(access_token)`` after every refresh."""
        self._listeners.append(listener)

    def redact(self, text: str) -> str:
        """``text`` without the configured secrets or the current session's tokens."""
        text = self._config.redact(text)
        if self._session is not None:
            for secret in (self._session.access_token, self._session.refresh_token):
                text = text.replace(secret, "***")
        return text

    def warn_if_expiring(self) -> None:
        """A fixed token cannot be refreshed: say once, at start, when it expires within EXPIRY_NOTICE_S."""
        if self.refreshable:
            return
        try:
            claims = jwt.decode(self._config.key, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            return  # an opaque key (sb_...) or not a JWT: nothing expires
        exp = claims.get("exp") if isinstance(claims, dict) else None
        if isinstance(exp, (int, float)) and exp - time.time() < EXPIRY_NOTICE_S:
            logger.warning(
                "The token expires in %.1f h and cannot be refreshed; after that nothing is received or recorded. "
                "Use a trainer session (`liveparams credential issue`) for runs longer than that",
                max(exp - time.time(), 0.0) / 3600,
            )

    async def bearer(self) -> str:
        """The token to present now; the first call of a session signs in (raises :class:`RestError` if it cannot)."""
        if not self.refreshable:
            return self._config.key
        if self._session is None and not await self.refresh():
            state = "was revoked" if self.revoked else "could not be refreshed yet"
            raise RestError(f"the trainer session {state}", transient=not self.revoked)
        assert self._session is not None
        return self._session.access_token

    async def refresh(self, stale: str | None = None) -> bool:
        """Exchange the refresh token for a new session now; return whether a usable token is there.

        ``stale``: the access token to replace (``None``: there is none yet). When another refresh has
        replaced it meanwhile, nothing more is done, so concurrent callers cause one refresh.
        """
        if not self.refreshable or self.revoked:
            return False
        async with self._lock:
            if self.revoked:  # decided while this caller waited for the lock
                return False
            if self._session is not None and self._session.access_token != stale:
                return True
            # Shielded: once sent, the server may already have spent the old refresh token, so the
            # answer must reach the session file even if the caller is cancelled (see settle()).
            # A cancelled caller releases the lock with its exchange still out: the next one waits
            # for that answer rather than presenting the same refresh token a second time.
            if self._exchanging is None or self._exchanging.done():
                self._exchanging = asyncio.ensure_future(self._exchange_and_keep(self._refresh_token()))
            try:
                session = await asyncio.shield(self._exchanging)
            except AuthApiError as exc:
                if exc.code in REVOKED_CODES:
                    self._revoke(exc)
                else:
                    logger.warning("Refreshing the trainer session failed (%s: %s); retrying", exc.code, exc.message)
                return False
            except AuthError as exc:  # AuthRetryableError: the network, 5xx
                logger.warning("Refreshing the trainer session failed (%s); retrying", self.redact(exc.message))
                return False
        logger.debug("Trainer session refreshed; next refresh in %.0fs", self.refresh_due_in())
        for listener in list(self._listeners):
            try:
                await listener(session.access_token)
            except Exception:  # one listener must not keep the token from the others
                logger.exception("Handing the refreshed token on failed")
        return True

    def refresh_due_in(self) -> float:
        """Seconds until the current access token should be replaced (0: now)."""
        if self._session is None:
            return 0.0
        lifetime = float(self._session.expires_in)
        margin = min(max(MIN_MARGIN_S, MARGIN_SHARE * lifetime), lifetime / 2)
        return max(self._received_at + lifetime - margin - time.monotonic(), 0.0)

    async def run(self) -> None:
        """Keep the session fresh until cancelled or revoked (a fixed token returns at once)."""
        failures = 0
        while self.refreshable and not self.revoked:
            await asyncio.sleep(self.refresh_due_in())
            stale = self._session.access_token if self._session is not None else None
            if await self.refresh(stale):
                failures = 0
            elif not self.revoked:
                failures += 1
                await asyncio.sleep(backoff_delay(failures, RETRY_INITIAL_S, RETRY_MAX_S))

    async def settle(self, timeout: float) -> None:
        """Let a refresh in flight finish (at most ``timeout``), so that close() keeps its answer.

        Closing cancels the refresh loop; a refresh token sent just before is spent server-side,
        and a restarted trainer could only resume from the new one the answer carries.
        """
        exchanging = self._exchanging
        if exchanging is not None and not exchanging.done():
            await asyncio.wait({exchanging}, timeout=max(timeout, 0.0))
            if exchanging.done() and not exchanging.cancelled() and exchanging.exception() is not None:
                logger.debug(
                    "The last refresh of the trainer session failed: %s", self.redact(repr(exchanging.exception()))
                )

    # -- the refresh token --------------------------------------------------------------------

    async def _exchange_and_keep(self, refresh_token: str) -> Session:
        session = await self._exchange(refresh_token)
        self._session, self._received_at = session, time.monotonic()
        self._save(session.refresh_token)
        return session

    async def _exchange(self, refresh_token: str) -> Session:
        async with httpx.AsyncClient(timeout=REFRESH_TIMEOUT_S) as http:
            auth = AsyncGoTrueClient(
                url=f"{self._config.url}/auth/v1",
                headers={"apikey": self.api_key},
                auto_refresh_token=False,
                persist_session=False,
                http_client=http,
            )
            response = await auth.refresh_session(refresh_token)
        if response.session is None:
            raise AuthError("the refresh answered without a session", None)
        return response.session

    def _refresh_token(self) -> str:
        """The newest refresh token: the session's, else the session file's when it continues this
        credential, else the configured one."""
        if self._session is not None:
            return self._session.refresh_token
        try:
            saved = json.loads(self._file.read_text())
            if saved.get("origin") == self._origin and saved.get("job_id") == self._config.job_id:
                return str(saved["refresh_token"])
        except (OSError, ValueError, KeyError, AttributeError):
            pass
        assert self._config.refresh_token is not None
        return self._config.refresh_token

    def _save(self, refresh_token: str) -> None:
        """Write the latest refresh token where a restarted trainer finds it (owner-only, replaced atomically)."""
        record = {"job_id": self._config.job_id, "origin": self._origin, "refresh_token": refresh_token}
        try:
            self._file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=self._file.parent, prefix=".session-")
            with os.fdopen(fd, "w") as out:  # mkstemp creates it 0600
                json.dump(record, out)
            os.replace(tmp, self._file)
        except OSError as exc:
            if not self._file_warned:
                logger.warning(
                    "Could not keep the trainer session in %s (%s); a restarted trainer will need a new credential",
                    self._file,
                    exc.strerror or exc,
                )
            self._file_warned = True

    def _revoke(self, exc: AuthApiError) -> None:
        if self.revoked:  # said once, however many calls learn it
            return
        self.revoked = True
        logger.warning(
            "The trainer credential was revoked (%s); runtime parameter updates stopped, training goes on. "
            "Issue a new one with `liveparams credential issue`",
            exc.code,
        )
