"""What a checkpoint keeps of the decided requests: reading the callback's state changes nothing, and neither
does a save: every checkpoint holds the last ``MAX_RECENT_OUTCOMES`` outcomes, written or not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hooks_helpers import PushAt, QueueSource, plain_trainer, request, training_args
from transformers import TrainerCallback, TrainerControl, TrainerState

from liveparams.contract import OutcomeStatus, UpdateOutcome
from liveparams.trainer_hooks import RuntimeParameterCallback
from liveparams.trainer_hooks._record import MAX_RECENT_OUTCOMES, DecisionRecord


def recent_outcomes(state: dict[str, Any]) -> set[str]:
    return set(state["attributes"]["recent_outcomes"])


def test_reading_the_state_twice_gives_the_same_answer_and_a_save_forgets_nothing(
    tmp_path: Path, source: QueueSource
) -> None:
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
    assert callback.state() == first  # the next checkpoint too holds the outcome, in case it was never written


class ReadsState(TrainerCallback):
    """Reads the callback's checkpoint state at every step end, as a monitoring integration might."""

    def __init__(self, callback: RuntimeParameterCallback) -> None:
        self.callback = callback

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.callback.state()


@pytest.mark.slow
def test_each_checkpoint_holds_the_outcomes_decided_before_it_not_only_since_the_previous_one(
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
    assert saved(8) == saved(12) == {r.id for r in early + late}


def test_the_record_keeps_the_last_outcomes_and_no_more() -> None:
    record = DecisionRecord(job_id="job-1")
    decided = [request(max_grad_norm=1.0) for _ in range(MAX_RECENT_OUTCOMES + 44)]
    for r in decided:
        record.decide(r, UpdateOutcome(r.id, OutcomeStatus.REJECTED, reason="test"))

    kept = record.checkpoint()["recent_outcomes"]
    assert list(kept) == [r.id for r in decided[44:]]  # the newest, oldest first
    assert record.lost_outcome(decided[0]) is None and record.lost_outcome(decided[-1]) is not None
