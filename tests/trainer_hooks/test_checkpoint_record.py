"""What a checkpoint keeps of the decided requests: reading the callback's state changes nothing; a save does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hooks_helpers import PushAt, QueueSource, plain_trainer, request, training_args
from transformers import TrainerCallback, TrainerControl, TrainerState

from liveparams.trainer_hooks import RuntimeParameterCallback


def recent_outcomes(state: dict[str, Any]) -> set[str]:
    return set(state["attributes"]["recent_outcomes"])


def test_reading_the_state_twice_gives_the_same_answer_until_a_save(tmp_path: Path, source: QueueSource) -> None:
    args, state, control = training_args(tmp_path), TrainerState(), TrainerControl()
    callback = RuntimeParameterCallback(source)
    callback.on_train_begin(args, state, control)
    decided = request(max_grad_norm=0.5)
    source.push(decided)
    state.global_step = 1
    callback.on_step_end(args, state, control)

    first, second = callback.state(), callback.state()

    assert first == second
    assert recent_outcomes(first) == {decided.id}
    callback.on_save(args, state, control)
    assert recent_outcomes(callback.state()) == set()
    assert callback.state()["attributes"]["in_force"] == {"max_grad_norm": 0.5}  # a save forgets only outcomes


class ReadsState(TrainerCallback):
    """Reads the callback's checkpoint state at every step end, as a monitoring integration might."""

    def __init__(self, callback: RuntimeParameterCallback) -> None:
        self.callback = callback

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.callback.state()


@pytest.mark.slow
def test_each_checkpoint_holds_exactly_the_outcomes_decided_since_the_previous_one(
    tiny_dir: str, tmp_path: Path, source: QueueSource
) -> None:
    early, late = [request(max_grad_norm=1.5), request(max_grad_norm=2.5)], [request(max_grad_norm=3.5)]
    callback = RuntimeParameterCallback(source)
    out = tmp_path / "out"
    args = training_args(out, max_steps=12, save_strategy="steps", save_steps=4)
    trainer = plain_trainer(tiny_dir, args, [PushAt(source, {2: early, 6: late}), callback, ReadsState(callback)])
    trainer.train()

    def saved(step: int) -> set[str]:
        state = json.loads((out / f"checkpoint-{step}" / "trainer_state.json").read_text())
        return recent_outcomes(state["stateful_callbacks"]["RuntimeParameterCallback"])

    assert saved(4) == {r.id for r in early}
    assert saved(8) == {r.id for r in late}
    assert saved(12) == set()
