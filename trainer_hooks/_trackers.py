"""Applied changes, logged through the trainer's own logging, so the user's trackers record them too.

Whatever ``report_to`` names (TensorBoard, W&B, MLflow, Trackio, ...) receives ``on_log`` from
``Trainer.log``; logging ``{"liveparams/<parameter>": new value}`` there puts each applied change
into those tools at the step it was applied at. The reporting callbacks name it as they name any
training log (TensorBoard and W&B: ``train/liveparams/learning_rate``).

``transformers.Trainer.log`` is called, not the trainer's own ``log``: TRL's trainers override it
to flush the metrics they average between two logging steps, and a change must not cut that
average short.
"""

from __future__ import annotations

import logging
from typing import Any

from liveparams.contract import TRACKER_PREFIX, OutcomeStatus, UpdateOutcome

__all__ = ["log_to_trackers", "tracker_scalars"]

logger = logging.getLogger(__name__)


def tracker_scalars(outcome: UpdateOutcome) -> dict[str, float]:
    """``{"liveparams/<parameter>": new value}`` for the numeric values an applied outcome changed."""
    if outcome.status is not OutcomeStatus.APPLIED:
        return {}
    return {
        f"{TRACKER_PREFIX}{name}": float(change.new)
        for name, change in outcome.changes.items()
        if isinstance(change.new, int | float) and not isinstance(change.new, bool)
    }


def log_to_trackers(trainer: Any, outcome: UpdateOutcome) -> None:
    """Log an applied outcome's new values through ``trainer``'s logging; nothing without a trainer."""
    scalars = tracker_scalars(outcome)
    if trainer is None or not scalars:
        return
    try:
        from transformers import Trainer

        # The callback handler's on_log clears should_log; at a step end that would cancel the
        # step's own log, which DefaultFlowCallback has just asked for.
        should_log = trainer.control.should_log
        Trainer.log(trainer, scalars)
        trainer.control.should_log = should_log
    except Exception:
        logger.exception("logging the applied change to the trainer's trackers failed")
