"""Make every rank apply the same requests at the same global step.

Only rank 0 has an update source. Applying there alone silently diverges
the replicas (measured, shared/trainer-mechanics.md), so rank 0's drained
requests are broadcast to all ranks. The collective is called by every rank
at the same hook whether or not anything was drained: a collective gated on
rank-local information deadlocks.

Most steps nothing is queued, so the common case is one broadcast of a
one-element count tensor; the pickled requests follow only when the count is
not zero (every rank sees the same count, so every rank takes the same path).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

__all__ = ["broadcast_from_rank0", "is_multi_process"]


def is_multi_process() -> bool:
    """Whether a process group with more than one rank is running (the same answer on every rank)."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def broadcast_from_rank0(items: list[Any]) -> list[Any]:
    """Return rank 0's ``items`` on every rank (other ranks pass ``[]``)."""
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    count = torch.tensor([len(items)], dtype=torch.int64, device=device)
    dist.broadcast(count, src=0)
    if int(count.item()) == 0:
        return []
    box: list[Any] = [items]
    dist.broadcast_object_list(box, src=0)
    return list(box[0])
