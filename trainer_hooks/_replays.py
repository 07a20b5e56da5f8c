"""What this process applied, by step: what an in-process restart or a rewind replays.

A rewind to the checkpoint of step S goes on from S without starting the source again, so the
requests applied after S must come from here (``AppliedLog.replays_after``). Only those after
a checkpoint a rewind can still reach are ever needed: a rewind goes back to a checkpoint in
``output_dir`` (``_restart.find_checkpoint``), and every checkpoint saved later is at a later
step than the run has reached. So at each save (``on_save``, off the per-step path: one
listing of ``output_dir``) what was applied at or before the oldest checkpoint still on disk
is forgotten (:meth:`AppliedLog.forget_before_checkpoints`). With ``save_total_limit`` the log
then holds what was applied since the oldest kept checkpoint, whatever the job's history; a
run that keeps every checkpoint keeps what a rewind to its first one needs.

Each rank lists the folder it sees. A rewind applies only where every rank found its checkpoint
(the ranks agree on every outcome), and a rank forgets nothing a checkpoint it sees needs, so
what they replay is the same on every rank.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field

from liveparams.contract import UpdateRequest

__all__ = ["AppliedLog"]

logger = logging.getLogger(__name__)

_CHECKPOINT = re.compile(r"checkpoint-(\d+)")  # Trainer's folder names (``PREFIX_CHECKPOINT_DIR``)


def _checkpoint_steps(output_dir: str) -> list[int]:
    """The steps of the checkpoints in ``output_dir`` (none when it does not exist)."""
    try:
        names = os.listdir(output_dir)
    except FileNotFoundError:
        return []
    return [int(m.group(1)) for name in names if (m := _CHECKPOINT.fullmatch(name))]


@dataclass
class AppliedLog:
    """``(step, request)`` for each request applied in this process, as a replay would carry it, in order."""

    entries: list[tuple[int, UpdateRequest]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, step: int, request: UpdateRequest) -> None:
        self.entries.append((step, request))

    def replays_after(self, step: int) -> list[UpdateRequest]:
        """What a resume from ``step`` replays (the requests applied after it), forgotten here until applied again."""
        replays = [request for at, request in self.entries if at > step and request.params]
        self.entries = [(at, request) for at, request in self.entries if at <= step]
        return replays

    def forget_before_checkpoints(self, output_dir: str | None, step: int) -> None:
        """Forget what was applied at or before the oldest checkpoint in ``output_dir`` (and ``step``, the run's).

        No rewind can replay it any more: see the module's docstring. A folder that cannot be
        listed forgets nothing.
        """
        try:
            saved = _checkpoint_steps(output_dir) if output_dir else []
        except OSError as exc:
            logger.debug("listing %s for the checkpoints a rewind may reach failed: %s", output_dir, exc)
            return
        oldest = min([step, *saved])
        self.entries = [(at, request) for at, request in self.entries if at > oldest]
