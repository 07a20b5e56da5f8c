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
from restarted_runs import MAX_STEPS, Seen, live, reference, resumed_from, uninterrupted

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
    (restart,) = source.restarts  # said once the first step after it began, with the time it took
    assert (restart.kind, restart.step, restart.from_step, restart.settings) == ("restart", step, None, new)
    assert restart.seconds > 0


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


@pytest.mark.parametrize("asked", ["accumulation", "rewind"])
def test_under_save_only_model_a_restart_or_rewind_is_refused_and_training_goes_on(tmp_path: Path, asked: str) -> None:
    # Its checkpoints hold no optimizer or scheduler state, and a resume skips them silently: the run would
    # go on with fresh Adam moments and its schedule back at warmup, which is not the run the rule describes.
    settings = {"gradient_accumulation_steps": 2, "save_strategy": "steps", "save_steps": 10, "save_only_model": True}
    change = request(command="rewind") if asked == "rewind" else request(gradient_accumulation_steps=4)
    got, source = live(tmp_path / "live", {20: [change]}, **settings)
    want = uninterrupted(tmp_path / "plain", **settings)

    outcome = source.outcome(change.id)
    assert outcome.status is OutcomeStatus.REJECTED
    assert "save_only_model is set" in outcome.reason and "fresh optimizer" in outcome.reason
    assert source.restarts == []
    assert (got.losses, got.lrs) == (want.losses, want.lrs)


# ---- command: rewind ---------------------------------------------------------------------------

SAVING = {"gradient_accumulation_steps": 2, "save_strategy": "steps", "save_steps": 10}
REWIND_AT, BACK_TO = 25, 10


def _tail(got: Seen, want: Seen) -> tuple[dict[int, float], list[float], list[list[int]]]:
    """``got``'s rates, losses and rows over the steps ``want`` made (its last part)."""
    n = len(want.losses)
    return {s: lr for s, lr in got.lrs.items() if s in want.lrs}, got.losses[-n:], got.ids[-n:]


# name: (what the rewind request carries besides the command, requests applied between the checkpoint and it)
REWINDS: dict[str, tuple[dict[str, Any], dict[int, dict[str, Any]]]] = {
    "to a step": ({"checkpoint": BACK_TO}, {}),
    "to the latest": ({}, {}),
    "with a new learning rate": ({"checkpoint": BACK_TO, "learning_rate": 2e-3}, {}),
    "with a new accumulation": ({"checkpoint": BACK_TO, "gradient_accumulation_steps": 4}, {}),
    "replaying what was applied after the checkpoint": (
        {"checkpoint": BACK_TO},
        {14: {"max_grad_norm": 0.5}, 17: {"learning_rate": 5e-4}},
    ),
}


@pytest.mark.parametrize("rewind", list(REWINDS))
def test_a_rewind_equals_a_resume_from_that_checkpoint_with_those_settings(tmp_path: Path, rewind: str) -> None:
    own, between = REWINDS[rewind]
    schedule = {step: [request(**params)] for step, params in between.items()}  # made in order: seq grows
    asked = request(command="rewind", **own)
    schedule[REWIND_AT] = [asked]
    got, source = live(tmp_path / "live", schedule, **SAVING)
    back_to = own.get("checkpoint", 20)  # the latest checkpoint at step 25 is step 20's
    settings = {k: v for k, v in own.items() if k in ("gradient_accumulation_steps", "per_device_train_batch_size")}
    others = {k: v for k, v in own.items() if k not in ("checkpoint", *settings)}
    # What a resume from that checkpoint replays (applied after it), then the rewind's own settings.
    replays = [request(**params) for step, params in between.items() if step > back_to]
    replays += [request(**others)] if others else []
    want = resumed_from(tmp_path / "live" / f"checkpoint-{back_to}", back_to, SAVING, settings, at_begin=replays)

    assert source.reports(asked.id)[0].status is OutcomeStatus.APPLIED, source.reports(asked.id)[0].reason
    (restart,) = source.restarts
    assert (restart.kind, restart.step, restart.from_step) == ("rewind", back_to, REWIND_AT) and restart.seconds > 0
    assert got.end == want.end == MAX_STEPS
    assert _tail(got, want) == (want.lrs, want.losses, want.ids)


def test_a_rewind_to_the_oldest_kept_checkpoint_replays_as_if_every_checkpoint_were_kept(tmp_path: Path) -> None:
    """With ``save_total_limit`` the process forgets what was applied at or before the oldest checkpoint kept."""
    saving = {**SAVING, "save_steps": 5}
    runs = {}
    for limit in (None, 2):
        before, after = request(max_grad_norm=0.5), request(learning_rate=5e-4)
        schedule = {12: [before], 17: [after], 23: [request(command="rewind", checkpoint=15)]}  # 15, 20 on disk
        runs[limit], source = live(tmp_path / f"limit-{limit}", schedule, **saving, save_total_limit=limit)
        (restart,) = source.restarts
        assert (restart.kind, restart.step, restart.from_step) == ("rewind", 15, 23)
        # Applied again as the rewind's run begins (at 15), like a resume's replay; the one before 15 is in it.
        assert [o.step for o in source.reports(after.id)] == [17, 15]
        assert [o.step for o in source.reports(before.id)] == [12]
    assert runs[2] == runs[None]


def test_a_rewind_to_a_step_with_no_checkpoint_is_refused_and_training_goes_on(tmp_path: Path) -> None:
    asked = request(command="rewind", checkpoint=15)
    got, source = live(tmp_path / "live", {REWIND_AT: [asked]}, **SAVING)

    outcome = source.outcome(asked.id)
    assert outcome.status is OutcomeStatus.REJECTED
    assert "there is no checkpoint at step 15" in outcome.reason
    assert got.end == MAX_STEPS and len(got.losses) == MAX_STEPS * 2  # one pass, no step made twice
