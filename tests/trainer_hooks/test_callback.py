"""The callback inside a real ``transformers.Trainer`` run on the tiny model (CPU, ~20 steps each)."""

from __future__ import annotations

import gc
import logging
from pathlib import Path
from typing import Any

import pytest
from hooks_helpers import (
    LrRecorder,
    PushAt,
    QueueSource,
    logged_lr,
    plain_trainer,
    request,
    schedule_factors,
    training_args,
)
from transformers import TrainerCallback

from liveparams.contract import DRAIN_MAX_ITEMS, OutcomeStatus, UpdateRequest
from liveparams.trainer_hooks import RuntimeParameterCallback, get_applier

STEPS, WARMUP, PEAK = 20, 5, 1e-3


def run(
    tiny_dir: str,
    tmp_path: Path,
    source: QueueSource,
    schedule: dict[int, list[Any]] | None = None,
    eval_set: bool = False,
    callback: RuntimeParameterCallback | None = None,
    resume_from: str | None = None,
    **args: Any,
) -> tuple[Any, LrRecorder]:
    """Train with ``schedule``'s requests pushed at the end of those steps; ``resume_from`` a checkpoint's name."""
    recorder = LrRecorder()
    callback = callback or RuntimeParameterCallback(source)
    out = tmp_path / "out"
    trainer = plain_trainer(
        tiny_dir, training_args(out, **args), [PushAt(source, schedule or {}), recorder, callback], eval_set=eval_set
    )
    callback.bind(trainer)
    trainer.train(resume_from_checkpoint=str(out / resume_from) if resume_from else None)
    return trainer, recorder


def expected_rates(changes: dict[int, float]) -> dict[int, float]:
    """Rate used at each step when the peak becomes ``changes[n]`` after step n (rescale semantics)."""
    factors = schedule_factors("linear", WARMUP, STEPS)
    peak, rates = changes.get(0, PEAK), {}
    for step in range(1, STEPS + 1):
        rates[step] = peak * factors[step - 1]
        peak = changes.get(step, peak)
    return rates


@pytest.mark.slow
def test_a_request_mid_run_sticks_through_the_schedule_and_is_logged_as_used(
    tiny_dir: str, tmp_path: Path, source: QueueSource, caplog: pytest.LogCaptureFixture
) -> None:
    change = request(learning_rate=2e-3)
    with caplog.at_level(logging.INFO, logger="liveparams.trainer_hooks"):
        trainer, recorder = run(tiny_dir, tmp_path, source, {10: [change]})

    assert recorder.first_group() == pytest.approx(expected_rates({10: 2e-3}))
    assert logged_lr(trainer) == pytest.approx(recorder.first_group())
    outcome = source.outcome(change.id)
    assert (outcome.status, outcome.step) == (OutcomeStatus.APPLIED, 10)
    assert (outcome.changes["learning_rate"].old, outcome.changes["learning_rate"].new) == (1e-3, 2e-3)
    assert caplog.text.count("✅ Applied learning rate update: 1.00e-03 → 2.00e-03\n") == 1
    assert "Applied learning_rate" not in caplog.text  # logged once, in the line users search for
    assert (source.starts, source.closes) == ([None], 1)
    assert source.close_timeouts == [None]  # the source's own timeout (AgentConfig.shutdown_timeout) applies


@pytest.mark.slow
def test_multiple_updates_are_each_applied_once(
    tiny_dir: str, tmp_path: Path, source: QueueSource, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = request(learning_rate=5e-4), request(learning_rate=1e-4)
    with caplog.at_level(logging.INFO, logger="liveparams.trainer_hooks"):
        _, recorder = run(tiny_dir, tmp_path, source, {6: [first], 12: [second]})

    assert recorder.first_group() == pytest.approx(expected_rates({6: 5e-4, 12: 1e-4}))
    assert [(o.request_id, o.step) for o in source.outcomes] == [(first.id, 6), (second.id, 12)]
    assert caplog.text.count("✅ Applied learning rate update") == 2


@pytest.mark.slow
def test_requests_queued_before_training_apply_before_the_first_step(
    tiny_dir: str, tmp_path: Path, source: QueueSource
) -> None:
    early, save = request(learning_rate=3e-3), request(command="save_checkpoint")
    source.push(early, save)
    _, recorder = run(tiny_dir, tmp_path, source)

    assert recorder.first_group() == pytest.approx(expected_rates({0: 3e-3}))
    assert recorder.first_group()[WARMUP + 1] == pytest.approx(3e-3)
    assert source.outcome(early.id).step == 0
    # Commands wait for the first step end: control flags are reset when a step begins.
    assert source.outcome(save.id).step == 1
    assert (tmp_path / "out" / "checkpoint-1").is_dir()


@pytest.mark.slow
def test_a_later_request_for_the_same_parameter_supersedes_an_earlier_one(
    tiny_dir: str, tmp_path: Path, source: QueueSource
) -> None:
    old, new = request(learning_rate=5e-4), request(learning_rate=2e-3)
    partial = request(learning_rate=6e-4, max_grad_norm=0.5)
    trainer, recorder = run(tiny_dir, tmp_path, source, {8: [old, partial, new]})

    assert source.outcome(old.id).status is OutcomeStatus.SUPERSEDED
    assert source.outcome(old.id).superseded_by == new.id
    kept = source.outcome(partial.id)
    assert kept.status is OutcomeStatus.APPLIED and set(kept.changes) == {"max_grad_norm"}
    assert kept.reason == f"learning_rate superseded by {new.id}"
    in_force = source.outcome(new.id).changes["learning_rate"]
    assert (in_force.old, in_force.new) == (PEAK, 2e-3)  # from the rate before the drain to the one in force
    assert trainer.args.max_grad_norm == 0.5
    assert recorder.first_group() == pytest.approx(expected_rates({8: 2e-3}))


@pytest.mark.slow
def test_a_refused_request_does_not_supersede_an_earlier_good_one(
    tiny_dir: str, tmp_path: Path, source: QueueSource
) -> None:
    good, refused = request(learning_rate=2e-3), request(learning_rate=9e-3, eval_steps=5)
    _, recorder = run(tiny_dir, tmp_path, source, {8: [good, refused]})

    assert [o.status for o in source.outcomes] == [OutcomeStatus.APPLIED, OutcomeStatus.REJECTED]
    assert recorder.first_group() == pytest.approx(expected_rates({8: 2e-3}))


@pytest.mark.slow
def test_a_request_is_all_or_nothing(tiny_dir: str, tmp_path: Path, source: QueueSource) -> None:
    mixed = request(learning_rate=2e-3, eval_steps=5)  # no eval set: eval_steps is refused, so lr is not applied
    _, recorder = run(tiny_dir, tmp_path, source, {4: [mixed]})

    outcome = source.outcome(mixed.id)
    assert outcome.status is OutcomeStatus.REJECTED
    assert outcome.reason == "eval_steps: Trainer has no eval_dataset"
    assert recorder.first_group() == pytest.approx(expected_rates({}))


@pytest.mark.slow
def test_an_applier_that_raises_fails_the_request_rolls_it_back_and_training_goes_on(
    tiny_dir: str, tmp_path: Path, source: QueueSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(value: Any, ctx: Any) -> None:
        raise RuntimeError("optimizer exploded")

    monkeypatch.setattr(get_applier("weight_decay"), "apply", broken)
    doomed, later = request(learning_rate=2e-3, weight_decay=0.5), request(learning_rate=5e-4)
    trainer, recorder = run(tiny_dir, tmp_path, source, {4: [doomed], 9: [later]}, weight_decay=0.01)

    outcome = source.outcome(doomed.id)
    assert outcome.status is OutcomeStatus.FAILED
    assert outcome.reason == "weight_decay: RuntimeError: optimizer exploded; nothing changed"
    assert source.outcome(later.id).status is OutcomeStatus.APPLIED
    assert recorder.first_group() == pytest.approx(expected_rates({9: 5e-4}))  # lr of the failed request undone
    assert recorder.weight_decay[STEPS] == [0.01, 0.0]
    assert trainer.state.global_step == STEPS


@pytest.mark.slow
def test_refused_requests_never_touch_training(tiny_dir: str, tmp_path: Path, source: QueueSource) -> None:
    groups, beta = request(num_generations=4), request(beta=0.5)
    run(tiny_dir, tmp_path, source, {3: [groups, beta]})

    assert "generates no completions" in source.outcome(groups.id).reason
    assert source.outcome(beta.id).reason == "beta: Trainer has no beta"


@pytest.mark.slow
def test_stop_saves_a_checkpoint_then_stops(tiny_dir: str, tmp_path: Path, source: QueueSource) -> None:
    trainer, _ = run(tiny_dir, tmp_path, source, {6: [request(command="stop")]})

    assert trainer.state.global_step == 6
    assert (tmp_path / "out" / "checkpoint-6").is_dir()


@pytest.mark.slow
def test_evaluate_now_and_interval_changes(tiny_dir: str, tmp_path: Path, source: QueueSource) -> None:
    schedule = {3: [request(command="evaluate")], 4: [request(logging_steps=5, eval_steps=6)]}
    trainer, _ = run(tiny_dir, tmp_path, source, schedule, eval_set=True, eval_strategy="steps", eval_steps=100)

    eval_steps = [e["step"] for e in trainer.state.log_history if "eval_loss" in e]
    train_logs = [e["step"] for e in trainer.state.log_history if "loss" in e]
    assert eval_steps == [3, 6, 12, 18, 20]  # Trainer also evaluates at the end
    assert train_logs == [1, 2, 3, 4, 5, 10, 15, 20]


@pytest.mark.slow
def test_at_most_max_items_per_step_are_drained(tiny_dir: str, tmp_path: Path, source: QueueSource) -> None:
    batch = [request(max_grad_norm=float(i + 1)) for i in range(5)]
    callback = RuntimeParameterCallback(source, max_items_per_step=2)
    run(tiny_dir, tmp_path, source, {4: batch}, callback=callback)

    assert [o.step for o in source.outcomes] == [4, 4, 5, 5, 6]
    assert [o.status for o in source.outcomes].count(OutcomeStatus.APPLIED) == 3


class Boom(TrainerCallback):
    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == 3:
            raise RuntimeError("training crashed")


@pytest.mark.slow
def test_the_source_is_closed_when_training_raises(tiny_dir: str, tmp_path: Path) -> None:
    sources: list[QueueSource] = []

    def factory() -> QueueSource:
        sources.append(QueueSource())
        return sources[-1]

    callback = RuntimeParameterCallback(source_factory=factory)
    trainer = plain_trainer(tiny_dir, training_args(tmp_path / "out"), [callback, Boom()])
    with pytest.raises(RuntimeError, match="training crashed"):
        trainer.train()
    assert sources[0].closes == 0  # Trainer has no exception hook ...
    trainer.remove_callback(Boom)
    trainer.train()  # ... so the next train() closes the stale source and opens a fresh one
    assert [(s.starts, s.closes) for s in sources] == [([None], 1), ([None], 1)]

    crashed = RuntimeParameterCallback(source_factory=factory)
    trainer = plain_trainer(tiny_dir, training_args(tmp_path / "out2"), [crashed, Boom()])
    with pytest.raises(RuntimeError):
        trainer.train()
    del trainer, crashed
    gc.collect()  # ... or collecting the callback (or interpreter exit) does
    assert sources[2].closes == 1


@pytest.mark.slow
def test_from_env_without_configuration_is_a_harmless_no_op(
    tiny_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("JOB_ID", raising=False)
    recorder = LrRecorder()
    trainer = plain_trainer(tiny_dir, training_args(tmp_path / "out"), [recorder])
    trainer.add_callback(RuntimeParameterCallback.from_env(trainer))
    with caplog.at_level(logging.INFO):
        trainer.train()
    assert recorder.first_group() == pytest.approx(expected_rates({}))
    warnings = [
        r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "runtime parameter" in r.getMessage()
    ]
    assert warnings == ["No JOB_ID found, runtime parameter updates disabled"]


SAVE_EVERY_10: dict[str, Any] = {"save_strategy": "steps", "save_steps": 10}
# Evaluate every 3 steps; every evaluation after the first divides the rate by 10 (nothing counts as better).
PLATEAU: dict[str, Any] = {
    "lr_scheduler_type": "reduce_lr_on_plateau",
    "lr_scheduler_kwargs": {"patience": 0, "factor": 0.1, "threshold": 10.0, "threshold_mode": "abs"},
    "eval_strategy": "steps",
    "eval_steps": 3,
}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("schedule", "args"),
    [
        ({4: [{"learning_rate": 2e-3, "max_grad_norm": 0.3, "warmup_steps": 8}]}, {}),
        ({4: [{"learning_rate_mode": "constant", "max_steps": 16, "max_grad_norm": 0.3}]}, {}),
        ({2: [{"learning_rate": 2e-3}], 6: [{"learning_rate_mode": "constant", "max_grad_norm": 0.3}]}, {}),
        ({2: [{"learning_rate": 2e-3, "max_grad_norm": 0.3}]}, PLATEAU),
        ({2: [{"learning_rate": 2e-3, "max_grad_norm": 0.3}]}, {"lr_scheduler_type": "polynomial"}),
    ],
    ids=[
        "rescaled-with-new-warmup",
        "constant-and-shortened",
        "new-peak-then-constant",
        "new-rate-then-plateau-reductions",
        "polynomial-new-peak",
    ],
)
def test_resume_continues_exactly_as_the_uninterrupted_run(
    tiny_dir: str, tmp_path: Path, schedule: dict[int, list[dict[str, Any]]], args: dict[str, Any]
) -> None:
    source = QueueSource()  # like the job row, one for the run and its resume
    requests = {step: [request(**params) for params in batch] for step, batch in schedule.items()}
    eval_set = "eval_strategy" in args
    first, before = run(tiny_dir, tmp_path, source, requests, eval_set=eval_set, **SAVE_EVERY_10, **args)
    assert {o.status for o in source.outcomes} == {OutcomeStatus.APPLIED}
    reported = list(source.outcomes)

    trainer, after = run(
        tiny_dir, tmp_path, source, eval_set=eval_set, resume_from="checkpoint-10", **SAVE_EVERY_10, **args
    )

    assert source.starts == [None, 10]
    assert source.outcomes == reported  # applied before the checkpoint: neither applied nor reported again
    assert trainer.args.max_grad_norm == 0.3  # args are not in the checkpoint: set again
    # The rates come back from the checkpoint, with what the schedule did after each request (no jump back).
    assert after.first_group() == pytest.approx({s: r for s, r in before.first_group().items() if s > 10})
    assert trainer.state.global_step == first.state.global_step


@pytest.mark.slow
def test_resume_applies_again_what_was_applied_after_the_checkpoint(
    tiny_dir: str, tmp_path: Path, source: QueueSource
) -> None:
    kept, rewound = request(learning_rate=5e-4), request(learning_rate=2e-3, max_grad_norm=0.3)
    save: dict[str, Any] = {"save_strategy": "steps", "save_steps": 4}
    run(tiny_dir, tmp_path, source, {2: [kept], 6: [rewound]}, **save)
    assert [(o.request_id, o.step) for o in source.outcomes] == [(kept.id, 2), (rewound.id, 6)]

    trainer, recorder = run(tiny_dir, tmp_path, source, resume_from="checkpoint-4", **save)

    assert source.starts == [None, 4]
    assert len(source.reports(kept.id)) == 1  # in checkpoint-4 already
    again = source.reports(rewound.id)[1]  # rewound by checkpoint-4: applied again before the first resumed step
    assert (again.status, again.step) == (OutcomeStatus.APPLIED, 4)
    assert source.recorded[rewound.id].step == 6  # the row keeps the first outcome
    assert trainer.args.max_grad_norm == 0.3
    expected = {s: r for s, r in expected_rates({2: 5e-4, 4: 2e-3}).items() if s > 4}
    assert recorder.first_group() == pytest.approx(expected)


@pytest.mark.slow
def test_resume_with_the_same_callback_instance_takes_the_checkpoints_record(
    tiny_dir: str, tmp_path: Path, source: QueueSource
) -> None:
    kept, rewound = request(learning_rate=5e-4), request(learning_rate_mode="constant", max_grad_norm=0.3)
    callback, save = RuntimeParameterCallback(source), {"save_strategy": "steps", "save_steps": 4}
    run(tiny_dir, tmp_path, source, {2: [kept], 6: [rewound]}, callback=callback, **save)

    trainer, recorder = run(tiny_dir, tmp_path, source, callback=callback, resume_from="checkpoint-4", **save)

    assert [o.step for o in source.reports(rewound.id)] == [6, 4]  # not skipped as handled by the first train()
    assert trainer.args.max_grad_norm == 0.3
    frozen = expected_rates({2: 5e-4})[5]  # the rate checkpoint-4 holds for its next step, constant from then on
    assert recorder.first_group() == pytest.approx({s: frozen for s in range(5, STEPS + 1)})


@pytest.mark.slow
def test_resuming_a_checkpoint_written_without_the_callback_still_saves(
    tiny_dir: str, tmp_path: Path, source: QueueSource
) -> None:
    args = training_args(tmp_path / "out", save_strategy="steps", save_steps=10)
    plain_trainer(tiny_dir, args, []).train()
    change = request(learning_rate=5e-4)
    callback = RuntimeParameterCallback(source)
    trainer = plain_trainer(tiny_dir, args, [PushAt(source, {12: [change]}), callback])
    trainer.train(resume_from_checkpoint=str(tmp_path / "out" / "checkpoint-10"))  # saves at 20: no KeyError

    assert source.outcome(change.id).step == 12
    saved = (tmp_path / "out" / "checkpoint-20" / "trainer_state.json").read_text()
    assert change.id in saved


@pytest.mark.slow
def test_max_steps_extends_within_the_planned_epochs_and_moves_the_horizon(
    tiny_dir: str, tmp_path: Path, source: QueueSource
) -> None:
    too_far, extend = request(max_steps=40), request(max_steps=30)  # 16 steps per epoch, 2 epochs planned
    trainer, recorder = run(tiny_dir, tmp_path, source, {6: [too_far, extend]})

    assert "beyond the 32 steps the run's planned epochs hold" in source.outcome(too_far.id).reason
    assert source.outcome(extend.id).status is OutcomeStatus.APPLIED
    assert trainer.state.global_step == 30
    short, long = schedule_factors("linear", WARMUP, STEPS), schedule_factors("linear", WARMUP, 30)
    expected = {s: PEAK * (short if s <= 6 else long)[s - 1] for s in range(1, 31)}
    assert recorder.first_group() == pytest.approx(expected)


def test_a_batch_ends_where_the_same_requests_one_at_a_time_would(tmp_path: Path) -> None:
    """constant, then a rate, then rescale: one drain must not reorder or merge them."""
    import torch
    from transformers import TrainerControl, TrainerState, get_scheduler

    def run_rest(one_at_a_time: bool) -> tuple[list[float], list[OutcomeStatus]]:
        optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=PEAK)
        scheduler = get_scheduler("linear", optimizer, num_warmup_steps=WARMUP, num_training_steps=STEPS)
        args, state, control = training_args(tmp_path), TrainerState(max_steps=STEPS), TrainerControl()
        source = QueueSource()
        callback = RuntimeParameterCallback(source, max_items_per_step=1 if one_at_a_time else DRAIN_MAX_ITEMS)
        hooks = {"optimizer": optimizer, "lr_scheduler": scheduler}
        callback.on_train_begin(args, state, control, **hooks)
        for _ in range(8):
            optimizer.step()
            scheduler.step()
        state.global_step = 8
        source.push(
            request(learning_rate_mode="constant"), request(learning_rate=2e-4), request(learning_rate_mode="rescale")
        )
        for _ in range(3 if one_at_a_time else 1):  # three drains at the same step boundary, or one
            callback.on_step_end(args, state, control, **hooks)
        rates = []
        while scheduler.last_epoch < STEPS:
            rates.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        return rates, [o.status for o in source.outcomes]

    batched, separate = run_rest(one_at_a_time=False), run_rest(one_at_a_time=True)
    assert batched == separate
    assert batched[1] == [OutcomeStatus.APPLIED] * 3
    assert batched[0][0] == pytest.approx(2e-4)  # the rate asked for, then the schedule goes on from it


class LateSource(QueueSource):
    """Like the agent: what start() must deliver lands a moment later (its initial read), unless waited for."""

    def start(self, replay_after_step: int | None = None) -> None:
        super().start(replay_after_step)
        self.late, self.queued = self.queued, []

    def _land(self) -> None:
        self.queued[:0], self.late = getattr(self, "late", []), []

    def wait_initial_read(self, timeout: float | None = None) -> bool:
        self._land()
        return True

    def drain(self, max_items: int = DRAIN_MAX_ITEMS) -> list[Any]:
        taken = super().drain(max_items)
        self._land()
        return taken


@pytest.mark.slow
def test_resume_waits_for_the_initial_read_so_replays_apply_before_the_first_resumed_step(
    tiny_dir: str, tmp_path: Path
) -> None:
    source, save = LateSource(), {"save_strategy": "steps", "save_steps": 4}
    rewound = request(learning_rate=2e-3)
    run(tiny_dir, tmp_path, source, {6: [rewound]}, **save)

    _, recorder = run(tiny_dir, tmp_path, source, resume_from="checkpoint-4", **save)

    assert [o.step for o in source.reports(rewound.id)] == [6, 4]
    assert recorder.first_group()[5] == pytest.approx(expected_rates({4: 2e-3})[5])


class NeverReady(QueueSource):
    def wait_initial_read(self, timeout: float | None = None) -> bool:
        return False


@pytest.mark.slow
def test_an_initial_read_that_does_not_finish_in_time_is_logged_and_training_goes_on(
    tiny_dir: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source, save = NeverReady(), {"save_strategy": "steps", "save_steps": 4}
    change = request(learning_rate=2e-3)
    with caplog.at_level(logging.WARNING, logger="liveparams.trainer_hooks"):
        run(tiny_dir, tmp_path, source, {3: [change]}, **save)
        assert "initial read" not in caplog.text  # a fresh start does not wait
        trainer, _ = run(tiny_dir, tmp_path, source, resume_from="checkpoint-4", **save)
    assert "initial read did not finish within 5.0s" in caplog.text
    assert trainer.state.global_step == STEPS


@pytest.mark.slow
@pytest.mark.parametrize("checkpoint", [4, 12], ids=["the next checkpoint", "two checkpoints later"])
def test_an_outcome_lost_before_it_was_recorded_is_reported_again_after_resume(
    tiny_dir: str, tmp_path: Path, checkpoint: int
) -> None:
    """The outage outlasts several checkpoints: every one of them still holds the unwritten outcome."""
    source, save = QueueSource(losing=True), {"save_strategy": "steps", "save_steps": 4}
    kept = request(learning_rate=5e-4)
    run(tiny_dir, tmp_path, source, {2: [kept]}, **save)  # the process dies before the agent's flush
    assert kept.id not in source.recorded
    source.losing = False

    _, recorder = run(tiny_dir, tmp_path, source, resume_from=f"checkpoint-{checkpoint}", **save)

    assert source.recorded[kept.id].status is OutcomeStatus.APPLIED
    assert source.recorded[kept.id].step == 2  # the outcome it had, not a second application
    rates = expected_rates({2: 5e-4})
    assert recorder.first_group() == pytest.approx({s: r for s, r in rates.items() if s > checkpoint})


@pytest.mark.slow
def test_the_checkpoint_record_does_not_grow_with_the_jobs_history(tiny_dir: str, tmp_path: Path) -> None:
    import json

    source = QueueSource()
    early = [request(max_grad_norm=float(i + 1)) for i in range(30)]
    late = [request(max_grad_norm=float(i + 1)) for i in range(3)]
    run(tiny_dir, tmp_path, source, {2: early, 12: late}, save_strategy="steps", save_steps=10)

    def record(step: int) -> dict[str, Any]:
        state = json.loads((tmp_path / "out" / f"checkpoint-{step}" / "trainer_state.json").read_text())
        return state["stateful_callbacks"]["RuntimeParameterCallback"]["attributes"]

    assert record(20)["decided_seq"] == late[-1].seq
    assert record(20)["undecided"] == []
    assert set(record(20)["recent_outcomes"]) == {r.id for r in early + late}  # the last 256, saved or not
    assert record(20)["in_force"] == {"max_grad_norm": 3.0}


@pytest.mark.slow
def test_a_checkpoint_resumed_under_another_job_does_not_skip_that_jobs_requests(
    tiny_dir: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A retry that made a new job row resumes from the old job's checkpoint: seq numbers start over there."""
    save = {"save_strategy": "steps", "save_steps": 4}
    first = QueueSource(job_id="job-a")
    run(tiny_dir, tmp_path, first, {1: [request(learning_rate=2e-3) for _ in range(3)]}, **save)

    retry = QueueSource(job_id="job-b")
    again = UpdateRequest(id="b-1", params={"learning_rate": 5e-4}, requested_at="2026-11-28T09:00:00Z", seq=1)
    retry.push(again)
    with caplog.at_level(logging.WARNING, logger="liveparams.trainer_hooks"):
        run(tiny_dir, tmp_path, retry, resume_from="checkpoint-4", **save)
    assert retry.outcome("b-1").status is OutcomeStatus.APPLIED
    assert "is for job job-a, not job job-b" in caplog.text
