"""Make every rank apply the same requests at the same global step.

Only rank 0 has an update source. Applying there alone silently diverges
the replicas (measured, shared/trainer-mechanics.md), so rank 0's drained
requests are broadcast to all ranks. A collective must be called by every
rank at the same hook whether or not anything was drained: one gated on
rank-local information deadlocks.

What that costs, and why it is shaped this way:

- At train begin, every rank learns once whether rank 0 has a source at all
  (:meth:`RankSync.enabled_on_rank0`). When it has none (no ``JOB_ID``, the
  source failed to start) no rank makes any per-step collective.
- Otherwise each step boundary broadcasts a one-element count from rank 0; the
  pickled requests follow only when it is not zero (every rank sees the same
  count, so every rank takes the same path).
- Both go over a gloo group of all ranks, on CPU tensors. Under NCCL a count
  on the GPU would need ``.item()``, a CUDA synchronisation every step; over
  gloo the step's GPU work is never waited for.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

__all__ = ["RankSync", "is_multi_process"]


def is_multi_process() -> bool:
    """Whether a process group with more than one rank is running (the same answer on every rank)."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class RankSync:
    """Rank 0 → all ranks, over a CPU (gloo) group of every rank.

    Creating one is itself collective (``new_group``): every rank must build it at
    the same point, once per process group.
    """

    def __init__(self) -> None:
        self.world = dist.group.WORLD
        # Always a group of its own, even when the default backend is gloo: one code path, the one tested on CPU.
        self._group = dist.new_group(backend="gloo")

    def is_for_current_world(self) -> bool:
        """False once the process group this was built in has been destroyed or replaced."""
        return is_multi_process() and dist.group.WORLD is self.world

    def _broadcast_int(self, value: int) -> int:
        box = torch.tensor([value], dtype=torch.int64)
        dist.broadcast(box, src=0, group=self._group)
        return int(box.item())  # a CPU tensor: no device synchronisation

    def enabled_on_rank0(self, enabled: bool) -> bool:
        """Rank 0's ``enabled`` on every rank (other ranks' argument is ignored)."""
        return bool(self._broadcast_int(int(enabled)))

    def broadcast(self, items: list[Any]) -> list[Any]:
        """Return rank 0's ``items`` on every rank (other ranks pass ``[]``)."""
        if self._broadcast_int(len(items)) == 0:
            return []
        box: list[Any] = [items]
        dist.broadcast_object_list(box, src=0, group=self._group)
        return list(box[0])
