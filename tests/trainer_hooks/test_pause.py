"""``command=pause`` holds a real ``transformers.Trainer`` at a step boundary; ``resume`` lets it go on.

A pause changes nothing of the run: every later step's loss and learning rate equal (``==``) those
of a run never paused, and a change made while paused equals the same change made at that step
boundary without a pause. Requests made while paused apply at once, at the paused step.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
from hooks_helpers import LrRecorder, PushAt, QueueSource, plain_trainer, request, training_args

from liveparams.contract import OutcomeStatus, UpdateRequest
from liveparams.trainer_hooks import RuntimeParameterCallback

pytestmark = pytest.mark.slow

AT = 6  # the step boundary the run pauses at


def train(tiny_dir: str, out: Path, source: QueueSource, schedule: dict[int, list[UpdateRequest]]) -> dict[str, Any]:
    """Train 14 steps; what a restart-equivalence comparison needs: rates used, losses, the last step."""
    recorder = LrRecorder()
    args = training_args(out, max_steps=14, weight_decay=0.01)
    trainer = plain_trainer(tiny_dir, args, [PushAt(source, schedule), recorder, RuntimeParameterCallback(source)])
    trainer.train()
    losses = {e["step"]: e["loss"] for e in trainer.state.log_history if "loss" in e}
    return {
        "lrs": recorder.used,
        "weight_decay": recorder.weight_decay,
        "losses": losses,
        "end": trainer.state.global_step,
    }


@pytest.fixture
def reference(tiny_dir: str, tmp_path: Path) -> dict[str, Any]:
    return train(tiny_dir, tmp_path / "reference", QueueSource(), {})


def test_a_pause_then_resume_equals_a_run_never_paused(
    tiny_dir: str, tmp_path: Path, reference: dict[str, Any]
) -> None:
    pause, resume = request(command="pause"), request(command="resume")
    source = QueueSource(while_paused=[[], [], [resume]])  # two rounds with nothing, then resume
    paused = train(tiny_dir, tmp_path / "paused", source, {AT: [pause]})

    assert paused == reference
    assert (source.outcome(pause.id).status, source.outcome(pause.id).step) == (OutcomeStatus.APPLIED, AT)
    assert (source.outcome(resume.id).status, source.outcome(resume.id).step) == (OutcomeStatus.APPLIED, AT)
    assert source.pauses == [AT, None]  # the job row says paused at AT, then running again


def test_changes_made_while_paused_equal_the_same_changes_at_that_step(tiny_dir: str, tmp_path: Path) -> None:
    changes = [request(learning_rate=3e-3), request(weight_decay=0.2)]
    unpaused = train(tiny_dir, tmp_path / "unpaused", QueueSource(), {AT: list(changes)})

    pause = request(command="pause")  # made in the order they arrive: `seq` says which is newer
    again = [request(learning_rate=3e-3), request(weight_decay=0.2)]
    resume = request(command="resume")
    source = QueueSource(while_paused=[[again[0]], [], [again[1]], [resume]])  # one at a time, rounds apart
    paused = train(tiny_dir, tmp_path / "paused", source, {AT: [pause]})

    assert paused == unpaused
    assert paused["lrs"][AT + 1] != paused["lrs"][AT]  # the change is in force from the first step after
    assert [source.outcome(r.id).step for r in again] == [AT, AT]  # applied at once, at the paused step
    assert all(source.outcome(r.id).status is OutcomeStatus.APPLIED for r in again)


def test_pause_while_paused_and_resume_while_running_are_refused(
    tiny_dir: str, tmp_path: Path, reference: dict[str, Any]
) -> None:
    early_resume, pause, second_pause, resume = (request(command=c) for c in ("resume", "pause", "pause", "resume"))
    source = QueueSource(while_paused=[[second_pause, resume]])
    paused = train(tiny_dir, tmp_path / "paused", source, {2: [early_resume], AT: [pause]})

    assert paused == reference
    refused = source.outcome(early_resume.id)
    assert (refused.status, refused.reason) == (OutcomeStatus.REJECTED, "command: not paused")
    refused = source.outcome(second_pause.id)
    assert (refused.status, refused.reason) == (OutcomeStatus.REJECTED, f"command: already paused at step {AT}")
    assert source.outcome(resume.id).status is OutcomeStatus.APPLIED


def test_stop_while_paused_ends_the_hold_and_stops_after_a_checkpoint(tiny_dir: str, tmp_path: Path) -> None:
    pause, stop = request(command="pause"), request(command="stop")
    source = QueueSource(while_paused=[[], [stop]])
    stopped = train(tiny_dir, tmp_path / "paused", source, {AT: [pause]})

    assert stopped["end"] == AT
    assert (tmp_path / "paused" / f"checkpoint-{AT}").is_dir()
    assert source.outcome(stop.id).status is OutcomeStatus.APPLIED
    assert source.pauses == [AT, None]
    assert source.ends == [("stopped", AT)]


class CtrlCWhenPaused(QueueSource):
    """Nothing ever resumes this run: a second after the pause begins, the process gets Ctrl-C (SIGINT)."""

    def record_pause(self, step: int | None) -> None:
        super().record_pause(step)
        if step is not None:
            threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()


def test_ctrl_c_while_paused_ends_training_as_it_would_a_running_one(tiny_dir: str, tmp_path: Path) -> None:
    source, recorder = CtrlCWhenPaused(), LrRecorder()
    args = training_args(tmp_path / "out", max_steps=14)
    trainer = plain_trainer(
        tiny_dir, args, [PushAt(source, {AT: [request(command="pause")]}), recorder, RuntimeParameterCallback(source)]
    )
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    assert max(recorder.used) == AT and source.pauses == [AT]  # held at AT until the interrupt


@pytest.mark.timeout(60)  # without the fix the hold never ends
def test_a_pause_no_resume_can_reach_any_more_ends_and_training_goes_on(
    tiny_dir: str, tmp_path: Path, reference: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """The source stops receiving two rounds into the hold (its credential revoked, its job deleted)."""
    pause = request(command="pause")
    source = QueueSource(receives_for=2)
    with caplog.at_level(logging.WARNING, logger="liveparams"):
        went_on = train(tiny_dir, tmp_path / "paused", source, {AT: [pause]})

    assert went_on == reference  # held, then every step of the run, as if never paused
    assert source.paused_drains == 2 and source.pauses == [AT, None]
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert said == [f"Paused at step {AT} with no update source left to resume it: going on"]
