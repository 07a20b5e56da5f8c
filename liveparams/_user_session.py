"""The person's sign-in, kept between commands as ``gh auth login`` and ``supabase login`` do.

``liveparams user login`` (and ``user create``) store the Auth session in
``$XDG_CONFIG_HOME/liveparams/session.json`` (default ``~/.config/liveparams``), mode 0600,
one entry per project URL; every command that acts as a person then uses it, refreshed when
its access token is due, and ``user logout`` ends it. ``LIVEPARAMS_USER_TOKEN`` still wins.

Each refresh rotates the refresh token, and a spent one presented again after Auth's reuse
interval ends the whole session. Several commands may run at once (``watch`` in one terminal,
``set`` in another), so a refresh is done under a lock on the file, by whoever finds the token
due first, and written back before the lock is released; the others then read the new one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from supabase_auth import SyncGoTrueClient
from supabase_auth.types import Session

from liveparams._exceptions import SignInError
from liveparams._supabase import CLIENT_ERRORS, ClientFailure, mapped_errors
from liveparams._token_hints import USER_SIGN_IN
from liveparams.agent._credential import SESSION_GONE_CODES, refresh_margin

__all__ = ["SignIn", "SignInError", "keep", "session_file"]

FILE_NAME = "session.json"
TIMEOUT_S = 10.0


def session_file(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/liveparams/session.json``, else ``~/.config/liveparams/session.json``."""
    env = os.environ if environ is None else environ
    home = env.get("HOME") or os.path.expanduser("~")
    return Path(env.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")) / "liveparams" / FILE_NAME


@dataclass
class _Entry:
    """One project's stored session. ``api_key`` is the public key it was signed in with (not a secret)."""

    email: str
    api_key: str = field(repr=False)
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: float
    received_at: float  # wall-clock time the access token arrived: other processes read it

    def due_in(self) -> float:
        return self.received_at + self.expires_in - refresh_margin(self.expires_in) - time.time()


class SignIn:
    """The stored sign-in of one project: a fresh access token on demand (:meth:`access_token`)."""

    def __init__(self, url: str, path: Path, entry: _Entry) -> None:
        self.url = url
        self._path = path
        self._entry = entry

    @classmethod
    def load(cls, url: str, environ: Mapping[str, str] | None = None) -> SignIn | None:
        """The sign-in stored for ``url``, or ``None``."""
        path = session_file(environ)
        entry = _read(path).get(url)
        return cls(url, path, entry) if entry else None

    @property
    def email(self) -> str:
        return self._entry.email

    @property
    def api_key(self) -> str:
        return self._entry.api_key

    def refresh_due_in(self) -> float:
        """Seconds until the access token held now should be replaced (0: now)."""
        return max(self._entry.due_in(), 0.0)

    def access_token(self) -> str:
        """A token with time left: the stored one, or a refreshed one (also stored). Blocks on the network."""
        if self._entry.due_in() > 0:
            return self._entry.access_token
        with _locked(self._path):
            stored = _read(self._path).get(self.url)
            if not stored:
                raise SignInError(f"you are signed out of {self.url}: {USER_SIGN_IN}")
            self._entry = stored
            if self._entry.due_in() <= 0:  # nobody else refreshed it meanwhile
                self._entry = self._refreshed()
                _write(self._path, {**_projects(self._path), self.url: asdict(self._entry)})
        return self._entry.access_token

    def log_out(self) -> None:
        """End the session at Auth (its refresh token stops working) and forget it here. Auth's part is best
        effort: a session already ended, or an unreachable Auth, still leaves the person signed out here."""
        with contextlib.suppress(SignInError, *CLIENT_ERRORS):
            token = self.access_token()  # Auth's logout takes a live access token
            with contextlib.closing(_auth(self.url, self.api_key)) as auth:
                auth.admin.sign_out(token, "local")
        with _locked(self._path):
            stored = _projects(self._path)
            if stored.pop(self.url, None) is not None:
                _write(self._path, stored)

    def _refreshed(self) -> _Entry:
        auth = _auth(self.url, self._entry.api_key)
        with mapped_errors(self._refresh_refused, chain=False), contextlib.closing(auth):
            session = auth.refresh_session(self._entry.refresh_token).session
        if session is None:
            raise SignInError(f"refreshing your sign-in answered without a session: {USER_SIGN_IN}")
        return _entry(self._entry.email, self._entry.api_key, session)

    def _refresh_refused(self, failure: ClientFailure) -> SignInError:
        """Why a refresh failed; a session Auth has ended is forgotten here too."""
        if not (failure.from_auth and failure.answered):
            return SignInError(f"refreshing your sign-in failed: cannot reach {self.url} ({failure.message})")
        if failure.code in SESSION_GONE_CODES or failure.code == "user_not_found":
            _write(self._path, {k: v for k, v in _projects(self._path).items() if k != self.url})
            return SignInError(f"your sign-in as {self.email} on {self.url} has ended ({failure.code}): {USER_SIGN_IN}")
        return SignInError(f"refreshing your sign-in failed: {failure.message} (Auth)")


def keep(url: str, api_key: str, email: str, session: Session, environ: Mapping[str, str] | None = None) -> Path:
    """Store ``session`` as the sign-in for ``url`` (replacing any); returns the file."""
    path = session_file(environ)
    with _locked(path):
        _write(path, {**_projects(path), url: asdict(_entry(email, api_key, session))})
    return path


def _entry(email: str, api_key: str, session: Session) -> _Entry:
    return _Entry(email, api_key, session.access_token, session.refresh_token, float(session.expires_in), time.time())


def _auth(url: str, api_key: str) -> SyncGoTrueClient:
    return SyncGoTrueClient(
        url=f"{url}/auth/v1",
        headers={"apikey": api_key},
        auto_refresh_token=False,
        persist_session=False,
        http_client=httpx.Client(timeout=TIMEOUT_S),
    )


def _projects(path: Path) -> dict[str, Any]:
    """The file's entries as stored (URL -> fields); ``{}`` for a missing or unreadable file."""
    try:
        projects = json.loads(path.read_text()).get("projects")
    except (OSError, ValueError, AttributeError):
        return {}
    return projects if isinstance(projects, dict) else {}


def _read(path: Path) -> dict[str, _Entry]:
    """The well-formed entries of the file; one written by another version, or damaged, is left out."""
    entries = {}
    for url, fields in _projects(path).items():
        with contextlib.suppress(TypeError):
            entries[url] = _Entry(**fields)
    return entries


def _write(path: Path, projects: dict[str, Any]) -> None:
    """Replace the file atomically; it is created 0600 (mkstemp) in a 0700 folder."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".session-")
    with os.fdopen(fd, "w") as out:
        json.dump({"projects": projects}, out)
    os.replace(tmp, path)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold the lock that orders every read-refresh-write of the file, across processes."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(path.parent / f".{FILE_NAME}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
