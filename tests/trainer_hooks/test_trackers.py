"""What the trainer logs reaches the update source, and applied changes reach the user's trackers."""

from __future__ import annotations

from pathlib import Path

import pytest
from hooks_helpers import PushAt, QueueSource, plain_trainer, request, training_args

from liveparams import RuntimeParameterCallback

pytestmark = pytest.mark.slow


def test_every_log_is_published_with_its_step(tiny_dir: str, tmp_path: Path, source: QueueSource) -> None:
    args = training_args(tmp_path / "out", max_steps=6, logging_steps=2, eval_strategy="steps", eval_steps=3)
    trainer = plain_trainer(tiny_dir, args, [], eval_set=True)
    trainer.add_callback(RuntimeParameterCallback(source, trainer=trainer))
    trainer.train()

    logged = {step: metrics for step, metrics in source.published if "loss" in metrics}
    assert sorted(logged) == [2, 4, 6]
    assert {"loss", "learning_rate", "grad_norm", "epoch"} <= set(logged[4])
    assert [step for step, metrics in source.published if "eval_loss" in metrics] == [3, 6]


def test_an_applied_change_is_in_the_tensorboard_event_file_at_its_step(
    tiny_dir: str, tmp_path: Path, source: QueueSource
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    args = training_args(tmp_path / "out", max_steps=8, report_to=["tensorboard"])
    schedule = {3: [request(learning_rate=2e-4)], 6: [request(weight_decay=0.05, max_grad_norm=0.5)]}
    trainer = plain_trainer(tiny_dir, args, [PushAt(source, schedule)])
    trainer.add_callback(RuntimeParameterCallback(source, trainer=trainer))
    trainer.train()

    (event_file,) = (tmp_path / "out").rglob("events.out.tfevents.*")  # under <output_dir>/runs/<date_host>
    events = EventAccumulator(str(event_file)).Reload()
    scalars = {
        tag: [(e.step, pytest.approx(e.value)) for e in events.Scalars(tag)]
        for tag in events.Tags()["scalars"]
        if "liveparams/" in tag
    }
    # The change's own log leaves the step's regular log in place (loss and rate at every step).
    assert sorted(e["step"] for e in trainer.state.log_history if "learning_rate" in e) == list(range(1, 9))
    assert scalars == {
        "train/liveparams/learning_rate": [(3, 2e-4)],
        "train/liveparams/weight_decay": [(6, 0.05)],
        "train/liveparams/max_grad_norm": [(6, 0.5)],
    }
