"""What an applier may read and change: the live objects of one training run.

The callback fills an :class:`ApplyContext` from what Trainer passes to its
hooks. A training loop without a Trainer (plain PyTorch or accelerate) can
build one from its own objects and use the same appliers:

- ``optimizer``: a ``torch.optim.Optimizer`` (or accelerate's wrapper);
- ``lr_scheduler``: None, a ``LambdaLR`` (one from ``transformers.get_scheduler`` has
  a shape the appliers can edit; a plain torch ``LambdaLR``'s lambdas are opaque, so
  its peak and mode change but not its warmup) or a metric-driven one
  (``ReduceLROnPlateau``), unwrapped from accelerate's ``AcceleratedScheduler``
  (``_schedule.unwrap``);
- ``args``: any object with attributes (not slots: a request's undo copies its
  ``__dict__``) carrying the fields of ``TrainingArguments`` the appliers use, such as
  ``max_grad_norm`` and ``max_steps``; the loop must read back what they set (the
  clipping norm at every clip). Each family's module docstring in ``_appliers`` lists
  its fields;
- ``state``: ``global_step``, ``max_steps`` (which the loop checks), the intervals and
  ``is_world_process_zero``, as on ``TrainerState``;
- ``control``: the ``should_evaluate``/``should_save``/``should_training_stop`` flags
  of ``TrainerControl``, which the loop acts on after the step.

The ``model``, ``train_dataloader`` and ``trainer`` are optional: without them the
checks that need them refuse (``beta``) or assume less (how far ``max_steps`` may go).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ApplyContext", "Pause"]


@dataclass
class Pause:
    """Whether ``command=pause`` holds the run, and at which step; the callback keeps one per instance.

    Mutable, so a request's undo (``_snapshot``) can put it back when another rank refused the
    request: the hold is decided like any change, the same on every rank.
    """

    step: int | None = None  # the global step the run holds at; None while it runs


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
        pause (`Pause`, *optional*): the callback's hold, which ``command=pause``/``resume`` set; without
            it (a context built outside the callback) those commands are refused.
    """

    args: Any
    state: Any
    control: Any
    optimizer: Any = None
    lr_scheduler: Any = None
    model: Any = None
    train_dataloader: Any = None
    trainer: Any = None
    pause: Pause | None = None

    @property
    def trainer_name(self) -> str:
        """The trainer's class name, for reasons shown to the user."""
        return type(self.trainer).__name__ if self.trainer is not None else "this trainer (no trainer reference)"
