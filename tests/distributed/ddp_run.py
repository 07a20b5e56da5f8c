"""One rank of a 2-process DDP run (started by ``torchrun``; see test_ddp.py).

Rank 0 alone has an update source, scripted to queue learning-rate changes
mid-run. Every rank writes its final weights and the rates it used, so the
test can compare replicas.

Usage: torchrun --nproc_per_node 2 ddp_run.py MODEL_DIR OUT_DIR {broadcast|no-broadcast}
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "trainer_hooks"))

import torch
from hooks_helpers import LrRecorder, PushAt, QueueSource, plain_trainer, request, training_args

from trainer_hooks import RuntimeParameterCallback


def main(model_dir: str, out_dir: str, mode: str) -> None:
    rank = int(os.environ["RANK"])
    source = QueueSource() if rank == 0 else None
    callback = RuntimeParameterCallback(source)
    callback._broadcast = mode == "broadcast"
    recorder = LrRecorder()
    callbacks = [recorder, callback]
    if source is not None:
        schedule = {3: [request(learning_rate=5e-3)], 6: [request(learning_rate=2e-4, weight_decay=0.3)]}
        callbacks.insert(0, PushAt(source, schedule))
    args = training_args(Path(out_dir) / "trainer", max_steps=10, ddp_backend="gloo", weight_decay=0.01)
    trainer = plain_trainer(model_dir, args, callbacks)
    trainer.train()
    weights = {k: v.detach().cpu() for k, v in trainer.model.state_dict().items()}
    torch.save({"weights": weights, "lrs": recorder.first_group()}, Path(out_dir) / f"rank{rank}.pt")


if __name__ == "__main__":
    main(*sys.argv[1:4])
