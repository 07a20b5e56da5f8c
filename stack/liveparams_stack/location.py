"""Where ``liveparams stack`` keeps its stack: one rule, so that every folder finds the same stack.

``--state-dir``, else ``$LIVEPARAMS_STACK_DIR``, else the per-user state folder:
``$XDG_STATE_HOME/liveparams/stack``, by default ``~/.local/state/liveparams/stack``.
Root's default is ``/var/lib/liveparams/stack`` instead: PostgreSQL refuses to run as
root, so the stack runs it as the ``postgres`` OS user, which cannot enter ``/root``.
Why not ``./.stack``: a stack started in one folder was invisible from every other, so
``eval "$(liveparams stack status -o env)"`` in a project folder exported nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

STATE_DIR_VAR = "LIVEPARAMS_STACK_DIR"
ROOT_STATE_DIR = Path("/var/lib/liveparams/stack")
RULE = (
    f"${STATE_DIR_VAR}, else $XDG_STATE_HOME/liveparams/stack (~/.local/state/liveparams/stack; root: {ROOT_STATE_DIR})"
)


def default_state_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """The state directory when no ``--state-dir`` is given (see the module docstring)."""
    if given := environ.get(STATE_DIR_VAR):
        return Path(given).expanduser()
    if state_home := environ.get("XDG_STATE_HOME"):
        return Path(state_home) / "liveparams" / "stack"
    if os.geteuid() == 0:
        return ROOT_STATE_DIR
    return Path.home() / ".local" / "state" / "liveparams" / "stack"
