"""One rank of a 4-process plain PyTorch loop with ``LoopUpdates`` (started by ``torchrun``; see test_agreement.py).

Rank 0 alone has an update source. It queues, before the step boundaries named in
``PUSHES``, a learning-rate change, then a change of rate and weight decay whose weight
decay fails to apply on rank 2 only, then a stop. Every rank writes the rate and weight
decay its optimizer used at each step, where it stopped, its final weights and the
boundaries at which it posted a header; rank 0 also writes the outcomes its source received.

Mode ``every``: an exchange at every step boundary. Mode ``spaced``: rank 0 spaces them
``GAP`` boundaries apart, as it does by itself when steps are short (fixed here, so that the
test knows the steps).

Usage: torchrun --nproc_per_node 4 agreement_run.py OUT_DIR {every|spaced}
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "trainer_hooks"))

import torch
import torch.distributed as dist
from hooks_helpers import QueueSource, request
from rank_life import leave_together, watch_for_hangs
from torch import nn
from transformers import get_scheduler

from liveparams import LoopUpdates, RuntimeParameterCallback
from liveparams.trainer_hooks import _distributed, get_applier

FAILING_RANK = 2
GAP = 3  # boundaries between exchanges in mode "spaced"
MAX_STEPS = 40
PUSHES = {  # step boundary → what rank 0's source has queued by then
    3: [request(learning_rate=5e-3)],
    6: [request(learning_rate=2e-3, weight_decay=0.3)],
    9: [request(command="stop")],
}


def fail_weight_decay() -> None:
    def broken(value: Any, ctx: Any) -> None:
        raise RuntimeError(f"apply failed on rank {FAILING_RANK} only")

    get_applier("weight_decay").apply = broken  # type: ignore[method-assign]


def record_posts(posts: list[int]) -> None:
    post = _distributed.RankSync.post

    def recorded(self: _distributed.RankSync, requests: Any, step: int, **kwargs: Any) -> None:
        posts.append(step)
        post(self, requests, step, **kwargs)

    _distributed.RankSync.post = recorded  # type: ignore[method-assign]


def main(out_dir: str, mode: str) -> None:
    watch_for_hangs()
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    if rank == FAILING_RANK:
        fail_weight_decay()
    if mode == "every":
        _distributed.EXCHANGE_EVERY_S = 0.0
    else:
        _distributed._Cadence.gap = lambda self, step: GAP  # type: ignore[method-assign]
    posts: list[int] = []
    record_posts(posts)
    torch.manual_seed(0)
    model = nn.parallel.DistributedDataParallel(nn.Linear(4, 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=2, num_training_steps=MAX_STEPS)
    source = QueueSource() if rank == 0 else None
    callback = RuntimeParameterCallback(source)
    live = LoopUpdates(optimizer, scheduler, max_steps=MAX_STEPS, model=model, callback=callback)
    lrs, decays = [], []
    with live:
        while live.global_step < live.max_steps:
            model(torch.randn(8, 4) + rank).pow(2).mean().backward()
            lrs.append(optimizer.param_groups[0]["lr"])
            decays.append(optimizer.param_groups[0]["weight_decay"])
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            if source is not None:
                source.push(*PUSHES.get(live.global_step + 1, []))
            if live.step().stop:
                break
    result = {
        "lrs": lrs,
        "weight_decay": decays,
        "stopped": live.global_step,
        "weights": [p.detach().clone() for p in model.parameters()],
        "posts": posts,
        "outcomes": [(o.status.value, o.step, o.reason) for o in source.outcomes] if source else [],
    }
    torch.save(result, Path(out_dir) / f"rank{rank}.pt")
    leave_together()


if __name__ == "__main__":
    main(*sys.argv[1:3])
