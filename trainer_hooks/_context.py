"""What an applier may read and change: the live objects of one training run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ApplyContext"]


@dataclass
class ApplyContext:
    """The live training objects, gathered once per non-empty drain.

    Args:
        args (`TrainingArguments`): the run's arguments (only fields Trainer reads live are changed).
        state (`TrainerState`): progress; holds the intervals and ``max_steps`` the loop reads.
        control (`TrainerControl`): flags for one-off commands.
        optimizer (`torch.optim.Optimizer`, *optional*): as passed to callbacks (may be accelerate's wrapper).
        lr_scheduler (*optional*): the scheduler, already unwrapped from accelerate's ``AcceleratedScheduler``.
        model (*optional*): the model being trained.
        train_dataloader (*optional*): used to know how many steps the planned epochs hold.
        trainer (`Trainer`, *optional*): needed for knobs TRL copies onto the trainer (``beta``).
        params (`dict`): the parameters of the request being checked (or the values set again after
            a resume), for a check that depends on another parameter set with it (``save_steps``
            and ``eval_steps``).
    """

    args: Any
    state: Any
    control: Any
    optimizer: Any = None
    lr_scheduler: Any = None
    model: Any = None
    train_dataloader: Any = None
    trainer: Any = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def trainer_name(self) -> str:
        """The trainer's class name, for reasons shown to the user."""
        return type(self.trainer).__name__ if self.trainer is not None else "this trainer (no trainer reference)"
