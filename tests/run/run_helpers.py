"""What the ``liveparams run`` tests share: where the commands are, and a clean environment for them."""

from __future__ import annotations

import os
import sys
from pathlib import Path

BIN = Path(sys.executable).parent  # liveparams, torchrun and trl of this environment
ROOT = Path(__file__).resolve().parents[2]
# A complete configuration whose database is not there: `liveparams run` installs its bootstrap,
# training runs on without updates (what the process and callback-count tests need, no stack).
UNREACHABLE = {
    "JOB_ID": "5f0e2a1c-1111-4222-8333-444455556666",
    "SUPABASE_URL": "http://127.0.0.1:9",
    "SUPABASE_SERVICE_ROLE_KEY": "unused-key",
}


def child_env(**extra: str) -> dict[str, str]:
    """This environment without any liveparams configuration, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE", "LIVEPARAMS", "JOB_ID"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", **extra)
    return env


def liveparams_run(*command: str, job: str | None = None) -> list[str]:
    """``liveparams run [--job JOB] -- COMMAND``."""
    return [str(BIN / "liveparams"), "run", *(["--job", job] if job else []), "--", *command]
