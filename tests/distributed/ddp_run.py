"""One rank of a 2-process DDP run (started by ``torchrun``; see test_ddp.py).

Rank 0 alone has an update source, scripted to queue learning-rate changes
mid-run (in mode ``no-source`` no rank has one, as when ``JOB_ID`` is unset).
Every rank writes its final weights, the rates it used and how many
broadcasts it made during the steps, so the test can compare replicas.

Usage: torchrun --nproc_per_node 2 ddp_run.py MODEL_DIR OUT_DIR {broadcast|no-broadcast|no-source}
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "trainer_hooks"))

import torch
import torch.distributed as dist
from hooks_helpers import LrRecorder, PushAt, QueueSource, plain_trainer, request, training_args
from transformers import TrainerCallback

from liveparams import RuntimeParameterCallback


class BroadcastCounter(TrainerCallback):
    """Counts ``torch.distributed`` broadcasts between train begin and train end (added after the callback)."""

    NAMES = ("broadcast", "broadcast_object_list")

    def __init__(self) -> None:
        self.count = 0
        self.originals: dict[str, Callable[..., Any]] = {}

    def _counting(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return original(*args, **kwargs)

        return counted

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        for name in self.NAMES:
            self.originals[name] = getattr(dist, name)
            setattr(dist, name, self._counting(self.originals[name]))

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        for name, original in self.originals.items():
            setattr(dist, name, original)


def main(model_dir: str, out_dir: str, mode: str) -> None:
    rank = int(os.environ["RANK"])
    source = QueueSource() if rank == 0 and mode != "no-source" else None
    callback = RuntimeParameterCallback(source, sync_ranks=mode != "no-broadcast")
    recorder, counter = LrRecorder(), BroadcastCounter()
    callbacks = [recorder, callback, counter]
    if source is not None:
        schedule = {3: [request(learning_rate=5e-3)], 6: [request(learning_rate=2e-4, weight_decay=0.3)]}
        callbacks.insert(0, PushAt(source, schedule))
    args = training_args(Path(out_dir) / "trainer", max_steps=10, ddp_backend="gloo", weight_decay=0.01)
    trainer = plain_trainer(model_dir, args, callbacks)
    trainer.train()
    weights = {k: v.detach().cpu() for k, v in trainer.model.state_dict().items()}
    result = {"weights": weights, "lrs": recorder.first_group(), "step_broadcasts": counter.count}
    torch.save(result, Path(out_dir) / f"rank{rank}.pt")


if __name__ == "__main__":
    main(*sys.argv[1:4])
