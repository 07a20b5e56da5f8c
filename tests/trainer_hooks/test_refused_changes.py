"""Changes a run started with those settings would not survive, or would not make, are refused with the reason.

Each test trains for real and checks what the user sees: the outcome and its
reason, the step the run ends at, and that training never crashes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trl_builders
from hooks_helpers import PushAt, QueueSource, request
from restart_runs import train

from liveparams.contract import OutcomeStatus, UpdateRequest
from liveparams.trainer_hooks import RuntimeParameterCallback

pytestmark = pytest.mark.slow


def train_trl(
    build: Callable[..., Any], tiny_dir: str, out: Path, schedule: dict[int, list[UpdateRequest]], **config: Any
) -> tuple[Any, QueueSource]:
    """Train a TRL trainer from ``trl_builders`` with the callback, pushing ``schedule``'s requests at those steps."""
    source = QueueSource()
    callback = RuntimeParameterCallback(source)
    trainer = build(tiny_dir, str(out), [PushAt(source, schedule)], **config)
    trainer.add_callback(callback.bind(trainer))
    trainer.train()
    return trainer, source


def test_max_steps_at_the_step_where_training_ends_is_refused(tmp_path: Path) -> None:
    extend = request(max_steps=30)
    _, end, source = train(tmp_path, {20: [extend]}, max_steps=20)

    outcome = source.outcome(extend.id)
    assert (outcome.status, outcome.step, end) == (OutcomeStatus.REJECTED, 20, 20)
    assert "training ends at this step (20)" in (outcome.reason or "")


def test_max_steps_after_a_stop_in_the_same_drain_is_refused_as_one_at_a_time_would_be(tmp_path: Path) -> None:
    stop, extend = request(command="stop"), request(max_steps=25)
    _, end, source = train(tmp_path, {5: [stop, extend]}, max_steps=20)

    assert source.outcome(stop.id).status is OutcomeStatus.APPLIED
    assert source.outcome(extend.id).status is OutcomeStatus.REJECTED
    assert "training ends at this step (5)" in (source.outcome(extend.id).reason or "")
    assert end == 5


def test_beta_zero_is_refused_by_a_loss_that_divides_by_beta(tiny_dir: str, tmp_path: Path) -> None:
    off = request(beta=0.0)
    # a start with beta=0 raises ZeroDivisionError at the first step
    trainer, source = train_trl(trl_builders.dpo, tiny_dir, tmp_path, {2: [off]}, loss_type=["ipo"], max_steps=4)

    outcome = source.outcome(off.id)
    assert (outcome.status, outcome.step) == (OutcomeStatus.REJECTED, 2)
    assert outcome.reason == "beta: the ipo loss divides by beta, so beta must be > 0 (a start with 0 would crash)"
    assert (trainer.state.global_step, trainer.beta) == (4, 0.1)


def test_max_steps_beyond_the_first_pass_over_a_streamed_dataset_is_refused(tmp_path: Path) -> None:
    """With no length, Trainer's one "epoch" is args.max_steps steps; going on would read the data again."""
    too_far = request(max_steps=30)
    _, end, source = train(tmp_path, {10: [too_far]}, streamed=True, max_steps=20)

    outcome = source.outcome(too_far.id)
    assert outcome.status is OutcomeStatus.REJECTED
    assert "max_steps=30 is beyond the 20 steps the run's planned epochs hold" in (outcome.reason or "")
    assert end == 20


def test_intervals_that_break_load_best_model_at_end_are_refused_and_a_pair_is_judged_together(
    tmp_path: Path,
) -> None:
    """TrainingArguments refuses save_steps that is not a multiple of eval_steps; so does a live change."""
    not_a_multiple, pair = request(save_steps=7), request(eval_steps=2, save_steps=6)
    best_model = {"eval_strategy": "steps", "eval_steps": 4, "save_strategy": "steps", "save_steps": 8}
    requests = {1: [not_a_multiple], 2: [pair]}
    _, end, source = train(tmp_path, requests, eval_set=True, max_steps=20, load_best_model_at_end=True, **best_model)

    refused = source.outcome(not_a_multiple.id)
    assert refused.status is OutcomeStatus.REJECTED
    assert "save_steps 7 is not a round multiple of eval_steps 4" in (refused.reason or "")
    assert source.outcome(pair.id).status is OutcomeStatus.APPLIED
    assert end == 20
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == [f"checkpoint-{s}" for s in (12, 18, 20, 6)]
    final = json.loads((tmp_path / "checkpoint-20" / "trainer_state.json").read_text())
    assert final["best_model_checkpoint"] is not None


def test_grpo_refuses_beta_on_while_its_generation_batch_has_no_reference_log_probs(
    tiny_dir: str, tmp_path: Path
) -> None:
    """num_iterations=2: a batch generated after step 2 (beta=0) is used again at step 4; beta can return after it."""
    off, too_early, on = request(beta=0.0), request(beta=0.1), request(beta=0.1)
    schedule = {2: [off], 3: [too_early], 4: [on]}
    trainer, source = train_trl(trl_builders.grpo, tiny_dir, tmp_path, schedule, num_iterations=2, max_steps=5)

    refused = source.outcome(too_early.id)
    assert (refused.status, refused.step) == (OutcomeStatus.REJECTED, 3)
    assert refused.reason == (
        "beta: the generation batch in use was made with beta=0, so it has no reference log-probs; "
        "retry after the next generation (every 2 micro-batches)"
    )
    assert [(source.outcome(r.id).status, source.outcome(r.id).step) for r in (off, on)] == [
        (OutcomeStatus.APPLIED, 2),
        (OutcomeStatus.APPLIED, 4),
    ]
    assert (trainer.state.global_step, trainer.beta) == (5, 0.1)


def test_rloo_takes_a_new_beta_only_where_it_scores_a_new_generation_batch(tiny_dir: str, tmp_path: Path) -> None:
    """RLOO subtracts beta x KL from the rewards when it scores a batch; num_iterations=2 uses each batch for two
    steps. Mid-batch, the batch in use keeps the old beta, so a change is refused until the next generation."""
    too_early, on_time = request(beta=0.05), request(beta=0.05)
    schedule = {1: [too_early], 2: [on_time]}
    trainer, source = train_trl(trl_builders.rloo, tiny_dir, tmp_path, schedule, num_iterations=2, max_steps=4)

    refused = source.outcome(too_early.id)
    assert (refused.status, refused.step) == (OutcomeStatus.REJECTED, 1)
    assert refused.reason == (
        "beta: RLOO puts beta into the rewards when it scores a generation batch, and the one in use was scored "
        "with beta=0.1; retry after the next generation (every 2 micro-batches)"
    )
    assert (source.outcome(on_time.id).status, source.outcome(on_time.id).step) == (OutcomeStatus.APPLIED, 2)
    assert (trainer.state.global_step, trainer.beta) == (4, 0.05)
