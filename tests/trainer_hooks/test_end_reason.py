"""The source hears how training ended (completed, stopped by a request, crashed) and at which step, once."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest
from hooks_helpers import PushAt, QueueSource, plain_trainer, request, training_args
from transformers import TrainerCallback

from liveparams.trainer_hooks import RuntimeParameterCallback

STEPS = 12


class RaiseAt(TrainerCallback):
    """Makes ``train()`` raise at the end of one step, as a crash in the user's code would."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.step:
            raise RuntimeError("the user's training code failed")


def train(
    tiny_dir: str, tmp_path: Path, source: QueueSource, before: list[Any] = (), after: list[Any] = ()
) -> RuntimeParameterCallback:
    """One run of the tiny model with the callback between ``before`` and ``after``."""
    callback = RuntimeParameterCallback(source)
    trainer = plain_trainer(tiny_dir, training_args(tmp_path / "out", max_steps=STEPS), [*before, callback, *after])
    callback.bind(trainer)
    trainer.train()
    return callback


def test_a_run_that_reaches_its_end_is_completed(tiny_dir: str, tmp_path: Path, source: QueueSource) -> None:
    train(tiny_dir, tmp_path, source)
    assert source.ends == [("completed", STEPS)]
    assert source.closes == 1


def test_a_stop_request_ends_the_run_as_stopped_at_its_step(tiny_dir: str, tmp_path: Path, source: QueueSource) -> None:
    train(tiny_dir, tmp_path, source, before=[PushAt(source, {4: [request(command="stop")]})])
    assert source.ends == [("stopped", 4)]  # applied at the step boundary it arrived at


@pytest.mark.parametrize("where", ["after", "before"])
def test_a_train_that_raises_is_recorded_as_crashed_at_the_step_it_reached(
    tiny_dir: str, tmp_path: Path, source: QueueSource, where: str
) -> None:
    """Also when it raises in a callback that runs before ours: step 5 was taken, though ours never saw it end.

    Ctrl-C lands the same way, anywhere between the trainer counting a step and our ``on_step_end``.
    """
    with pytest.raises(RuntimeError, match="failed"):
        train(tiny_dir, tmp_path, source, **{where: [RaiseAt(5)]})
    gc.collect()  # the callback is gone with the failed run: its source is closed as crashed
    assert source.ends == [("crashed", 5)]
    assert source.closes == 1
