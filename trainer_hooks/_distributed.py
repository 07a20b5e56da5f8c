"""Make every rank apply the same requests at the same global step.

Only rank 0 has an update source. Applying there alone silently diverges
the replicas (measured, shared/trainer-mechanics.md), so rank 0's drained
requests are broadcast to all ranks. The collective is called by every rank
at the same hook whether or not anything was drained: a collective gated on
rank-local information deadlocks.
"""

from __future__ import annotations

from typing import Any

import torch.distributed as dist

__all__ = ["broadcast_from_rank0", "is_multi_process"]


def is_multi_process() -> bool:
    """Whether a process group with more than one rank is running (the same answer on every rank)."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def broadcast_from_rank0(payload: Any) -> Any:
    """Return rank 0's ``payload`` on every rank (pickled; small lists of frozen dataclasses)."""
    box = [payload]
    dist.broadcast_object_list(box, src=0)
    return box[0]
