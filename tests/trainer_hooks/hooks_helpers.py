"""Doubles and helpers shared by the trainer-hooks and distributed tests.

``QueueSource`` is an in-memory implementation of our own ``UpdateSource``
protocol (not a double of Supabase): the callback under test drains it and
reports to it exactly as it does with ``liveparams.agent.UpdateAgent``, and it keeps what
the job row would keep, so one instance can serve a run and its resume.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from transformers import TrainerCallback

from liveparams.contract import DRAIN_MAX_ITEMS, OutcomeStatus, RestartRecord, UpdateOutcome, UpdateRequest

_ids = itertools.count(1)


def request(**params: Any) -> UpdateRequest:
    """A validated request with a fresh id and the next ``seq``, as the agent would queue it."""
    n = next(_ids)
    return UpdateRequest(id=f"req-{n}", params=params, requested_at="2026-11-24T05:00:00.000Z", seq=n)


@dataclass
class QueueSource:
    """An in-memory ``UpdateSource``: tests push requests, the callback drains them and reports outcomes.

    Like the agent over one job row, it remembers every request it delivered and the
    first outcome reported per id (``recorded``: first write wins). At each ``start()``
    it queues again, in ``seq`` order, the delivered requests with no recorded outcome,
    and with ``replay_after_step=S`` those recorded as applied after step S.
    ``outcomes`` is every report, duplicates included. With ``losing`` set, reports are
    taken but never recorded, as when the process dies before the agent's flush.
    While training holds (``record_pause``), each drain first queues the next batch of
    ``while_paused``: what a person sends while looking at a paused run. With ``receives_for=N``
    it answers ``receiving`` False after N drains of a hold, as the agent does once its
    credential was revoked or its job deleted: no ``resume`` can reach the run any more.
    """

    queued: list[UpdateRequest] = field(default_factory=list)
    outcomes: list[UpdateOutcome] = field(default_factory=list)
    recorded: dict[str, UpdateOutcome] = field(default_factory=dict)
    delivered: dict[str, UpdateRequest] = field(default_factory=dict)
    starts: list[int | None] = field(default_factory=list)  # replay_after_step of each start()
    closes: int = 0
    close_timeouts: list[float | None] = field(default_factory=list)
    ends: list[tuple[str, int | None]] = field(default_factory=list)  # record_end() calls
    losing: bool = False
    job_id: str | None = "job-1"
    published: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # publish_metrics() calls
    pauses: list[int | None] = field(default_factory=list)  # record_pause() calls
    restarts: list[RestartRecord] = field(default_factory=list)  # record_restart() calls
    steps: list[int] = field(default_factory=list)  # record_step() calls
    while_paused: list[list[UpdateRequest]] = field(default_factory=list)
    receives_for: int | None = None
    paused_drains: int = 0

    @property
    def receiving(self) -> bool:
        return self.receives_for is None or self.paused_drains < self.receives_for

    def start(self, replay_after_step: int | None = None) -> None:
        self.starts.append(replay_after_step)
        again = [
            r
            for r in self.delivered.values()
            if r.id not in self.recorded
            or (replay_after_step is not None and self._applied_after(r.id, replay_after_step))
        ]
        self.queued[:0] = sorted(again, key=lambda r: r.seq)

    def wait_initial_read(self, timeout: float | None = None) -> bool:
        return True

    def _applied_after(self, request_id: str, step: int) -> bool:
        outcome = self.recorded.get(request_id)
        return outcome is not None and outcome.status is OutcomeStatus.APPLIED and (outcome.step or 0) > step

    def record_end(self, reason: str, step: int | None = None) -> None:
        self.ends.append((reason, step))

    def close(self, timeout: float | None = None) -> None:
        self.closes += 1
        self.close_timeouts.append(timeout)

    def record_pause(self, step: int | None) -> None:
        self.pauses.append(step)

    def record_restart(self, record: RestartRecord) -> None:
        self.restarts.append(record)

    def record_step(self, step: int) -> None:
        self.steps.append(step)

    def drain(self, max_items: int = DRAIN_MAX_ITEMS) -> list[UpdateRequest]:
        if self.pauses and self.pauses[-1] is not None:
            self.paused_drains += 1
            if self.while_paused:
                self.push(*self.while_paused.pop(0))
        taken, self.queued = self.queued[:max_items], self.queued[max_items:]
        self.delivered.update((r.id, r) for r in taken)
        return taken

    def report(self, outcomes: Iterable[UpdateOutcome]) -> None:
        for outcome in outcomes:
            self.outcomes.append(outcome)
            if not self.losing:
                self.recorded.setdefault(outcome.request_id, outcome)

    def publish_metrics(self, step: int, metrics: Any) -> None:
        self.published.append((step, dict(metrics)))

    def push(self, *requests: UpdateRequest) -> None:
        self.queued.extend(requests)

    def reports(self, request_id: str) -> list[UpdateOutcome]:
        return [o for o in self.outcomes if o.request_id == request_id]

    def outcome(self, request_id: str) -> UpdateOutcome:
        """The one outcome reported for ``request_id`` (fails if there were more)."""
        (found,) = self.reports(request_id)
        return found


class PushAt(TrainerCallback):
    """Queues requests at the end of given global steps (added before the callback under test)."""

    def __init__(self, source: QueueSource, schedule: dict[int, list[UpdateRequest]]) -> None:
        self.source = source
        self.schedule = schedule

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.source.push(*self.schedule.get(state.global_step, []))


class LrRecorder(TrainerCallback):
    """Records the rate every param group actually used, per optimizer step (1-based, like global_step)."""

    def __init__(self) -> None:
        self.used: dict[int, list[float]] = {}
        self.weight_decay: dict[int, list[float]] = {}

    def on_optimizer_step(self, args: Any, state: Any, control: Any, optimizer: Any = None, **kwargs: Any) -> None:
        self.used[state.global_step + 1] = [float(g["lr"]) for g in optimizer.param_groups]
        self.weight_decay[state.global_step + 1] = [float(g["weight_decay"]) for g in optimizer.param_groups]

    def first_group(self) -> dict[int, float]:
        return {step: lrs[0] for step, lrs in self.used.items()}


def logged_lr(trainer: Any) -> dict[int, float]:
    """Step → learning rate as Trainer logged it."""
    return {e["step"]: e["learning_rate"] for e in trainer.state.log_history if "learning_rate" in e}


def schedule_factors(name: str, warmup: int, total: int, peak: float = 1.0, **kwargs: Any) -> list[float]:
    """The rate at each scheduler step 0..total of a fresh schedule with this peak (the multiplier for peak=1),
    from transformers itself on a dummy optimizer."""
    import torch
    from transformers import get_scheduler

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=peak)
    scheduler = get_scheduler(
        name, optimizer, num_warmup_steps=warmup, num_training_steps=total, scheduler_specific_kwargs=kwargs
    )
    factors = []
    for _ in range(total + 1):
        factors.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return factors


# Small, quiet, CPU-only arguments: linear schedule with warmup, logging every step, no saving.
# The TRL configs (trl_builders.py) start from the same values.
BASE_ARGS: dict[str, Any] = {
    "max_steps": 20,
    "per_device_train_batch_size": 4,
    "learning_rate": 1e-3,
    "warmup_steps": 5,
    "lr_scheduler_type": "linear",
    "logging_steps": 1,
    "save_strategy": "no",
    "report_to": [],
    "use_cpu": True,
    "disable_tqdm": True,
    "seed": 0,
}


def training_args(output_dir: Any, **overrides: Any) -> Any:
    """``TrainingArguments`` from :data:`BASE_ARGS` with ``overrides``."""
    from transformers import TrainingArguments

    return TrainingArguments(output_dir=str(output_dir), **{**BASE_ARGS, **overrides})


def plain_trainer(model_dir: str, args: Any, callbacks: list[Any], eval_set: bool = False) -> Any:
    """A stock ``transformers.Trainer`` on the tiny causal LM."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForLanguageModeling, Trainer

    from liveparams.demo.tiny import sft_dataset

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    data = sft_dataset(64).map(lambda row: tokenizer(row["text"]), remove_columns=["text"])
    return Trainer(
        model=AutoModelForCausalLM.from_pretrained(model_dir),
        args=args,
        train_dataset=data,
        eval_dataset=data.select(range(8)) if eval_set else None,
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
        callbacks=callbacks,
    )
