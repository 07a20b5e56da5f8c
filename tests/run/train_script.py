"""A training script that knows nothing of liveparams: a stock ``Trainer`` on the tiny model (see test_run.py).

It prints ``step N`` after each optimizer step (so the test can act mid-run) and
writes, per rank, the rate the optimizer used and the loss logged at each step and the
callbacks the trainer had at each ``train()``. ``--own-callback`` adds ``RuntimeParameterCallback``
itself, as the one-line embedding does; ``--twice`` calls ``train()`` a second time.
``--short-timeout`` makes the process groups created after start-up (liveparams' own) time out
after ``SHORT_TIMEOUT_S``. ``--reference STEP END`` is the run a live one is compared with: the
callback with an in-memory source that changes the rate to ``NEW_LR`` after STEP and stops after END.

Usage: [torchrun ...] train_script.py MODEL_DIR OUT_DIR MAX_STEPS [--own-callback] [--twice] [--short-timeout]
    [--reference STEP END]
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "trainer_hooks"))

from hooks_helpers import LrRecorder, PushAt, QueueSource, plain_trainer, request, training_args
from run_helpers import NEW_LR, SHORT_TIMEOUT_S


class PrintSteps(LrRecorder):
    """The rates used (``LrRecorder``), the losses logged, and ``step N`` on stdout once each step is taken."""

    def __init__(self) -> None:
        super().__init__()
        self.losses: dict[int, float] = {}

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        print(f"step {state.global_step}", flush=True)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if logs and "loss" in logs:
            self.losses[state.global_step] = logs["loss"]


def reference_callbacks(rank: int, change_at: int, end: int) -> list[Any]:
    """What a live run that changed the rate after ``change_at`` and stopped after ``end`` is compared with."""
    from liveparams import RuntimeParameterCallback
    from liveparams.trainer_hooks import _distributed

    taken = 0
    if "RANK" in os.environ:  # several ranks apply at the exchange after the one that took a request: every boundary
        _distributed.EXCHANGE_EVERY_S, taken = 0.0, 1
    if rank != 0:
        return [RuntimeParameterCallback()]  # the other ranks get rank 0's requests
    source = QueueSource()
    schedule = {change_at - taken: [request(learning_rate=NEW_LR)]}
    schedule.setdefault(end - taken, []).append(request(command="stop"))
    return [PushAt(source, schedule), RuntimeParameterCallback(source)]


def main(model_dir: str, out_dir: str, max_steps: str, *flags: str) -> None:
    rank = int(os.environ.get("RANK", "0"))
    recorder = PrintSteps()
    extra = {"ddp_backend": "gloo"} if "RANK" in os.environ else {}
    if "--short-timeout" in flags:
        from datetime import timedelta

        import torch.distributed as dist

        dist.distributed_c10d.default_pg_timeout = timedelta(seconds=SHORT_TIMEOUT_S)
    args = training_args(Path(out_dir) / "trainer", max_steps=int(max_steps), **extra)
    callbacks: list[Any] = [recorder]
    if "--reference" in flags:
        at = flags.index("--reference")
        callbacks += reference_callbacks(rank, int(flags[at + 1]), int(flags[at + 2]))
    trainer = plain_trainer(model_dir, args, callbacks)
    if "--own-callback" in flags:
        from liveparams import RuntimeParameterCallback

        trainer.add_callback(RuntimeParameterCallback.from_env(trainer))
    seen = []
    for _ in range(2 if "--twice" in flags else 1):
        trainer.train()
        seen.append([type(c).__name__ for c in trainer.callback_handler.callbacks])
    result = {
        "lrs": recorder.first_group(),
        "losses": recorder.losses,
        "callbacks": seen,
        "steps": trainer.state.global_step,
    }
    (Path(out_dir) / f"rank{rank}.json").write_text(json.dumps(result))
    if "RANK" in os.environ:  # leave together (see tests/distributed/ddp_run.py)
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:])
