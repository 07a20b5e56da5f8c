"""The README's first command, shortened: the demo must go green and leave its plot."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from liveparams.demo.plot import METADATA_KEY


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
    # Only the demo's own display: no library progress bars (model saving, dataset preparation).
    assert "%|" not in result.stdout + result.stderr, result.stdout[:3000]
    png = output / "liveparams-demo.png"
    shown = json.loads(Image.open(png).text[METADATA_KEY])  # what the picture shows, recorded by the plot
    assert {"applied", "rejected", "refused"} == {marker["kind"] for marker in shown["markers"]}
    assert {"learning rate used", "training loss"} <= set(shown["legend"])
    # The rate asked for (3e-4) is a new peak; the curve shows less, and the plot says why.
    assert any("= peak 3.00e-04 ×" in note for note in shown["notes"]), shown["notes"]
    assert "every request got its outcome" in result.stdout
    assert re.search(r"watch and steer it in the panel: http://127\.0\.0\.1:\d+/#/job/[0-9a-f-]{36}", result.stdout)
    assert re.search(r"sign in as demo@liveparams\.test with the password \S+", result.stdout)
    assert "Applied learning rate update" in result.stdout
    assert "refused by the server" in result.stdout
    table_end = result.stdout.index("└")  # the live table's bottom border ends its line (issue 14)
    assert result.stdout[table_end:].split("\n", 1)[0].endswith("┘")
