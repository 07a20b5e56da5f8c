"""GRPO/RLOO's ``max_completion_length`` and ``num_generations`` by an in-process restart equal the rule's restart.

The rule (docs/parameters.md): a change at step S equals a run that trained to S with the
old settings, saved, and went on from the same prompts with the new ones. The reference is
exactly that: a trainer stopped and saved at S, then a new trainer built with the new length
and resumed from that checkpoint. Every later step's loss and learning rate are compared with
``==``, and the longest completion logged shows the new length at work. The tiny model and its
tokenizer are built in code (``liveparams.demo.tiny``): no download.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trl_builders
from hooks_helpers import PushAt, QueueSource, request
from restarted_runs import StopAt, _at, _enough_epochs
from transformers import TrainerCallback

import liveparams
from liveparams.contract import OutcomeStatus
from liveparams.trainer_hooks import RuntimeParameterCallback

pytestmark = pytest.mark.slow

MAX_STEPS, OLD, NEW = 8, 8, 3
BUILDERS = {"GRPOTrainer": trl_builders.grpo, "RLOOTrainer": trl_builders.rloo}
# name: (trainer, step S, config); with two iterations per generation, step 3 is in the middle of one
CASES: dict[str, tuple[str, int, dict[str, Any]]] = {
    "GRPO": ("GRPOTrainer", 4, {}),
    "RLOO": ("RLOOTrainer", 4, {}),
    "GRPO, mid-generation": ("GRPOTrainer", 3, {"num_iterations": 2}),
}


class Logged(TrainerCallback):
    """Per optimizer step (``logging_steps=1``): the loss, the rate and the longest completion (if it generated)."""

    def __init__(self) -> None:
        self.steps: dict[int, tuple[float, float, float | None]] = {}

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if logs and "loss" in logs:
            self.steps[state.global_step] = (logs["loss"], logs["learning_rate"], logs.get("completions/max_length"))


@dataclass
class Compared:
    """A live run that got ``name=new`` at ``step`` and the rule's reference: each step's logs, and the live trainer."""

    got: Logged
    want: Logged
    live: Any


def _live_and_reference(
    tmp_path: Path, build: Callable[..., Any], step: int, name: str, old: int, new: int, skip: int | None = None
) -> Compared:
    """``build(out, callbacks, **{name: value})`` live with the request at ``step``, and the reference: stopped and
    saved at ``step`` with ``old``, resumed by a trainer built with ``new`` (at ``skip`` batches of epoch 0 if given).
    """
    asked = request(**{name: new})
    got, source = Logged(), QueueSource()
    callback = RuntimeParameterCallback(source)
    live = build("live", [PushAt(source, {step: [asked]}), got, callback], **{name: old})
    callback.bind(live)
    liveparams.train(live)

    want = Logged()
    build("reference", [StopAt(step), want], **{name: old}).train()
    resumed = build("resumed", [want], **{name: new})
    if skip is not None:
        resumed._init_training_state = _at(resumed._init_training_state, 0, skip)
        resumed.set_initial_training_values = _enough_epochs(resumed.set_initial_training_values)
    resumed.train(resume_from_checkpoint=str(tmp_path / "reference" / f"checkpoint-{step}"))

    outcome = source.outcome(asked.id)
    assert outcome.status is OutcomeStatus.APPLIED and outcome.step == step, outcome.reason
    assert sorted(got.steps) == sorted(want.steps) == list(range(1, MAX_STEPS + 1))
    (restart,) = source.restarts
    assert (restart.kind, restart.step, restart.settings) == ("restart", step, {name: new})
    return Compared(got, want, live)


def _builder(tmp_path: Path, tiny_dir: str, trainer: str, **config: Any) -> Callable[..., Any]:
    def build(out: str, callbacks: list[Any], **settings: Any) -> Any:
        settings = {"max_steps": MAX_STEPS, "logging_steps": 1, **config, **settings}
        return BUILDERS[trainer](tiny_dir, str(tmp_path / out), callbacks, **settings)

    return build


@pytest.mark.parametrize("case", list(CASES))
def test_a_new_max_completion_length_equals_the_rules_restart(tmp_path: Path, tiny_dir: str, case: str) -> None:
    trainer, step, config = CASES[case]
    build = _builder(tmp_path, tiny_dir, trainer, **config)
    run = _live_and_reference(tmp_path, build, step, "max_completion_length", OLD, NEW)

    assert run.got.steps == run.want.steps  # loss, rate and longest completion, with ==
    lengths = {s: length for s, (_, _, length) in run.got.steps.items() if length is not None}
    assert max(length for s, length in lengths.items() if s > step) <= NEW
    assert max(length for s, length in lengths.items() if s <= step) > NEW  # the old length was in force before


def test_a_trainer_that_generates_nothing_refuses_it(tmp_path: Path, tiny_dir: str) -> None:
    asked = request(max_completion_length=NEW)
    source = QueueSource()
    callback = RuntimeParameterCallback(source)
    sft = trl_builders.sft(tiny_dir, str(tmp_path), [PushAt(source, {2: [asked]}), callback])
    callback.bind(sft)
    liveparams.train(sft)
    outcome = source.outcome(asked.id)
    assert outcome.status is OutcomeStatus.REJECTED
    assert outcome.reason and "generates no completions" in outcome.reason


@pytest.mark.parametrize("name", ["per_device_train_batch_size", "gradient_accumulation_steps"])
def test_grpo_refuses_a_new_batch_size_or_accumulation(tmp_path: Path, tiny_dir: str, name: str) -> None:
    """GRPO's generation batch was derived from both when its config was built: refused, and the run goes on."""
    asked = request(**{name: 8})
    source = QueueSource()
    callback = RuntimeParameterCallback(source)
    settings = {"max_steps": 4, "logging_steps": 1}
    grpo = trl_builders.grpo(tiny_dir, str(tmp_path), [PushAt(source, {2: [asked]}), callback], **settings)
    callback.bind(grpo)
    liveparams.train(grpo)
    outcome = source.outcome(asked.id)
    assert outcome.status is OutcomeStatus.REJECTED and outcome.reason
    assert "GRPOTrainer derives its generation batch from " + name in outcome.reason
    assert grpo.state.global_step == 4 and not source.restarts


# name: (trainer, step S, old, new); batch 4, one generation batch per step: 4 / G prompts each
GROUPS: dict[str, tuple[str, int, int, int]] = {
    "GRPO 2 -> 4": ("GRPOTrainer", 4, 2, 4),
    "GRPO 4 -> 2": ("GRPOTrainer", 4, 4, 2),
    "RLOO 2 -> 4": ("RLOOTrainer", 4, 2, 4),
}


@pytest.mark.parametrize("case", list(GROUPS))
def test_a_new_num_generations_equals_the_rules_restart(tmp_path: Path, tiny_dir: str, case: str) -> None:
    """The rule's reference goes on from the same prompts: S steps took S × 4 / old prompts, S × 4 / new batches."""
    trainer, step, old, new = GROUPS[case]
    build = _builder(tmp_path, tiny_dir, trainer)
    run = _live_and_reference(tmp_path, build, step, "num_generations", old, new, skip=step * new // old)

    assert (run.live.num_generations, run.live.args.num_generations) == (new, new)
    assert run.got.steps == run.want.steps  # loss, rate and longest completion, with ==


def test_num_generations_where_the_prompts_do_not_line_up_is_refused_and_asked_again(
    tmp_path: Path, tiny_dir: str
) -> None:
    """Groups of 4 take one prompt a step, groups of 2 two: after 3 prompts the new batches cannot line up."""
    early, late = request(num_generations=2), request(num_generations=2)
    source = QueueSource()
    callback = RuntimeParameterCallback(source)
    settings = {"max_steps": MAX_STEPS, "num_generations": 4, "logging_steps": 1}
    grpo = trl_builders.grpo(tiny_dir, str(tmp_path), [PushAt(source, {3: [early], 4: [late]}), callback], **settings)
    callback.bind(grpo)
    liveparams.train(grpo)
    refused, applied = source.outcome(early.id), source.outcome(late.id)
    assert refused.status is OutcomeStatus.REJECTED and refused.reason
    assert "consumed 3 prompts of epoch 0, not a whole number of the new generation batches" in refused.reason
    assert applied.status is OutcomeStatus.APPLIED and applied.step == 4
