"""Small, fast Trainer runs for the restart-equivalence suite: a 5-parameter regression model on CPU.

The rule under test needs only the learning rate each optimizer step used and the
step a run ends at, so the model is as small as a Trainer allows: a linear layer
on 240 random rows (30 optimizer steps per epoch at batch 4 and gradient
accumulation 2). One run takes a fraction of a second.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from hooks_helpers import LrRecorder, PushAt, QueueSource
from transformers import Trainer, TrainingArguments

from liveparams.contract import UpdateRequest
from liveparams.trainer_hooks import RuntimeParameterCallback

ROWS, FEATURES = 240, 4

RUN_ARGS: dict[str, Any] = {
    "per_device_train_batch_size": 4,
    "gradient_accumulation_steps": 2,
    "learning_rate": 1e-3,
    "weight_decay": 0.01,
    "logging_steps": 1_000,
    "save_strategy": "no",
    "report_to": [],
    "use_cpu": True,
    "disable_tqdm": True,
    "seed": 0,
}


class Regression(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(FEATURES, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loss": torch.nn.functional.mse_loss(self.linear(x).squeeze(-1), labels)}


class Rows(torch.utils.data.Dataset):
    def __init__(self) -> None:
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(ROWS, FEATURES, generator=generator)
        self.y = torch.randn(ROWS, generator=generator)

    def __len__(self) -> int:
        return ROWS

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "labels": self.y[i]}


class StreamedRows(torch.utils.data.IterableDataset):
    """The same rows with no length, as a streamed dataset: Trainer cannot know how many steps it holds."""

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        rows = Rows()
        return (rows[i] for i in range(ROWS))


def train(
    out: Any,
    requests: dict[int, list[UpdateRequest]] | None = None,
    eval_set: bool = False,
    streamed: bool = False,
    source: QueueSource | None = None,
    resume_from: str | None = None,
    **args: Any,
) -> tuple[dict[int, list[float]], int, QueueSource]:
    """Train with ``args``; push ``requests`` at the end of those steps. Returns rates per step, end step, source.

    To resume a run, pass its ``source`` (which, like the job row, remembers what was applied)
    and ``resume_from`` a checkpoint's name under ``out``.
    """
    source, recorder = source or QueueSource(), LrRecorder()
    callback = RuntimeParameterCallback(source)
    torch.manual_seed(0)
    trainer = Trainer(
        model=Regression(),
        args=TrainingArguments(output_dir=str(out), **{**RUN_ARGS, **args}),
        train_dataset=StreamedRows() if streamed else Rows(),
        eval_dataset=Rows() if eval_set else None,
        callbacks=[PushAt(source, requests or {}), recorder, callback],
    )
    callback.bind(trainer)
    trainer.train(resume_from_checkpoint=str(Path(out) / resume_from) if resume_from else None)
    return recorder.used, trainer.state.global_step, source
