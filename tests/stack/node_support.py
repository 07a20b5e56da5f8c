"""Run a script with the unmodified supabase-js from npm on node, against the stack."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
PROJECT_DIR = Path(__file__).resolve().parents[2]
NODE_TIMEOUT_S = 60


def run_supabase_js(script: str, env: dict[str, str]) -> dict[str, Any]:
    """Run ``script`` (an ES module printing one JSON line) with ``env`` added; return what it printed."""
    # Node 20 has WebSocket only behind this flag; supabase-js builds its realtime client eagerly.
    argv = ["node", "--experimental-websocket", "--no-warnings", "--input-type=module", "-e", script]
    done = subprocess.run(
        argv, cwd=PROJECT_DIR, env={**os.environ, **env}, capture_output=True, text=True, timeout=NODE_TIMEOUT_S
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    return out
