"""The custom loops of docs/custom-loops.md, run as the page shows them, through the stack.

Each run changes the learning rate mid-run, then stops (the loop saves a checkpoint as it
stops); the same script run again resumes from it. The rates the optimizer used must be
those of a run started with the new rate at that step, before and after the resume, and the
stop is not applied again by the resumed run (it trains on).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from run_helpers import DEADLINE_S, ROOT, Running, is_step_line, restarted_schedule

DOC = ROOT / "docs" / "custom-loops.md"
BLOCK = re.compile(r"<!-- custom loop: (\w+) -->\n```python\n(.*?)```", re.DOTALL)
STEP = re.compile(r"^step (\d+) lr (\S+)$")
TOTAL, PEAK, WARMUP = 10_000, 1e-3, 5  # the schedule the page's loops build


def rates(lines: list[str]) -> dict[int, float]:
    """Step → the rate the optimizer used, from the loop's ``step N lr X`` lines."""
    return {int(m[1]): float(m[2]) for line in lines if (m := STEP.match(line.strip()))}


@pytest.mark.stack
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["plain", "accelerate"])
def test_a_loop_written_as_the_docs_show_gets_live_updates_and_resumes(
    kind: str,
    tmp_path: Path,
    stack: dict[str, Any],
    request_update: Callable[..., Any],
    changed_mid_run: Callable[[Running], dict[str, Any]],
) -> None:
    (tmp_path / "train.py").write_text(dict(BLOCK.findall(DOC.read_text(encoding="utf-8")))[kind])
    command, env = [sys.executable, "train.py"], {**stack["env"], "JOB_ID": stack["job_id"]}

    first = Running(command, env, is_step_line, cwd=tmp_path)
    row = changed_mid_run(first)
    assert row["status"] == "applied"
    before = rates(first.lines)
    stopped = max(before)
    assert 1 <= row["step"] < stopped < TOTAL
    assert before == pytest.approx(restarted_schedule(row["step"], stopped, TOTAL, peak=PEAK, warmup=WARMUP))

    # Resumed from the checkpoint saved at the stop: on with the new rate, and the stop is not applied again.
    target = f"step {stopped + 5} "
    second = Running(command, env, lambda line: line.startswith(target), cwd=tmp_path)
    try:
        assert second.started.wait(DEADLINE_S * 3) and second.proc.poll() is None, "".join(second.lines)
        request_update(stack["jwt"], stack["job_id"], {"command": "stop"})
        second.finish()
    finally:
        if second.proc.poll() is None:
            second.proc.kill()
    after = rates(second.lines)
    assert min(after) == stopped + 1
    expected = restarted_schedule(row["step"], max(after), TOTAL, peak=PEAK, warmup=WARMUP)
    assert after == pytest.approx({step: expected[step] for step in after})
