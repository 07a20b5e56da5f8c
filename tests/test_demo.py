"""The README's first command, shortened: the demo must go green and leave its plot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_runs_green_and_writes_the_plot(tmp_path: Path) -> None:
    output = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "liveparams.demo", "--steps", "80", "--step-delay", "0.03", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    png = output / "liveparams-demo.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "every request got its outcome" in result.stdout
    assert "Applied learning rate update" in result.stdout
    assert "refused by the server" in result.stdout
