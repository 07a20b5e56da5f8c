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
    (output / "run").mkdir(parents=True)  # a folder of the user's, given as --output: nothing in it is deleted
    (output / "notes.txt").write_text("mine")
    (output / "run" / "model.bin").write_text("mine too")
    result = subprocess.run(
        [sys.executable, "-m", "liveparams.demo", "--steps", "80", "--step-delay", "0.03", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # Only the demo's own display: no library progress bars (model saving, dataset preparation).
    assert "%|" not in result.stdout + result.stderr, result.stdout[:3000]
    assert (output / "notes.txt").read_text() == "mine" and (output / "run" / "model.bin").read_text() == "mine too"
    # The run's own checkpoints (asked for, and before the stop) went to a new folder, which the demo names.
    assert "checkpoints of this run: " in result.stdout and "run-1" in result.stdout
    assert len(list((output / "run-1").glob("checkpoint-*"))) == 2
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


def test_each_run_gets_a_new_checkpoint_folder_and_nothing_already_there_is_removed(tmp_path: Path) -> None:
    from liveparams.demo.__main__ import new_run_folder

    (tmp_path / "run-1").mkdir()  # the user's, or an earlier run's
    (tmp_path / "run-1" / "model.bin").write_text("mine")
    assert [new_run_folder(tmp_path), new_run_folder(tmp_path)] == [tmp_path / "run-2", tmp_path / "run-3"]
    assert (tmp_path / "run-1" / "model.bin").read_text() == "mine" and not any((tmp_path / "run-2").iterdir())
    assert new_run_folder(tmp_path / "new" / "out") == tmp_path / "new" / "out" / "run-1"
