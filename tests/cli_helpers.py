"""Running the ``liveparams`` command as a person does: a subprocess with only the variables given."""

from __future__ import annotations

import atexit
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

OWN_PREFIXES = ("SUPABASE_", "NEXT_PUBLIC_", "LIVEPARAMS_")
STACK_NAMES = ("API_URL", "ANON_KEY", "SERVICE_ROLE_KEY", "JWT_SECRET", "PUBLISHABLE_KEY", "SECRET_KEY")


_CONFIG_HOMES = tempfile.mkdtemp(prefix="liveparams-test-config-")
atexit.register(shutil.rmtree, _CONFIG_HOMES, ignore_errors=True)


def config_home() -> str:
    """A new, empty ``XDG_CONFIG_HOME``: where ``liveparams user login`` keeps a sign-in."""
    return tempfile.mkdtemp(dir=_CONFIG_HOMES)


def clean_environ() -> dict[str, str]:
    """This process's environment without any variable liveparams reads (the test's own stack included), and
    with an empty config folder of its own, so no sign-in kept by another command (or the developer) is used;
    a test that keeps one passes ``XDG_CONFIG_HOME`` itself."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES) and k not in STACK_NAMES}
    return {**clean, "XDG_CONFIG_HOME": config_home()}


def liveparams(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "liveparams.cli", *args],
        env={**clean_environ(), **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def as_owner(stack_env: dict[str, str], owner_jwt: str) -> dict[str, str]:
    return {
        "SUPABASE_URL": stack_env["API_URL"],
        "SUPABASE_ANON_KEY": stack_env["ANON_KEY"],
        "LIVEPARAMS_USER_TOKEN": owner_jwt,
    }


def stack_names(stack_env: dict[str, str]) -> dict[str, str]:
    """The variables under the names `supabase status -o env` prints, as `set -a; eval ...` exports them."""
    return {name: stack_env[name] for name in ("API_URL", "ANON_KEY", "SERVICE_ROLE_KEY", "JWT_SECRET")}


def read_lines_until(stream: Any, wanted: str, timeout: float) -> list[str]:
    """Lines read from ``stream`` until one contains ``wanted`` (or the timeout)."""
    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not any(wanted in line for line in lines):
        if selector.select(timeout=max(deadline - time.monotonic(), 0)):
            line = stream.readline()
            if not line:
                break
            lines.append(line)
    return lines
