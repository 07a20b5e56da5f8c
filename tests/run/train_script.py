"""A training script that knows nothing of liveparams: a stock ``Trainer`` on the tiny model (see test_run.py).

It prints ``step N`` after each optimizer step (so the test can act mid-run) and
writes, per rank, the rate the optimizer used at each step and the callbacks the
trainer had at each ``train()``. ``--own-callback`` adds ``RuntimeParameterCallback``
itself, as the one-line embedding does; ``--twice`` calls ``train()`` a second time.

Usage: [torchrun ...] train_script.py MODEL_DIR OUT_DIR MAX_STEPS [--own-callback] [--twice]
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "trainer_hooks"))

from hooks_helpers import LrRecorder, plain_trainer, training_args


class PrintSteps(LrRecorder):
    """The rates used (``LrRecorder``), and ``step N`` on stdout once each step is taken."""

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        print(f"step {state.global_step}", flush=True)


def main(model_dir: str, out_dir: str, max_steps: str, *flags: str) -> None:
    rank = int(os.environ.get("RANK", "0"))
    recorder = PrintSteps()
    extra = {"ddp_backend": "gloo"} if "RANK" in os.environ else {}
    args = training_args(Path(out_dir) / "trainer", max_steps=int(max_steps), **extra)
    trainer = plain_trainer(model_dir, args, [recorder])
    if "--own-callback" in flags:
        from liveparams import RuntimeParameterCallback

        trainer.add_callback(RuntimeParameterCallback.from_env(trainer))
    callbacks = []
    for _ in range(2 if "--twice" in flags else 1):
        trainer.train()
        callbacks.append([type(c).__name__ for c in trainer.callback_handler.callbacks])
    result = {"lrs": recorder.first_group(), "callbacks": callbacks, "steps": trainer.state.global_step}
    (Path(out_dir) / f"rank{rank}.json").write_text(json.dumps(result))
    if "RANK" in os.environ:  # leave together (see tests/distributed/ddp_run.py)
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:])
