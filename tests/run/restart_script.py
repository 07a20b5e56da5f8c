"""A script that knows nothing of liveparams: the regression Trainer of ``restarted_runs``, called with ``train()``.

It prints ``step N`` after each optimizer step and sleeps a little, so that a request
sent through the stack lands mid-run, and writes what the run consumed (row ids and
loss per micro-batch, rate per step, the last step) to ``OUT_DIR/seen.json``.

Usage: liveparams run -- python restart_script.py OUT_DIR MAX_STEPS ACCUMULATION BATCH_SIZE [SAVE_STEPS]
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "trainer_hooks"))

from restarted_runs import Seen, _trainer
from transformers import TrainerCallback

STEP_PAUSE_S = 0.05


class PrintSteps(TrainerCallback):
    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        print(f"step {state.global_step}", flush=True)
        time.sleep(STEP_PAUSE_S)


def main(out_dir: str, max_steps: str, accumulation: str, batch_size: str, save_steps: str = "0") -> None:
    seen = Seen()
    args: dict[str, Any] = {
        "max_steps": int(max_steps),
        "gradient_accumulation_steps": int(accumulation),
        "per_device_train_batch_size": int(batch_size),
    }
    if int(save_steps):
        args.update(save_strategy="steps", save_steps=int(save_steps))
    _trainer(Path(out_dir) / "trainer", seen, [PrintSteps()], **args).train()
    (Path(out_dir) / "seen.json").write_text(json.dumps(dataclasses.asdict(seen)))


if __name__ == "__main__":
    main(*sys.argv[1:])
