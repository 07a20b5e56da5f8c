"""A real tiny training with the one line a user adds, for the panel's browser test.

``python panel_trainer.py OUT STEPS DELAY``.

The job and the trainer's credential come from the environment (``JOB_ID``, ``SUPABASE_URL``,
``SUPABASE_ANON_KEY``, ``LIVEPARAMS_TOKEN``), as in a user's training script. Each step is slowed
by ``DELAY`` seconds so that a person (or the browser) can act while it runs; it logs every step.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from transformers import TrainerCallback

from liveparams import RuntimeParameterCallback
from liveparams.demo.tiny import demo_sft_trainer


class Pace(TrainerCallback):
    def __init__(self, delay: float) -> None:
        self.delay = delay

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        time.sleep(self.delay)


def main(output: str, steps: str, delay: str) -> None:
    trainer = demo_sft_trainer(output, int(steps), callbacks=[Pace(float(delay))])
    trainer.add_callback(RuntimeParameterCallback.from_env(trainer))
    trainer.train()


if __name__ == "__main__":
    main(*sys.argv[1:4])
