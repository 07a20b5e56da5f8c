"""Runs for the in-process restart tests: the regression model of ``restart_runs``, with sample ids and losses.

Every micro-batch records the ids of its rows and its loss (exact floats), and every
optimizer step the rate it used. A run is either live (requests pushed at given steps,
``liveparams.train`` driving restarts) or the rule's reference: trained to step S with
the old settings and saved, then a fresh Trainer with the new settings resumed from
that checkpoint at the sample position computed here from first principles
(S's epoch and the samples its steps took), not from the code under test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from hooks_helpers import LrRecorder, PushAt, QueueSource
from restart_runs import ROWS, RUN_ARGS, Regression, Rows
from transformers import Trainer, TrainerCallback, TrainingArguments

import liveparams
from liveparams.contract import UpdateRequest
from liveparams.trainer_hooks import RuntimeParameterCallback

MAX_STEPS = 40


@dataclass
class Seen:
    """What a run consumed: per micro-batch, the row ids and the loss; per optimizer step, the rate."""

    ids: list[list[int]] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    lrs: dict[int, float] = field(default_factory=dict)
    end: int = 0

    def samples(self) -> list[int]:
        return [i for batch in self.ids for i in batch]


class IdRows(Rows):
    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {**super().__getitem__(i), "idx": torch.tensor(i)}


class Recording(Regression):
    def __init__(self, seen: Seen) -> None:
        super().__init__()
        self.seen = seen

    def forward(self, x: torch.Tensor, labels: torch.Tensor, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        out = super().forward(x, labels)
        self.seen.ids.append(idx.tolist())
        self.seen.losses.append(float(out["loss"].detach()))
        return out


class PushOnce(PushAt):
    """``PushAt`` that pushes each request once: a rewound run passes the same steps again, and a source
    delivers a request once."""

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.source.push(*self.schedule.pop(state.global_step, []))


class StopAt(TrainerCallback):
    """Save and stop at the end of step ``step``: the reference's first half."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.step:
            control.should_save = control.should_training_stop = True


def _trainer(out: Path, seen: Seen, callbacks: list[Any], **args: Any) -> Trainer:
    recorder = LrRecorder()
    torch.manual_seed(0)
    trainer = Trainer(
        model=Recording(seen),
        args=TrainingArguments(output_dir=str(out), **{**RUN_ARGS, "max_steps": MAX_STEPS, **args}),
        train_dataset=IdRows(),
        callbacks=[recorder, *callbacks],
    )
    trainer.add_callback(_Rates(seen, recorder))
    return trainer


class _Rates(TrainerCallback):
    def __init__(self, seen: Seen, recorder: LrRecorder) -> None:
        self.seen, self.recorder = seen, recorder

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.seen.lrs.update(self.recorder.first_group())
        self.seen.end = state.global_step


def live(
    out: Path, requests: dict[int, list[UpdateRequest]], *, driven: bool = True, **args: Any
) -> tuple[Seen, QueueSource]:
    """A run that gets ``requests`` live; ``driven``: called through ``liveparams.train``, else ``trainer.train()``."""
    seen, source = Seen(), QueueSource()
    callback = RuntimeParameterCallback(source)
    trainer = _trainer(out, seen, [PushOnce(source, dict(requests)), callback], **args)
    callback.bind(trainer)
    if driven:
        liveparams.train(trainer)
    else:
        trainer.train()
    return seen, source


def reference(out: Path, step: int, old: dict[str, Any], new: dict[str, Any], end: int | None = None) -> Seen:
    """Trained to ``step`` with ``old``, saved; then a fresh Trainer with ``new`` goes on from the same samples.

    With ``end``, the second part stops there (as a run stopped by a request at that step).
    """
    seen = Seen()
    _trainer(out, seen, [StopAt(step)], **old).train()
    return resumed_from(out / f"checkpoint-{step}", step, old, new, seen=seen, end=end)


def resumed_from(
    checkpoint: Path,
    step: int,
    old: dict[str, Any],
    new: dict[str, Any],
    *,
    seen: Seen | None = None,
    end: int | None = None,
    at_begin: list[UpdateRequest] | None = None,
) -> Seen:
    """A fresh Trainer with ``new`` resumed from ``checkpoint`` (saved at ``step`` with ``old``), at its samples.

    The position is counted here: ``step``'s epoch, and the samples its steps took with ``old``.
    ``at_begin``: requests queued before ``train()``, applied as it begins (a resume's replays).
    """
    seen = seen or Seen()
    old_args = {**RUN_ARGS, **old}
    per_step = old_args["per_device_train_batch_size"] * old_args["gradient_accumulation_steps"]
    steps_per_epoch = math.ceil(ROWS / per_step)
    epoch, samples = step // steps_per_epoch, (step % steps_per_epoch) * per_step
    source = QueueSource()
    source.push(*(at_begin or []))
    callback = RuntimeParameterCallback(source)
    resumed = _trainer(checkpoint.parent / "resumed", seen, [StopAt(end)] if end else [], **{**old, **new})
    resumed.add_callback(callback.bind(resumed))
    batch = resumed.args.per_device_train_batch_size
    resumed._init_training_state = _at(resumed._init_training_state, epoch, samples // batch)  # type: ignore[method-assign]
    resumed.set_initial_training_values = _enough_epochs(resumed.set_initial_training_values)  # type: ignore[method-assign]
    resumed.train(resume_from_checkpoint=str(checkpoint))
    return seen


def _at(init: Any, epoch: int, batches: int) -> Any:
    def at(*a: Any, **k: Any) -> tuple[int, int]:
        init(*a, **k)
        return epoch, batches

    return at


def _enough_epochs(values: Any) -> Any:
    def enough(*a: Any, **k: Any) -> tuple[Any, ...]:
        got = list(values(*a, **k))
        got[0] = got[6]  # max_steps: an upper bound, the loop stops there
        return tuple(got)

    return enough


def uninterrupted(out: Path, **args: Any) -> Seen:
    """The same run with no change at all: the order the samples come in."""
    seen = Seen()
    _trainer(out, seen, [], **args).train()
    return seen
