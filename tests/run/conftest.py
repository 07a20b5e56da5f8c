"""The ``liveparams run`` tests share the trainer-hooks helpers (tiny trainer, schedules)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "trainer_hooks"))
