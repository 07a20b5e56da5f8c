"""The rule: a live change leaves the run exactly where a run started with the new settings would be.

For every schedule Trainer builds and each change (a new learning rate, max_steps
extended and shortened, warmup during warmup), at gradient accumulation 2: run A
gets the change live at step S; run B is started with the new settings. From step
S+1 on, every optimizer step of A uses exactly B's learning rate (every param
group, compared with ``==``), and both end at the same step. Where the rule cannot
hold, the change is rejected with the reason and nothing changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hooks_helpers import request
from restart_runs import train

from liveparams.contract import OutcomeStatus

pytestmark = pytest.mark.slow

MAX_STEPS, WARMUP, PEAK = 40, 5, 1e-3

# Every LambdaLR schedule Trainer builds, with the arguments its kind needs. Absolute
# arguments (min_lr, polynomial's default lr_end) must stay absolute, relative ones scale.
SCHEDULES: dict[str, dict[str, Any]] = {
    "linear": {},
    "cosine": {},
    "cosine_with_restarts": {"num_cycles": 2},
    "polynomial": {"power": 2.0},
    "constant": {},
    "constant_with_warmup": {},
    "inverse_sqrt": {},
    "cosine_with_min_lr": {"min_lr": 1e-4},
    "cosine_warmup_with_min_lr": {"min_lr_rate": 0.1},
    "warmup_stable_decay": {"num_decay_steps": 10, "min_lr_ratio": 0.05},
}

# name: (step S after which it is applied, the request, the settings run B starts with)
CHANGES: dict[str, tuple[int, dict[str, Any], dict[str, Any]]] = {
    "learning_rate x2": (12, {"learning_rate": 2 * PEAK}, {"learning_rate": 2 * PEAK}),
    "max_steps 40->60": (12, {"max_steps": 60}, {"max_steps": 60}),
    "max_steps 40->30": (12, {"max_steps": 30}, {"max_steps": 30}),
    "warmup 5->10 during warmup": (3, {"warmup_steps": 10}, {"warmup_steps": 10}),
}

# Where a run started with the setting would differ in a way no live change can give: refused.
REFUSED = {("constant", "warmup 5->10 during warmup"): "has no num_warmup_steps"}


def settings(schedule: str, **overrides: Any) -> dict[str, Any]:
    base = {"max_steps": MAX_STEPS, "warmup_steps": WARMUP, "learning_rate": PEAK}
    return {**base, "lr_scheduler_type": schedule, "lr_scheduler_kwargs": SCHEDULES[schedule], **overrides}


@pytest.mark.parametrize("change", list(CHANGES))
@pytest.mark.parametrize("schedule", list(SCHEDULES))
def test_a_live_change_equals_a_restart_with_the_new_settings(tmp_path: Path, schedule: str, change: str) -> None:
    at, params, restarted_with = CHANGES[change]
    live = request(**params)
    used, end, source = train(tmp_path / "live", {at: [live]}, **settings(schedule))
    outcome = source.outcome(live.id)

    if (schedule, change) in REFUSED:
        assert outcome.status is OutcomeStatus.REJECTED
        assert REFUSED[(schedule, change)] in (outcome.reason or "")
        unchanged, unchanged_end, _ = train(tmp_path / "ref", **settings(schedule))
        assert (used, end) == (unchanged, unchanged_end)
        return

    assert (outcome.status, outcome.step) == (OutcomeStatus.APPLIED, at)
    reference, reference_end, _ = train(tmp_path / "ref", **settings(schedule, **restarted_with))
    assert end == reference_end
    after = {step: rates for step, rates in used.items() if step > at}
    assert after == {step: rates for step, rates in reference.items() if step > at}


# reduce_lr_on_plateau and greedy change the rate from evaluation metrics, so no restart reproduces a
# history; their documented meaning (docs/parameters.md): learning_rate is the rate from the next step
# on (the scheduler goes on from it), max_steps moves only the end, and there is no warmup to change.
@pytest.mark.parametrize("schedule", ["reduce_lr_on_plateau", "greedy"])
def test_metric_driven_schedules_keep_their_documented_meaning(tmp_path: Path, schedule: str) -> None:
    warmup, lr, shorten = request(warmup_steps=10), request(learning_rate=2 * PEAK), request(max_steps=30)
    no_evaluation_before_the_end = {"eval_strategy": "steps", "eval_steps": 1_000}
    used, end, source = train(
        tmp_path,
        {3: [warmup], 12: [lr, shorten]},
        eval_set=True,
        max_steps=MAX_STEPS,
        lr_scheduler_type=schedule,
        **no_evaluation_before_the_end,
    )

    assert source.outcome(warmup.id).status is OutcomeStatus.REJECTED
    assert "has no num_warmup_steps" in (source.outcome(warmup.id).reason or "")
    assert [source.outcome(r.id).status for r in (lr, shorten)] == [OutcomeStatus.APPLIED] * 2
    assert end == 30
    assert {step: rates for step, rates in used.items() if step <= 12} == {s: [PEAK, PEAK] for s in range(1, 13)}
    assert {step: rates for step, rates in used.items() if step > 12} == {s: [2 * PEAK] * 2 for s in range(13, 31)}


def test_a_warmup_given_as_a_ratio_follows_a_new_max_steps_as_at_a_start(tmp_path: Path) -> None:
    extend = request(max_steps=60)
    ratio = settings("linear", warmup_steps=0.1)  # 4 warmup steps of 40; a start with 60 warms up for 6
    used, end, _ = train(tmp_path / "live", {12: [extend]}, **ratio)
    reference, reference_end, _ = train(tmp_path / "ref", **{**ratio, "max_steps": 60})
    assert end == reference_end == 60
    assert {s: r for s, r in used.items() if s > 12} == {s: r for s, r in reference.items() if s > 12}


# name: (requests by step, the run's settings, the settings the restarted run starts with)
RATIO_INTERVALS: dict[str, tuple[dict[int, list[dict[str, Any]]], dict[str, Any], dict[str, Any]]] = {
    "a ratio follows max_steps": ({3: [{"max_steps": 20}]}, {"save_steps": 0.25}, {"save_steps": 0.25}),
    "an interval set live stays": (
        {2: [{"save_steps": 3}], 3: [{"max_steps": 20}]},
        {"save_steps": 0.25},
        {"save_steps": 3},
    ),
}


@pytest.mark.parametrize("case", list(RATIO_INTERVALS))
def test_intervals_saved_after_a_new_max_steps_are_those_of_a_start_with_it(tmp_path: Path, case: str) -> None:
    """An interval below 1 is a ratio of max_steps (every 10 of 40 here; a start with 20 saves every 5)."""
    pushes, start_with, restart_with = RATIO_INTERVALS[case]
    requests = {step: [request(**params) for params in batch] for step, batch in pushes.items()}
    _, end, _ = train(tmp_path / "live", requests, max_steps=MAX_STEPS, save_strategy="steps", **start_with)
    _, reference_end, _ = train(tmp_path / "ref", max_steps=20, save_strategy="steps", **restart_with)

    def saved_after_3(run: str) -> list[int]:
        return sorted(s for p in (tmp_path / run).glob("checkpoint-*") if (s := int(p.name.split("-")[1])) > 3)

    assert end == reference_end == 20
    assert saved_after_3("live") == saved_after_3("ref")


def test_a_resume_at_or_past_a_shortened_max_steps_ends_as_a_run_started_with_it(tmp_path: Path) -> None:
    """40 -> 35 live, then a resume from checkpoint-35: as a run started with 35 and resumed there (one step more)."""
    saving = {"save_strategy": "steps", "save_steps": 5, "max_steps": MAX_STEPS}
    _, first_end, source = train(tmp_path / "live", {5: [request(max_steps=35)]}, **saving)
    used, end, _ = train(tmp_path / "live", source=source, resume_from="checkpoint-35", **saving)

    reference_saving = {**saving, "max_steps": 35}
    train(tmp_path / "ref", **reference_saving)
    reference, reference_end, _ = train(tmp_path / "ref", resume_from="checkpoint-35", **reference_saving)

    assert first_end == 35
    assert (end, used) == (reference_end, reference)  # transformers makes one step after a resume at the end
    assert end == 36
