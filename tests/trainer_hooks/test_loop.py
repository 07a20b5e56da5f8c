"""``LoopUpdates``: a loop without Trainer gets the callback's decisions, as flags and values it reads."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hooks_helpers import QueueSource, request, schedule_factors
from torch import nn
from transformers import get_scheduler

from liveparams import LoopUpdates, RuntimeParameterCallback


def loop(source: QueueSource, scheduler: str = "linear", **kwargs: Any) -> tuple[LoopUpdates, Any, Any]:
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(nn.Linear(4, 1).parameters(), lr=1e-3, weight_decay=0.01)
    if scheduler == "linear":
        schedule = get_scheduler("linear", optimizer, num_warmup_steps=2, num_training_steps=20)
    else:
        schedule = torch.optim.lr_scheduler.StepLR(optimizer, 5)
    live = LoopUpdates(optimizer, schedule, max_steps=20, callback=RuntimeParameterCallback(source), **kwargs)
    return live, optimizer, schedule


def take_steps(live: LoopUpdates, optimizer: Any, scheduler: Any, pushes: dict[int, Any], source: QueueSource) -> list:
    """Run the loop to its end (or a stop); the rate used at each step and the flags of each step."""
    used, flags = [], []
    while live.global_step < live.max_steps:
        used.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
        source.push(*pushes.get(live.global_step + 1, []))
        flags.append(todo := live.step())
        if todo.stop:
            break
    return [used, flags]


def test_a_live_rate_is_a_restart_with_it_and_commands_come_back_as_flags(source: QueueSource) -> None:
    live, optimizer, scheduler = loop(source)
    pushes = {4: [request(learning_rate=5e-3)], 6: [request(max_grad_norm=0.5)], 9: [request(command="stop")]}
    with live:
        used, flags = take_steps(live, optimizer, scheduler, pushes, source)

    factors = schedule_factors("linear", 2, 20)
    assert used == pytest.approx([(1e-3 if s <= 4 else 5e-3) * factors[s - 1] for s in range(1, 10)])
    assert live.max_grad_norm == 0.5
    assert flags[-1].save and flags[-1].stop and live.global_step == 9  # stop saves first
    assert source.ends == [("stopped", 9)]


def test_the_loop_tells_the_source_its_step_at_start_and_each_step_and_a_resume_where_it_starts(
    source: QueueSource,
) -> None:
    """What the agent's heartbeat puts on the job row (``trainer_step``), for a loop as for Trainer."""
    live, optimizer, scheduler = loop(source)
    with live:
        take_steps(live, optimizer, scheduler, {5: [request(command="stop")]}, source)
    assert source.steps == [0, 1, 2, 3, 4, 5]

    saved, source.steps = live.state_dict(), []
    resumed, optimizer, scheduler = loop(source)
    resumed.load_state_dict(saved)
    with resumed:
        take_steps(resumed, optimizer, scheduler, {7: [request(command="stop")]}, source)
    assert source.steps == [5, 6, 7]


def test_another_scheduler_is_refused_by_name(source: QueueSource) -> None:
    live, optimizer, scheduler = loop(source, scheduler="step")
    with live:
        take_steps(live, optimizer, scheduler, {2: [(change := request(learning_rate=5e-3))]}, source)
    assert "StepLR" in (source.outcome(change.id).reason or "")


def test_evaluate_is_refused_unless_the_loop_evaluates(source: QueueSource) -> None:
    for evaluates in (False, True):
        live, optimizer, scheduler = loop(source, evaluate=evaluates)
        with live:
            _, flags = take_steps(live, optimizer, scheduler, {3: [(ask := request(command="evaluate"))]}, source)
        assert source.outcome(ask.id).status.value == ("applied" if evaluates else "rejected")
        assert [f.evaluate for f in flags].count(True) == int(evaluates)


def test_state_dict_carries_the_step_and_the_values_a_checkpoint_does_not_restore(source: QueueSource) -> None:
    live, optimizer, scheduler = loop(source)
    with live:
        take_steps(
            live,
            optimizer,
            scheduler,
            {3: [request(max_grad_norm=0.25, max_steps=15)], 5: [request(command="stop")]},
            source,
        )
    saved = live.state_dict()

    resumed, optimizer, scheduler = loop(source)
    resumed.load_state_dict(saved)
    with resumed:
        assert (resumed.global_step, resumed.max_grad_norm, resumed.max_steps) == (5, 0.25, 15)
        take_steps(resumed, optimizer, scheduler, {}, source)
    assert resumed.global_step == 15
    assert source.starts[-1] == 5  # the source replays what was applied after the checkpoint
    with pytest.raises(RuntimeError, match="before start"):
        resumed.start().load_state_dict(saved)


def test_a_loop_holds_inside_step_while_paused_and_a_change_made_then_applies_at_that_step() -> None:
    unpaused = QueueSource()
    live, optimizer, scheduler = loop(unpaused)
    with live:
        expected = take_steps(live, optimizer, scheduler, {4: [request(learning_rate=5e-3)]}, unpaused)

    pause = request(command="pause")
    change, resume = request(learning_rate=5e-3), request(command="resume")
    source = QueueSource(while_paused=[[change], [resume]])
    live, optimizer, scheduler = loop(source)
    with live:
        used = take_steps(live, optimizer, scheduler, {4: [pause]}, source)

    assert used == expected  # rates and flags, every step
    assert [source.outcome(r.id).step for r in (pause, change, resume)] == [4, 4, 4]
    assert source.pauses == [4, None]


def test_a_pause_after_a_stop_at_the_same_step_is_refused(source: QueueSource) -> None:
    live, optimizer, scheduler = loop(source)
    stop, pause = request(command="stop"), request(command="pause")
    with live:
        take_steps(live, optimizer, scheduler, {5: [stop, pause]}, source)

    assert live.global_step == 5 and source.pauses == []
    refused = source.outcome(pause.id)
    assert (refused.status.value, refused.reason) == ("rejected", "command: training ends at this step")
