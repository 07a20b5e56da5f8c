"""What a process keeps for a rewind stays bounded: what was applied at or before the oldest checkpoint on disk goes.

A job with 10,000 requests and ``save_total_limit`` keeps only what was applied since the oldest
kept checkpoint; what a rewind replays is unchanged (test_in_process_restart.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from hooks_helpers import QueueSource, request, training_args
from transformers import TrainerControl, TrainerState

from liveparams.trainer_hooks import RuntimeParameterCallback
from liveparams.trainer_hooks._replays import AppliedLog

STEPS, SAVE_EVERY, KEPT = 2000, 10, 2


def test_many_requests_and_rotated_checkpoints_keep_only_what_a_rewind_can_need(tmp_path: Path) -> None:
    """A Trainer's loop as the callback sees it: a request applied every step, a save every 10, 2 checkpoints kept."""
    source = QueueSource()
    args, state, control = training_args(tmp_path), TrainerState(), TrainerControl()
    callback = RuntimeParameterCallback(source)
    callback.on_train_begin(args, state, control)
    sizes = []
    for step in range(1, STEPS + 1):
        source.push(request(max_grad_norm=float(step % 7 + 1)))
        state.global_step = step
        callback.on_step_end(args, state, control)
        if step % SAVE_EVERY == 0:
            (tmp_path / f"checkpoint-{step}").mkdir()
            shutil.rmtree(tmp_path / f"checkpoint-{step - KEPT * SAVE_EVERY}", ignore_errors=True)  # the rotation
            callback.on_save(args, state, control)
            sizes.append(len(callback._applied))

    assert [o.status.value for o in source.outcomes] == ["applied"] * STEPS
    # After each save: what was applied after the oldest kept checkpoint, 10 steps of requests.
    assert sizes[1:] == [SAVE_EVERY] * (len(sizes) - 1)


def test_a_rewind_replays_what_was_applied_after_any_checkpoint_still_on_disk(tmp_path: Path) -> None:
    for step in (10, 20):
        (tmp_path / f"checkpoint-{step}").mkdir()
    (tmp_path / "runs").mkdir()  # not a checkpoint
    log = AppliedLog()
    applied = {step: request(learning_rate=step * 1e-4) for step in (5, 10, 14, 20, 23)}
    for step, r in applied.items():
        log.add(step, r)

    log.forget_before_checkpoints(str(tmp_path), 23)

    assert log.replays_after(10) == [applied[14], applied[20], applied[23]]  # as before: nothing it needs is gone
    assert len(log) == 0  # what was at or before checkpoint-10 was forgotten: it is in that checkpoint


def test_without_any_checkpoint_only_what_is_after_the_step_could_be_needed(tmp_path: Path) -> None:
    log = AppliedLog()
    for step in (1, 2, 3):
        log.add(step, request(learning_rate=1e-3))
    log.forget_before_checkpoints(str(tmp_path / "never-made"), 2)
    assert [step for step, _ in log.entries] == [3]
    log.forget_before_checkpoints(None, 3)  # a custom loop's args without output_dir
    assert len(log) == 0
