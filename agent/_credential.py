"""The bearer the agent presents: a fixed key or job token, or a trainer session it keeps fresh itself.

A trainer credential (``AgentConfig.credential``, ``LIVEPARAMS_CREDENTIAL``, issued by
``liveparams credential issue``) is the password of the job's Auth user. The agent signs in
with it at start (the password grant), which makes a new Auth session of its own, and
refreshes that session before each access token expires. The agent owns that loop instead of
leaving it to supabase-py, whose auto refresh leaves 10 s and swallows every failure but a
network one, so a revoked credential would go unnoticed (docs/internals.md, "Trainer sessions").
Rules that shape it:

- Nothing is kept on disk: a restarted trainer, a new container or another machine signs in
  again, and several processes holding the same credential each have their own session, so
  none ends another's through Auth's refresh-token reuse detection.
- Each refresh rotates the session's refresh token, so one refresh runs at a time.
- A session that ends (logged out, replayed, expired by the project's session limits) is
  replaced by a new sign-in. A sign-in refused because the credential is gone (revoked or
  rotated: its Auth user is deleted) makes the credential *revoked*: one warning, the agent
  stops asking, training goes on. Anything else (network, 5xx, rate limits) is retried with
  backoff until it works.
- New access tokens go to whoever registered with :meth:`Credential.on_token` (the
  Realtime channel, which is sent the token with ``set_auth``); REST reads :meth:`bearer`
  before each call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import jwt
from supabase_auth import AsyncGoTrueClient
from supabase_auth.errors import AuthApiError, AuthError
from supabase_auth.types import AuthResponse, Session

from liveparams._supabase import http_client
from liveparams.agent._config import AgentConfig
from liveparams.agent._exceptions import RestError
from liveparams.agent._outcomes import backoff_delay

__all__ = ["Credential", "refresh_margin"]

logger = logging.getLogger(__name__)

# Auth's answers to a refresh that mean this session is over, though the credential may not be
# (supabase/auth internal/api/token.go, internal/tokens/service.go): sign in again.
SESSION_GONE_CODES = frozenset(
    {"refresh_token_not_found", "refresh_token_already_used", "session_not_found", "session_expired"}
)
# Auth's answers to the password grant that mean the credential itself is gone (revoked or rotated).
CREDENTIAL_GONE_CODES = frozenset({"invalid_credentials", "user_banned", "user_not_found"})
MIN_MARGIN_S = 60.0  # refresh at least this long before expiry when the lifetime allows
MARGIN_SHARE = 0.25  # ... and at least this share of the lifetime before it, at most half of it
RETRY_INITIAL_S = 0.5  # backoff of failed refreshes: doubled per failure, up to RETRY_MAX_S
RETRY_MAX_S = 30.0
REFRESH_TIMEOUT_S = 10.0
EXPIRY_NOTICE_S = 24 * 3600  # a fixed token expiring sooner than this is worth a warning at start

TokenListener = Callable[[str], Awaitable[None]]


def refresh_margin(lifetime: float) -> float:
    """How long before an access token of ``lifetime`` seconds expires to replace it (the CLI's stored
    sign-in uses the same rule)."""
    return min(max(MIN_MARGIN_S, MARGIN_SHARE * lifetime), lifetime / 2)


class Credential:
    """What the agent authenticates with, on the agent's event loop.

    Args:
        config (`AgentConfig`): ``key`` (fixed) or ``credential`` (a trainer credential).
    """

    def __init__(self, config: AgentConfig) -> None:
        self._config = config
        self._secret = config.trainer_secret
        self._session: Session | None = None
        self._received_at = 0.0  # monotonic time the current access token arrived
        self._lock = asyncio.Lock()
        self._listeners: list[TokenListener] = []
        self.revoked = False
        self._expires_at = None if self.refreshable else _expiry(config.key)  # a fixed JWT's `exp`

    @property
    def refreshable(self) -> bool:
        """Whether this is a trainer session (refreshed by :meth:`run`) rather than a fixed token."""
        return self._secret is not None

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

    @property
    def expired(self) -> bool:
        """Whether this is a fixed token past its expiry: it cannot be refreshed, so nothing more is received."""
        return self._expires_at is not None and time.time() >= self._expires_at

    def warn_if_expiring(self) -> None:
        """A fixed token cannot be refreshed: say once, at start, when it expires within EXPIRY_NOTICE_S."""
        exp = self._expires_at
        if exp is not None and exp - time.time() < EXPIRY_NOTICE_S:
            logger.warning(
                "The token expires in %.1f h and cannot be refreshed; after that nothing is received or recorded. "
                "Use a trainer credential (`liveparams credential issue`) for runs longer than that",
                max(exp - time.time(), 0.0) / 3600,
            )

    async def bearer(self) -> str:
        """The token to present now; the first call of a session signs in (raises :class:`RestError` if it cannot)."""
        if not self.refreshable:
            return self._config.key
        if self._session is None and not await self.refresh():
            state = "was revoked" if self.revoked else "could not sign in yet"
            raise RestError(f"the trainer credential {state}", transient=not self.revoked)
        assert self._session is not None
        return self._session.access_token

    async def refresh(self, stale: str | None = None) -> bool:
        """Replace the access token now (sign in first when there is no session); return whether a usable
        token is there.

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
            try:
                session = await self._renew()
            except AuthApiError as exc:
                logger.warning("Refreshing the trainer session failed (%s: %s); retrying", exc.code, exc.message)
                return False
            except AuthError as exc:  # AuthRetryableError: the network, 5xx
                logger.warning("Refreshing the trainer session failed (%s); retrying", self.redact(exc.message))
                return False
            if session is None:
                return False
            self._session, self._received_at = session, time.monotonic()
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
        return max(self._received_at + lifetime - refresh_margin(lifetime) - time.monotonic(), 0.0)

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

    # -- Auth --------------------------------------------------------------------------------

    async def _renew(self) -> Session | None:
        """A new session: the current one refreshed, else a new sign-in; ``None`` once the credential is gone."""
        async with http_client(REFRESH_TIMEOUT_S) as http:
            auth = AsyncGoTrueClient(
                url=f"{self._config.url}/auth/v1",
                headers={"apikey": self.api_key},
                auto_refresh_token=False,
                persist_session=False,
                http_client=http,
            )
            if self._session is not None:
                try:
                    return _session_of(await auth.refresh_session(self._session.refresh_token))
                except AuthApiError as exc:
                    if exc.code in CREDENTIAL_GONE_CODES:  # banned, or deleted while the session lived
                        self._revoke(exc.code)
                        return None
                    if exc.code not in SESSION_GONE_CODES:
                        raise
                    logger.info("The trainer session ended (%s); signing in again with the credential", exc.code)
            assert self._secret is not None
            try:
                response = await auth.sign_in_with_password(
                    {"email": self._secret.email, "password": self._secret.password}
                )
            except AuthApiError as exc:
                if exc.code in CREDENTIAL_GONE_CODES or exc.message == "Invalid login credentials":
                    self._revoke(exc.code or "invalid_credentials")
                    return None
                raise
            return _session_of(response)

    def _revoke(self, code: str) -> None:
        self.revoked = True
        logger.warning(
            "The trainer credential was revoked or rotated (%s); runtime parameter updates stopped, training goes "
            "on. Issue a new one with `liveparams credential issue`",
            code,
        )


def _expiry(key: str) -> float | None:
    """When a fixed key expires (its JWT ``exp``), or None: an opaque key (sb_...), not a JWT, or no ``exp``."""
    try:
        claims = jwt.decode(key, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None


def _session_of(response: AuthResponse) -> Session:
    if response.session is None:
        raise AuthError("Auth answered without a session", None)
    return response.session
