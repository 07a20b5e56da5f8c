"""A training script as a user writes it (the quickstart's), for tests that kill or interrupt the process.

It trains a tiny regression for a very long time with the one-line callback, and prints
``step N`` at every step end so that the test knows where it is. On Ctrl-C it prints the step
the trainer had counted, which may be one past the last ``step N``: the signal can land between.
Configured by the environment, as a user's script is (``JOB_ID``, the URL, the keys).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn
from transformers import Trainer, TrainerCallback, TrainingArguments

from liveparams import RuntimeParameterCallback


class Regression(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loss": nn.functional.mse_loss(self.linear(x).squeeze(-1), labels)}


class SayStep(TrainerCallback):
    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        print(f"step {state.global_step}", flush=True)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.manual_seed(0)
    data = [{"x": torch.randn(8), "labels": torch.randn(())} for _ in range(64)]
    args = TrainingArguments(
        output_dir="run",
        max_steps=10_000_000,
        per_device_train_batch_size=16,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
    )
    trainer = Trainer(model=Regression(), args=args, train_dataset=data, callbacks=[SayStep()])
    trainer.add_callback(RuntimeParameterCallback.from_env(trainer))
    try:
        trainer.train()
    except KeyboardInterrupt:  # the step the trainer had counted, which the job row must say
        print(f"interrupted at step {trainer.state.global_step}", flush=True)
        raise


if __name__ == "__main__":
    main()
