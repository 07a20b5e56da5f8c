"""``LocalStack``: a local Supabase look-alike on real PostgreSQL, for development and tests only.

``start()`` creates a private PostgreSQL cluster in ``state_dir``, gives it what
a fresh Supabase database has (``bootstrap.sql``), applies ``supabase/migrations``
with the real Supabase CLI (``supabase db push``, which records the history in
``supabase_migrations.schema_migrations`` as on a hosted project), then starts
the HTTP/WebSocket front (``python -m liveparams_stack serve``) as a detached
process. Everything it creates is recorded in a marker file, and a directory
without the marker is never touched.

As with ``supabase stop``, ``stop()`` (``liveparams stack down``) stops the
processes and keeps the data: a later ``start()`` starts again whatever is not
running (PostgreSQL, the front, or both) on the same ports, and applies any
migration added since. ``delete()`` (``liveparams stack reset``, and leaving a
``with LocalStack(...)`` block) removes exactly what ``start()`` created.

It uses the well-known local keys: never expose it beyond 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType

import psycopg

from liveparams_stack import keys
from liveparams_stack.errors import StackError
from liveparams_stack.postgres import PostgresCluster, PostgresInstall, find_postgres
from liveparams_stack.realtime.policies import SCHEMA_SQL as REALTIME_SCHEMA_SQL

MARKER = "liveparams-stack.json"
_BOOTSTRAP_SQL = Path(__file__).with_name("bootstrap.sql")
_READY_TIMEOUT_S = 20.0
DEFAULT_API_PORT = 54321
DEFAULT_DB_PORT = 54322


@dataclass
class _Marker:
    """What a running stack left in its state directory (also how ``down`` finds it)."""

    api_port: int
    db_port: int
    enable_faults: bool
    api_pid: int | None = None
    created_dir: bool = False
    tool: str = "liveparams"
    realtime_poll_ms: int | None = None


@dataclass(frozen=True)
class StackState:
    """What runs of a stack that exists: ``liveparams stack status`` reports it, ``start()`` repairs it."""

    postgres_running: bool
    api_running: bool  # the front's process is alive
    api_ready: bool  # the front answers and reaches the database

    @property
    def running(self) -> bool:
        return self.postgres_running and self.api_ready

    def problems(self) -> list[str]:
        """What is wrong, in words (empty when it all runs, or when it is all stopped)."""
        if self.running or not (self.postgres_running or self.api_running):
            return []
        problems = []
        if not self.api_running:
            problems.append("the API process has exited")
        elif not self.api_ready and self.postgres_running:  # (without PostgreSQL it cannot answer)
            problems.append("the API process does not answer")
        if not self.postgres_running:
            problems.append("PostgreSQL is not running")
        return problems


class LocalStack:
    """The local stack in ``state_dir``; see the module docstring. Usable as a context manager."""

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        api_port: int = DEFAULT_API_PORT,
        db_port: int = DEFAULT_DB_PORT,
        enable_faults: bool = False,
        project_dir: str | os.PathLike[str] | None = None,
        stop_with_caller: bool = False,
        realtime_poll_ms: int | None = None,
    ) -> None:
        """``stop_with_caller``: the front stops the whole stack itself if this process dies without
        calling ``stop()`` (a test run killed by a timeout), so nothing is left running. Off for
        ``liveparams stack up``, whose stack is meant to outlive the command.
        ``realtime_poll_ms``: Realtime polls the WAL at this interval and backs off to five times it
        when idle, as hosted Realtime does; None polls fast (tests)."""
        self.state_dir = Path(state_dir).resolve()
        self.api_port = api_port
        self.db_port = db_port
        self.enable_faults = enable_faults
        self.project_dir = Path(project_dir).resolve() if project_dir else None
        self.stop_with_caller = stop_with_caller
        self.realtime_poll_ms = realtime_poll_ms
        self._api_process: subprocess.Popen[bytes] | None = None

    @classmethod
    def on_free_ports(
        cls, state_dir: str | os.PathLike[str], enable_faults: bool = False, stop_with_caller: bool = False
    ) -> LocalStack:
        """A stack on 54321/54322 like ``supabase start`` when both are free, else on any free ports.

        Why: tests and the demo must run beside a developer's own stack (or another test run).
        """
        if port_is_free(DEFAULT_API_PORT) and port_is_free(DEFAULT_DB_PORT):
            return cls(state_dir, DEFAULT_API_PORT, DEFAULT_DB_PORT, enable_faults, stop_with_caller=stop_with_caller)
        return cls(state_dir, free_port(), free_port(), enable_faults, stop_with_caller=stop_with_caller)

    @classmethod
    def attach(cls, state_dir: str | os.PathLike[str]) -> LocalStack | None:
        """The stack a previous ``start()`` left in ``state_dir`` (any process), or None."""
        marker = _read_marker(Path(state_dir))
        if marker is None:
            return None
        return cls(
            state_dir, marker.api_port, marker.db_port, marker.enable_faults, realtime_poll_ms=marker.realtime_poll_ms
        )

    # -- addresses -------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def db_url(self) -> str:
        return f"postgresql://postgres:postgres@127.0.0.1:{self.db_port}/postgres"

    def env(self) -> dict[str, str]:
        """The variables ``supabase status -o env`` prints, with the same names."""
        return {
            "API_URL": self.api_url,
            "REST_URL": f"{self.api_url}/rest/v1",
            "REALTIME_URL": f"ws://127.0.0.1:{self.api_port}/realtime/v1",
            "DB_URL": self.db_url,
            "JWT_SECRET": keys.JWT_SECRET,
            "ANON_KEY": keys.ANON_KEY,
            "SERVICE_ROLE_KEY": keys.SERVICE_ROLE_KEY,
            "PUBLISHABLE_KEY": keys.PUBLISHABLE_KEY,
            "SECRET_KEY": keys.SECRET_KEY,
        }

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Create the stack, or start again what is not running of the one ``state_dir`` holds.

        A failed creation is undone entirely; a failed restart leaves the data alone.
        """
        marker = _read_marker(self.state_dir)
        if marker is None:
            self._create()
        else:
            self._resume(marker)

    def stop(self) -> None:
        """Stop the front and PostgreSQL and keep the data (``supabase stop``). Idempotent."""
        marker = _read_marker(self.state_dir)
        if marker is None:
            return
        self._stop_api(marker)
        if _postgres_running(self.state_dir / "postgres"):
            self._cluster(find_postgres()).stop()

    def delete(self) -> None:
        """Stop the stack and delete what ``start()`` created: the database and all its data. Idempotent."""
        marker = _read_marker(self.state_dir)
        if marker is None:
            return
        self._stop_api(marker)
        self.release()

    def release(self) -> None:
        """Stop PostgreSQL and delete what ``start()`` created, leaving the front process alone.

        ``delete()`` calls it once the front is gone; a front started with ``stop_with_caller``
        calls it itself when its caller has died.
        """
        marker = _read_marker(self.state_dir)
        if marker is None:
            return
        with contextlib.suppress(StackError):
            self._cluster(find_postgres()).stop()
        for name in ("postgres", "api.log", MARKER):
            path = self.state_dir / name
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        if marker.created_dir:
            with contextlib.suppress(OSError):
                self.state_dir.rmdir()

    def state(self) -> StackState | None:
        """What runs of the stack in ``state_dir``, or None when there is none."""
        marker = _read_marker(self.state_dir)
        if marker is None:
            return None
        api_running = marker.api_pid is not None and is_front_process(marker.api_pid)
        return StackState(
            postgres_running=_postgres_running(self.state_dir / "postgres"),
            api_running=api_running,
            api_ready=api_running and _api_ready(self.api_url),
        )

    def restart_api(self, down_s: float = 0.0) -> None:
        """Stop and start the HTTP front, ``down_s`` seconds apart; the database and its data stay as they are."""
        marker = _read_marker(self.state_dir)
        if marker is None:
            raise StackError(f"no running stack in {self.state_dir}")
        self._stop_api(marker)
        time.sleep(down_s)
        self._start_api(marker)

    def restart_database(self, down_s: float = 0.0) -> None:
        """Stop PostgreSQL (fast shutdown: sessions are cut) and start it again ``down_s`` seconds later,
        with the front left running, as a managed database's restart or failover looks to its clients."""
        if _read_marker(self.state_dir) is None:
            raise StackError(f"no running stack in {self.state_dir}")
        cluster = self._cluster(find_postgres())
        cluster.stop()
        time.sleep(down_s)
        cluster.start()

    def is_running(self) -> bool:
        """Whether the front answers (the database is checked by the front's readiness route)."""
        return _api_ready(self.api_url)

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.delete()

    # -- pieces ------------------------------------------------------------------------------

    def _create(self) -> None:
        project_dir = self.project_dir or find_project_dir()
        supabase_cli = find_supabase_cli(project_dir)
        install = find_postgres()
        if self.state_dir.exists() and any(self.state_dir.iterdir()):
            raise StackError(f"{self.state_dir} is not empty and was not created by liveparams; choose another")
        self._check_ports_free(self.api_port, self.db_port)
        marker = self._marker(created_dir=not self.state_dir.exists())
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if marker.created_dir:
            self.state_dir.chmod(0o755)  # PostgreSQL may run as another OS user (see postgres.py)
        _write_marker(self.state_dir, marker)
        try:
            cluster = self._cluster(install)
            cluster.init()
            cluster.start()
            with psycopg.connect(self.db_url, autocommit=True) as conn:
                conn.execute(_BOOTSTRAP_SQL.read_bytes())  # trusted file, several statements in one go
            self._push_migrations(supabase_cli, project_dir)
            self._start_api(marker)
        except BaseException:
            self.delete()
            raise

    def _resume(self, marker: _Marker) -> None:
        """Start what is not running on the stack's own ports; restart the front when it is stale."""
        if (marker.api_port, marker.db_port) != (self.api_port, self.db_port):
            raise StackError(
                f"the stack in {self.state_dir} uses API port {marker.api_port} and database port {marker.db_port}, "
                f"not {self.api_port} and {self.db_port}; start it on its own ports, "
                "or delete it with `liveparams stack reset` to start over on others"
            )
        project_dir = self.project_dir or find_project_dir()
        state = self.state()
        assert state is not None  # the marker was just read
        if not state.postgres_running:
            self._stop_api(marker)  # its connections died with the old server
            self._check_ports_free(db_port=self.db_port)
            # Left by a crash or a reboot: PostgreSQL refuses to start while the pid it names is alive
            # and its user's, even when that pid now belongs to another process.
            (self.state_dir / "postgres" / "postmaster.pid").unlink(missing_ok=True)
            self._cluster(find_postgres()).start()
        if self._pending_migrations(project_dir):  # added since the stack was created
            self._push_migrations(find_supabase_cli(project_dir), project_dir)
        same_options = (marker.enable_faults, marker.realtime_poll_ms) == (self.enable_faults, self.realtime_poll_ms)
        if state.running and same_options:
            return
        self._stop_api(marker)
        marker.enable_faults, marker.realtime_poll_ms = self.enable_faults, self.realtime_poll_ms
        self._start_api(marker)

    def _marker(self, created_dir: bool) -> _Marker:
        return _Marker(
            self.api_port,
            self.db_port,
            self.enable_faults,
            created_dir=created_dir,
            realtime_poll_ms=self.realtime_poll_ms,
        )

    @staticmethod
    def _check_ports_free(api_port: int | None = None, db_port: int | None = None) -> None:
        for name, port in (("API", api_port), ("database", db_port)):
            if port is not None and not port_is_free(port):
                raise StackError(f"127.0.0.1:{port} ({name} port) is already in use; stop what uses it or use another")

    def _cluster(self, install: PostgresInstall) -> PostgresCluster:
        return PostgresCluster(self.state_dir / "postgres", self.db_port, install)

    def _push_migrations(self, supabase_cli: list[str], project_dir: Path) -> None:
        # A Supabase project has realtime.messages before any migration (which may add policies to it).
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            conn.execute(REALTIME_SCHEMA_SQL)
        argv = [*supabase_cli, "db", "push", f"--remote={self.db_url}", "--include-all", "--yes"]
        argv += ["--workdir", str(project_dir)]
        done = subprocess.run(argv, cwd=project_dir, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise StackError(f"supabase db push failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")

    def _pending_migrations(self, project_dir: Path) -> bool:
        """Whether ``supabase/migrations`` holds a version the database has not recorded (asking the CLI is slow)."""
        files = {path.name.split("_", 1)[0] for path in (project_dir / "supabase" / "migrations").glob("*.sql")}
        try:
            with psycopg.connect(self.db_url, autocommit=True) as conn:
                rows = conn.execute("select version from supabase_migrations.schema_migrations").fetchall()
        except psycopg.Error as exc:
            raise StackError(f"the stack's database at {self.db_url} does not answer: {exc}") from None
        return bool(files - {row[0] for row in rows})

    def _start_api(self, marker: _Marker) -> None:
        if not port_is_free(self.api_port):
            raise StackError(f"127.0.0.1:{self.api_port} (API port) is already in use")
        argv = [sys.executable, "-m", "liveparams_stack", "serve", "--port", str(self.api_port)]
        argv += ["--dsn", self.db_url, "--jwt-secret", keys.JWT_SECRET]
        argv += ["--project-dir", str(self.project_dir or find_project_dir())]
        if self.enable_faults:
            argv.append("--enable-faults")
        if self.stop_with_caller:
            argv += ["--stop-with-parent", str(self.state_dir)]
        if self.realtime_poll_ms is not None:
            argv += ["--realtime-poll-ms", str(self.realtime_poll_ms)]
        package_root = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
        with (self.state_dir / "api.log").open("ab") as log:
            # A session of its own: the front outlives `liveparams stack up` and ignores its Ctrl-C.
            process = subprocess.Popen(argv, stdout=log, stderr=log, env=env, start_new_session=True)
        self._api_process = process
        marker.api_pid = process.pid
        _write_marker(self.state_dir, marker)
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while not _api_ready(self.api_url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise StackError(f"the API front did not come up on {self.api_url}:\n{self._api_log_tail()}")
            time.sleep(0.05)

    def _stop_api(self, marker: _Marker) -> None:
        if marker.api_pid is None:
            return
        if self._api_process is not None and self._api_process.pid == marker.api_pid:
            self._api_process.terminate()
            try:
                self._api_process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._api_process.kill()
                self._api_process.wait()
            self._api_process = None
        else:
            _terminate_pid(marker.api_pid)
        marker.api_pid = None
        _write_marker(self.state_dir, marker)

    def _api_log_tail(self) -> str:
        try:
            return (self.state_dir / "api.log").read_text(errors="replace")[-4000:]
        except OSError:
            return ""


def find_project_dir(start: Path | None = None) -> Path:
    """The directory holding ``supabase/config.toml``: searched upward from ``start`` (cwd), then this checkout."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents, Path(__file__).resolve().parents[2]):
        if (directory / "supabase" / "config.toml").is_file():
            return directory
    raise StackError("no supabase/config.toml found above the current directory; run from the liveparams checkout")


def find_supabase_cli(project_dir: Path) -> list[str]:
    """The Supabase CLI: the project's ``node_modules`` copy (pinned by package-lock.json), else one on PATH."""
    local = project_dir / "node_modules" / ".bin" / "supabase"
    if local.exists():
        return [str(local)]
    if found := shutil.which("supabase"):
        return [found]
    raise StackError("the Supabase CLI is not installed; run `npm ci` in the project (or scripts/setup.sh)")


def port_is_free(port: int) -> bool:
    """Whether 127.0.0.1:``port`` can be listened on (TIME_WAIT leftovers do not count as taken)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 never goes via a proxy


def _api_ready(api_url: str) -> bool:
    try:
        with _NO_PROXY_OPENER.open(f"{api_url}/_liveparams/health", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _terminate_pid(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM a front started by another process, then SIGKILL it if it lingers.

    The pid comes from the marker file, so it is checked to still be our front
    (pids get reused) before anything is sent to it.
    """
    if not is_front_process(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_is_running(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def process_is_running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (an exited child nobody has reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def is_front_process(pid: int) -> bool:
    """Whether ``pid`` is a running ``python -m liveparams_stack serve``."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"liveparams_stack" in argv and b"serve" in argv and process_is_running(pid)


def _postgres_running(data_dir: Path) -> bool:
    """Whether the postmaster that ``data_dir/postmaster.pid`` names is alive.

    A crash or a reboot leaves the file behind, and its pid may since belong to another process.
    """
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split()[0])
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError, IndexError):
        return False
    return Path(os.fsdecode(argv[0])).name == "postgres" and process_is_running(pid)


def _read_marker(state_dir: Path) -> _Marker | None:
    try:
        data = json.loads((state_dir / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("tool") != "liveparams":
        return None
    return _Marker(**data)


def _write_marker(state_dir: Path, marker: _Marker) -> None:
    (state_dir / MARKER).write_text(json.dumps(asdict(marker), indent=2) + "\n")
