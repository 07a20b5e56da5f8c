"""The web panel's local server: the built single-page app plus a ``config.json`` saying where the project is.

The panel itself (``panel/`` in the repository, built into ``liveparams/panel-dist/``
by ``scripts/setup.sh``) talks to Supabase directly from the browser with the public
key and the person's own sign-in; RLS decides what it sees. This server only hands
out static files and the project URL with its public key, so it never holds a secret:
a service key is refused rather than sent to a browser. The same files work on any
static host with a ``config.json`` of their own (docs/panel.md).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from liveparams.environment import PUBLIC_KEY_VARS, URL_VARS, first_set, is_header_safe, key_role
from liveparams.jobs import JobError, check_url

ASSETS = Path(str(files("liveparams") / "panel-dist"))
BUILD_HINT = (
    "the panel is not built in this checkout: run `bash scripts/setup.sh` "
    "(or `npm install && node panel/build.mjs`), or install the liveparams wheel, which ships it"
)
DEFAULT_PORT = 8787


@dataclass(frozen=True)
class PanelConfig:
    """What the browser is told (``config.json``): the project URL and its public (anon/publishable) key."""

    url: str
    key: str

    @classmethod
    def from_env(cls, env: dict[str, str], url: str | None = None, key: str | None = None) -> PanelConfig | None:
        """From the options, else the CLI's environment names; ``None`` when neither names a project
        (the panel then asks in a form). A service key is refused: the browser must never get it."""
        url = url or first_set(env, URL_VARS)
        key = key or first_set(env, PUBLIC_KEY_VARS)
        if not url and not key:
            return None
        if not url or not key:
            missing = "URL ($SUPABASE_URL or $API_URL)" if not url else "public key ($SUPABASE_ANON_KEY or $ANON_KEY)"
            raise JobError(f"the panel needs the project's {missing} too")
        check_url(url)
        if not is_header_safe(key):
            raise JobError("the key is not a key: it holds spaces or characters no key has")
        if key_role(key) not in ("anon", None):
            raise JobError("the panel takes the public (anon/publishable) key only: a browser must never hold a secret")
        return cls(url.rstrip("/"), key)

    def to_json(self) -> bytes:
        return json.dumps({"url": self.url, "key": self.key}).encode()

    def content_security_policy(self) -> str:
        """The page may load itself and talk to the project (REST, Auth, Realtime), nothing else."""
        parts = urlsplit(self.url)
        socket = f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}"
        return (
            f"default-src 'self'; connect-src 'self' {self.url} {socket}; img-src 'self' data:; "
            "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
        )


class _Handler(SimpleHTTPRequestHandler):
    """The built files, ``/config.json`` from the config, and no directory listings or access log."""

    config: PanelConfig | None = None

    def do_GET(self) -> None:
        if urlsplit(self.path).path == "/config.json":
            if self.config is None:
                self.send_error(404, "no project configured: the panel asks for one")
                return
            body = self.config.to_json()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-cache")
        if self.config is not None:
            self.send_header("Content-Security-Policy", self.config.content_security_policy())
        super().end_headers()

    def list_directory(self, path: Any) -> None:
        self.send_error(404)
        return None

    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests are not logged: the terminal stays for what matters


def check_built() -> None:
    """`JobError` with the one line that says how to build, when the assets are missing (a bare checkout)."""
    if not (ASSETS / "index.html").is_file() or not (ASSETS / "panel.js").is_file():
        raise JobError(BUILD_HINT)


class PanelServer:
    """The panel on ``host:port`` (``port`` 0: any free one), served from a daemon thread once started."""

    def __init__(self, config: PanelConfig | None, port: int = DEFAULT_PORT, host: str = "127.0.0.1") -> None:
        check_built()
        handler = type("PanelHandler", (_Handler,), {"config": config})
        try:
            self._server = ThreadingHTTPServer((host, port), partial(handler, directory=str(ASSETS)))
        except OSError as exc:
            raise JobError(f"cannot serve the panel on {host}:{port}: {exc.strerror} (choose another --port)") from exc
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="liveparams.panel", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    def start(self) -> PanelServer:
        """Serve from a daemon thread (the demo, the tests)."""
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve on the calling thread until interrupted (``liveparams panel``)."""
        self._server.serve_forever()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
