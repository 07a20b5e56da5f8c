"""A real tiny training with the one line a user adds (``liveparams.train``), for the panel's browser test.

``python panel_trainer.py OUT STEPS DELAY``.

The job and the trainer's credential come from the environment (``JOB_ID``, ``SUPABASE_URL``,
``SUPABASE_ANON_KEY``, ``LIVEPARAMS_TOKEN``), as in a user's training script. Each step is slowed
by ``DELAY`` seconds so that a person (or the browser) can act while it runs; it logs every step.
``liveparams.train`` rather than ``trainer.train()``, so that a batch size set from the panel is applied
by an in-process restart.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from transformers import TrainerCallback

import liveparams
from liveparams.demo.tiny import demo_sft_trainer


class Pace(TrainerCallback):
    def __init__(self, delay: float) -> None:
        self.delay = delay

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        time.sleep(self.delay)


def main(output: str, steps: str, delay: str) -> None:
    trainer = demo_sft_trainer(output, int(steps), callbacks=[Pace(float(delay))])
    liveparams.train(trainer)


if __name__ == "__main__":
    main(*sys.argv[1:4])
