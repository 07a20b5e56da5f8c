"""One rank of a 2-process plain PyTorch loop with ``LoopUpdates`` (started by ``torchrun``; see test_ddp.py).

Rank 0 alone has an update source, which queues a learning-rate change at step 3 and a
stop at step 6; every rank writes the rate its optimizer used at each step and where it stopped.

Usage: torchrun --nproc_per_node 2 loop_run.py OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "trainer_hooks"))

import torch
import torch.distributed as dist
from hooks_helpers import QueueSource, request
from rank_life import leave_together, watch_for_hangs
from torch import nn
from transformers import get_scheduler

from liveparams import LoopUpdates, RuntimeParameterCallback
from liveparams.trainer_hooks import _distributed


def main(out_dir: str) -> None:
    watch_for_hangs()
    dist.init_process_group("gloo")
    _distributed.EXCHANGE_EVERY_S = 0.0  # an exchange at every boundary: taken at step k, applied at k + 1
    rank = dist.get_rank()
    torch.manual_seed(0)
    model = nn.parallel.DistributedDataParallel(nn.Linear(4, 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=2, num_training_steps=20)
    source = QueueSource() if rank == 0 else None
    pushes = {3: [request(learning_rate=5e-3)], 6: [request(command="stop")]}
    live = LoopUpdates(optimizer, scheduler, max_steps=20, callback=RuntimeParameterCallback(source))
    used = []
    with live:
        while live.global_step < live.max_steps:
            model(torch.randn(8, 4) + rank).pow(2).mean().backward()
            used.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            if source is not None:
                source.push(*pushes.get(live.global_step + 1, []))
            if live.step().stop:
                break
    weights = [p.detach().clone() for p in model.parameters()]
    torch.save({"lrs": used, "stopped": live.global_step, "weights": weights}, Path(out_dir) / f"rank{rank}.pt")
    leave_together()


if __name__ == "__main__":
    main(sys.argv[1])
