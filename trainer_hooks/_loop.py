"""Live updates for a training loop without Trainer (plain PyTorch, accelerate): the same guarantees, shared.

A :class:`LoopUpdates` drives the very :class:`RuntimeParameterCallback` that
Trainer runs, with the objects Trainer would hand it: its own ``TrainerState``
and ``TrainerControl``, and :class:`LoopArgs` in place of ``TrainingArguments``
(the fields the appliers read and set, ``_context`` lists them). So a loop gets
the same appliers (a learning rate that follows the schedule as a restart
would, for ``transformers.get_scheduler`` schedules and torch's ``LambdaLR``;
any other scheduler is refused with its name), the same agreement between
ranks, the same record of what was decided (carried by :meth:`state_dict` into
checkpoints, so a resume neither applies a request twice nor loses one) and
the same outcomes on the job row. What Trainer does by itself, the loop does
from what this object says: it clips at :attr:`max_grad_norm`, stops at
:attr:`max_steps`, and saves, evaluates or stops when :meth:`step` says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import torch.distributed as dist
from transformers import TrainerControl, TrainerState

from liveparams.trainer_hooks._callback import RuntimeParameterCallback

__all__ = ["Commands", "LoopArgs", "LoopUpdates"]


@dataclass
class LoopArgs:
    """The ``TrainingArguments`` fields the appliers read and set, for a loop that has none.

    ``max_grad_norm`` 0 means no clipping (as in Trainer). Intervals are whole steps; 0 is never.
    """

    max_steps: int
    max_grad_norm: float = 0.0
    warmup_steps: float = 0
    gradient_accumulation_steps: int = 1
    lr_scheduler_kwargs: dict[str, Any] = field(default_factory=dict)
    logging_strategy: str = "no"  # a loop logs as it likes: logging_steps is refused, it would change nothing
    eval_strategy: str = "no"  # "steps" when the loop evaluates on the `evaluate` flag
    save_strategy: str = "steps"
    logging_steps: int = 0
    eval_steps: int = 0
    save_steps: int = 0

    def get_warmup_steps(self, total: int) -> int:
        """A warmup given as a ratio (< 1) is of the total, as in ``TrainingArguments``."""
        return math.ceil(total * self.warmup_steps) if 0 < self.warmup_steps < 1 else int(self.warmup_steps)


@dataclass(frozen=True)
class Commands:
    """What the loop must do after this optimizer step (a request, an interval, or ``max_steps`` reached)."""

    save: bool = False
    evaluate: bool = False
    stop: bool = False


class LoopUpdates:
    """Live parameter updates for a loop without Trainer; call :meth:`step` after each optimizer step.

    Args:
        optimizer: the ``torch.optim.Optimizer`` (or accelerate's wrapper of it).
        lr_scheduler (*optional*): the scheduler (or accelerate's wrapper): one from
            ``transformers.get_scheduler`` or a ``LambdaLR``, else learning-rate changes are refused.
        max_steps (`int`): optimizer steps of the run; the loop stops at :attr:`max_steps`, which may change.
        max_grad_norm (`float`, defaults to 0): the clipping norm the loop reads from :attr:`max_grad_norm`
            at every clip; 0 is no clipping.
        evaluate (`bool`, defaults to False): whether the loop evaluates when :meth:`step` says so;
            without it ``command=evaluate`` and ``eval_steps`` are refused.
        save_steps / eval_steps (`int`, defaults to 0): save / evaluate every that many steps (0: never).
        model, train_dataloader (*optional*): as Trainer gives them (weight decay groups, how far
            ``max_steps`` may go).
        callback (`RuntimeParameterCallback`, *optional*): the callback to drive; :meth:`from_env` builds it.

    Example (plain PyTorch)::

        live = LoopUpdates.from_env(optimizer, scheduler, max_steps=1000, max_grad_norm=1.0)
        with live:
            while live.global_step < live.max_steps:
                ...
                torch.nn.utils.clip_grad_norm_(model.parameters(), live.max_grad_norm)
                optimizer.step(); scheduler.step(); optimizer.zero_grad()
                if live.step().stop:
                    break
    """

    def __init__(
        self,
        optimizer: Any,
        lr_scheduler: Any = None,
        *,
        max_steps: int,
        max_grad_norm: float = 0.0,
        evaluate: bool = False,
        save_steps: int = 0,
        eval_steps: int = 0,
        model: Any = None,
        train_dataloader: Any = None,
        callback: RuntimeParameterCallback | None = None,
    ) -> None:
        rank0 = not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0
        self.args = LoopArgs(
            max_steps=max_steps,
            max_grad_norm=max_grad_norm,
            eval_strategy="steps" if evaluate else "no",
            eval_steps=eval_steps,
            save_steps=save_steps,
        )
        self.state = TrainerState(
            max_steps=max_steps,
            eval_steps=eval_steps,
            save_steps=save_steps,
            is_world_process_zero=rank0,
            is_local_process_zero=rank0,
        )
        self.control = TrainerControl()
        self.callback = callback if callback is not None else RuntimeParameterCallback()
        self._objects = {
            "optimizer": optimizer,
            "lr_scheduler": lr_scheduler,
            "model": model,
            "train_dataloader": train_dataloader,
        }
        self._started = False

    @classmethod
    def from_env(cls, optimizer: Any, lr_scheduler: Any = None, **kwargs: Any) -> LoopUpdates:
        """Updates from the job the environment names (``JOB_ID`` ..., as ``RuntimeParameterCallback.from_env``)."""
        return cls(optimizer, lr_scheduler, callback=RuntimeParameterCallback.from_env(), **kwargs)

    # ---- what the loop reads -------------------------------------------------------------------

    @property
    def global_step(self) -> int:
        """Optimizer steps taken, counted by :meth:`step` (restored by :meth:`load_state_dict`)."""
        return int(self.state.global_step)

    @property
    def max_steps(self) -> int:
        """Where the run ends; a live ``max_steps`` changes it."""
        return int(self.state.max_steps)

    @property
    def max_grad_norm(self) -> float:
        """The clipping norm in force; read it at every clip (0: no clipping)."""
        return float(self.args.max_grad_norm or 0.0)

    # ---- the story of a run --------------------------------------------------------------------

    def start(self) -> LoopUpdates:
        """Begin the run (after any :meth:`load_state_dict`): requests already made apply before the first step."""
        if not self._started:
            self._started = True
            self.callback.on_train_begin(self.args, self.state, self.control, **self._objects)
        return self

    def step(self) -> Commands:
        """Count one optimizer step and apply what arrived; what the loop must do now."""
        self.start()
        state, control = self.state, self.control
        state.global_step += 1
        control.should_save = _every(state.save_steps, state.global_step)
        control.should_evaluate = self.args.eval_strategy == "steps" and _every(state.eval_steps, state.global_step)
        control.should_training_stop = state.global_step >= state.max_steps  # as Trainer's flow callback
        self.callback.on_step_end(self.args, state, control, **self._objects)
        return Commands(control.should_save, control.should_evaluate, control.should_training_stop)

    def close(self) -> None:
        """End the run: the job row says how (stopped by a request, or completed); idempotent."""
        if self._started:
            self._started = False
            self.callback.on_train_end(self.args, self.state, self.control, **self._objects)

    def __enter__(self) -> LoopUpdates:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            self._started = False
            self.callback.close()  # the run did not end: the source closes without saying how

    # ---- checkpoints ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps (the step, and what was decided): ``torch.save`` or accelerate carries it.

        Called to save, as Trainer calls ``on_save`` (after which the callback forgets what no rewind needs).
        """
        saved = {"global_step": self.global_step, "callback": self.callback.state()}
        args: Any = self.args  # what the callback reads of TrainingArguments
        self.callback.on_save(args, self.state, self.control, **self._objects)
        return saved

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from a checkpoint's :meth:`state_dict`; before :meth:`start` (``with``)."""
        if self._started:
            raise RuntimeError("load_state_dict must come before start(): the run has begun")
        self.state.global_step = int(state["global_step"])
        saved: Any = self.state.stateful_callbacks  # a dict once TrainerState is built (typed as its input)
        saved[type(self.callback).__name__] = state["callback"]


def _every(interval: int, step: int) -> bool:
    return interval > 0 and step % interval == 0
