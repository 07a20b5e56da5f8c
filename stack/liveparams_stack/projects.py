"""A copy of the project's Supabase directory with other Auth settings, for a second local stack.

Why: the stack reads Auth's settings (``jwt_expiry``, ``refresh_token_reuse_interval``) from
``supabase/config.toml`` as ``supabase start`` does, so a stack whose tokens live a few seconds
(tests and benchmarks of token expiry) needs its own project directory.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from liveparams_stack.local import find_project_dir


def project_with_auth(root: str | os.PathLike[str], source: Path | None = None, **auth: int) -> Path:
    """Copy ``source``'s migrations and config.toml under ``root`` with these ``[auth]`` settings replaced.

    Each keyword must already be set in the ``[auth]`` table of config.toml (a typo fails here).
    The copy links the source's ``node_modules`` (its Supabase CLI). Returns the new project directory.
    """
    source = source or find_project_dir()
    project = Path(root)
    shutil.copytree(source / "supabase" / "migrations", project / "supabase" / "migrations")
    config = (source / "supabase" / "config.toml").read_text()
    for key, value in auth.items():
        config, replaced = re.subn(rf"(?m)^{re.escape(key)} = .*$", f"{key} = {value}", config, count=1)
        if not replaced:
            raise ValueError(f"{key} is not set in {source / 'supabase' / 'config.toml'}")
    (project / "supabase" / "config.toml").write_text(config)
    if (source / "node_modules").exists():
        (project / "node_modules").symlink_to(source / "node_modules")
    return project
