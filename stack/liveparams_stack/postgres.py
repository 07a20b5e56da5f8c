"""A private PostgreSQL cluster for the local stack: find the binaries, initdb, start, stop.

The cluster lives in a directory of its own, listens on 127.0.0.1 only (TCP,
no Unix socket, so it never collides with a system cluster), and is configured
for logical decoding, which the Realtime server reads changes from. It is tuned
for tests (``fsync=off``): a crash may lose it, which is fine for throwaway data.

PostgreSQL refuses to run as root. When we are root, every server binary runs
as the Debian ``postgres`` user through ``runuser`` and the data directory is
owned by that user.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from liveparams_stack.errors import StackError

SUPERUSER = "postgres"
PASSWORD = "postgres"
# The login role the REST front uses; bootstrap.sql creates it with this password.
AUTHENTICATOR = "authenticator"
AUTHENTICATOR_PASSWORD = "postgres"
MIN_MAJOR_VERSION = 14
_RUN_AS = "postgres"  # the OS account PostgreSQL runs as when we are root

SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",
    "wal_level": "logical",
    "max_replication_slots": "20",
    "max_wal_senders": "20",
    "max_connections": "100",
    "fsync": "off",
    "full_page_writes": "off",
    "log_min_messages": "warning",
}


@dataclass(frozen=True)
class PostgresInstall:
    """Where the PostgreSQL server binaries and extension libraries are."""

    bin_dir: Path
    pkglib_dir: Path
    major_version: int

    def has_library(self, name: str) -> bool:
        return (self.pkglib_dir / f"{name}.so").exists()


def find_postgres() -> PostgresInstall:
    """Locate PostgreSQL: ``$LIVEPARAMS_PG_BINDIR``, else ``pg_config`` on PATH, else Debian's newest.

    Raises StackError when none is installed or wal2json is missing, naming the
    Debian packages that fix it.
    """
    candidates: list[Path] = []
    if env_dir := os.environ.get("LIVEPARAMS_PG_BINDIR"):
        candidates.append(Path(env_dir))  # an explicit choice: no fallback behind the user's back
    else:
        if pg_config := shutil.which("pg_config"):
            candidates.append(Path(_run_text([pg_config, "--bindir"])))
        debian = Path("/usr/lib/postgresql").glob("*/bin")
        candidates.extend(sorted(debian, key=lambda p: _version_key(p.parent.name), reverse=True))
    for bin_dir in candidates:
        if not (bin_dir / "initdb").exists() or not (bin_dir / "pg_config").exists():
            continue
        version = _run_text([str(bin_dir / "pg_config"), "--version"])  # "PostgreSQL 15.14 (Debian ...)"
        major = int(re.search(r"(\d+)", version).group(1))  # type: ignore[union-attr]
        if major < MIN_MAJOR_VERSION:
            continue
        install = PostgresInstall(bin_dir, Path(_run_text([str(bin_dir / "pg_config"), "--pkglibdir"])), major)
        if not install.has_library("wal2json"):
            raise StackError(
                f"PostgreSQL {major} at {bin_dir} has no wal2json, which the Realtime server needs; "
                f"install it with: apt-get install postgresql-{major}-wal2json (or run scripts/setup.sh)"
            )
        return install
    raise StackError(
        f"PostgreSQL >= {MIN_MAJOR_VERSION} server binaries (initdb) not found; install them with: "
        "apt-get install postgresql-15 postgresql-15-wal2json (or run scripts/setup.sh), "
        "or point LIVEPARAMS_PG_BINDIR at their bin directory"
    )


class PostgresCluster:
    """One cluster in ``data_dir`` listening on ``127.0.0.1:port``."""

    def __init__(self, data_dir: Path, port: int, install: PostgresInstall) -> None:
        self.data_dir = data_dir
        self.port = port
        self.install = install
        self.log_file = data_dir / "server.log"

    @property
    def dsn(self) -> str:
        return f"postgresql://{SUPERUSER}:{PASSWORD}@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        """initdb a fresh cluster with password auth over TCP and the settings above."""
        self.data_dir.mkdir(mode=0o700, parents=True)
        pwfile = self.data_dir.parent / f".{self.data_dir.name}.pw"
        pwfile.write_text(PASSWORD + "\n")
        try:
            if _is_root():
                account = pwd.getpwnam(_RUN_AS)
                os.chown(self.data_dir, account.pw_uid, account.pw_gid)
                os.chown(pwfile, account.pw_uid, account.pw_gid)
                self._check_reachable()
            self._run(
                "initdb",
                "-D", str(self.data_dir),
                "-U", SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)
        settings = "".join(f"{key} = {value}\n" for key, value in SERVER_SETTINGS.items())
        settings += f"port = {self.port}\n"
        with (self.data_dir / "postgresql.conf").open("a") as conf:  # root may write; the owner stays postgres
            conf.write(settings)

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until it accepts connections."""
        try:
            self._run(
                "pg_ctl", "start", "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", str(int(timeout))
            )
        except StackError as exc:
            raise StackError(f"{exc}\n{self.read_log()}") from None

    def stop(self) -> None:
        """Fast shutdown (rolls back open transactions, closes replication connections); no-op if not running."""
        if (self.data_dir / "postmaster.pid").exists():
            self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30")

    def read_log(self, max_chars: int = 4000) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-max_chars:]
        except OSError:
            return ""

    def _check_reachable(self) -> None:
        probe = subprocess.run(["runuser", "-u", _RUN_AS, "--", "test", "-w", str(self.data_dir)], check=False)
        if probe.returncode != 0:
            raise StackError(
                f"the {_RUN_AS!r} OS user (PostgreSQL refuses to run as root) cannot reach {self.data_dir}; "
                "choose a state directory whose parents are world-traversable (e.g. under /tmp)"
            )

    def _run(self, program: str, *args: str) -> None:
        argv = [str(self.install.bin_dir / program), *args]
        if _is_root():
            argv = ["runuser", "-u", _RUN_AS, "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd="/")
        if done.returncode != 0:
            raise StackError(f"{program} failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()}")


def _is_root() -> bool:
    return os.geteuid() == 0


def _run_text(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name))
