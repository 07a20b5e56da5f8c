"""Restart-only settings applied by an in-process restart equal the rule's restart, step for step.

The rule (docs/parameters.md): a change of ``gradient_accumulation_steps`` or
``per_device_train_batch_size`` at step S equals a run that trained to S with the old
settings, saved, and went on from the same sample position with the new ones. Each
test compares every micro-batch's loss and every step's learning rate with ``==``
against that reference (``restarted_runs.reference``), and the rows consumed against
the order of a run with no change: none repeated, none skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hooks_helpers import request
from restarted_runs import MAX_STEPS, live, reference, uninterrupted

from liveparams.contract import OutcomeStatus

pytestmark = pytest.mark.slow

# name: (step S, settings before, the request at S); 240 rows, batch 4 unless changed
CHANGES: dict[str, tuple[int, dict[str, Any], dict[str, Any]]] = {
    "accumulation 2 -> 4 mid-epoch": (10, {"gradient_accumulation_steps": 2}, {"gradient_accumulation_steps": 4}),
    "accumulation 4 -> 2 mid-epoch": (5, {"gradient_accumulation_steps": 4}, {"gradient_accumulation_steps": 2}),
    "accumulation 4 -> 2 in the second epoch": (
        20,
        {"gradient_accumulation_steps": 4, "max_steps": 60},
        {"gradient_accumulation_steps": 2},
    ),
    "batch size 4 -> 8 mid-epoch": (10, {"gradient_accumulation_steps": 2}, {"per_device_train_batch_size": 8}),
    "batch size and accumulation together": (
        12,
        {"gradient_accumulation_steps": 2},
        {"per_device_train_batch_size": 2, "gradient_accumulation_steps": 8},
    ),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_an_in_process_restart_equals_the_rules_restart(tmp_path: Path, change: str) -> None:
    step, old, new = CHANGES[change]
    asked = request(**new)
    got, source = live(tmp_path / "live", {step: [asked]}, **old)
    want = reference(tmp_path / "reference", step, old, new)

    outcome = source.outcome(asked.id)
    assert outcome.status is OutcomeStatus.APPLIED and outcome.step == step, outcome.reason
    assert got.end == want.end == old.get("max_steps", MAX_STEPS)
    assert got.lrs == want.lrs
    assert got.losses == want.losses
    assert got.ids == want.ids
    assert source.starts == [None]  # one subscription for the whole run: the source was never started again


# name: (settings at start, step -> the request at its end)
SAMPLE_RUNS: dict[str, tuple[dict[str, Any], dict[int, dict[str, Any]]]] = {
    "accumulation 2 -> 4 mid-epoch": ({"gradient_accumulation_steps": 2}, {10: {"gradient_accumulation_steps": 4}}),
    "accumulation 4 -> 2 in the second epoch": (
        {"gradient_accumulation_steps": 4, "max_steps": 60},
        {20: {"gradient_accumulation_steps": 2}},
    ),
    "three restarts across an epoch's end": (
        {"gradient_accumulation_steps": 2, "max_steps": 60},
        {
            10: {"gradient_accumulation_steps": 4},
            11: {"per_device_train_batch_size": 8},
            24: {"per_device_train_batch_size": 2, "gradient_accumulation_steps": 2},
        },
    ),
}


@pytest.mark.parametrize("run", list(SAMPLE_RUNS))
def test_no_sample_is_repeated_or_skipped_across_changes(tmp_path: Path, run: str) -> None:
    settings, changes = SAMPLE_RUNS[run]
    asked = {step: request(**params) for step, params in changes.items()}
    got, source = live(tmp_path / "live", {step: [r] for step, r in asked.items()}, **settings)
    order = uninterrupted(tmp_path / "plain", **{**settings, "max_steps": 1_000}).samples()

    assert [source.outcome(r.id).status for r in asked.values()] == [OutcomeStatus.APPLIED] * len(asked)
    assert got.end == settings.get("max_steps", MAX_STEPS)
    consumed = got.samples()
    assert len(consumed) > 240  # into the second epoch: its order is the epoch's own, whatever the batch size
    assert consumed == order[: len(consumed)]


def test_a_change_where_the_new_steps_would_not_line_up_is_refused(tmp_path: Path) -> None:
    # At step 11 with batch 4 and accumulation 2 the epoch consumed 88 rows: not a whole number of 16-row steps.
    asked = request(gradient_accumulation_steps=4)
    got, source = live(tmp_path / "live", {11: [asked]}, gradient_accumulation_steps=2)
    want = uninterrupted(tmp_path / "plain", gradient_accumulation_steps=2)

    outcome = source.outcome(asked.id)
    assert outcome.status is OutcomeStatus.REJECTED
    assert "sample 88 of epoch 0" in outcome.reason and "multiple of 16" in outcome.reason
    assert (got.losses, got.lrs) == (want.losses, want.lrs)


def test_without_a_driver_the_refusal_names_both_ways(tmp_path: Path) -> None:
    asked = request(gradient_accumulation_steps=4)
    got, source = live(tmp_path / "live", {10: [asked]}, driven=False, gradient_accumulation_steps=2)

    outcome = source.outcome(asked.id)
    assert outcome.status is OutcomeStatus.REJECTED
    assert "liveparams run" in outcome.reason and "liveparams.train(trainer)" in outcome.reason
    assert got.end == MAX_STEPS
