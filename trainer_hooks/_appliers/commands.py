"""One-off actions (``command``: evaluate, save, stop, pause, resume, rewind), applied last within a request.

A command sets ``control`` flags, which the loop acts on right after
``on_step_end``; "stop" saves first, so the last checkpoint holds the
request's other changes. "pause" sets the callback's :class:`Pause`, and the
callback then holds the run at this step boundary until "resume" or "stop"
(which also ends the hold); requests made meanwhile apply at once, at this
step. "pause" while paused and "resume" while running are refused, saying so.
Commands are never superseded and never set again after a resume.

What it uses of the :class:`~liveparams.trainer_hooks.ApplyContext`:
``control.should_evaluate``, ``should_save`` and ``should_training_stop`` (set: a
loop without a Trainer reads them after the step, as Trainer does), ``pause``
(read and set), and what ``evaluate`` checks (see ``intervals.no_eval_reason``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from liveparams.trainer_hooks import _restart
from liveparams.trainer_hooks._appliers.base import NO_OTHER_PARAMS, ParameterApplier
from liveparams.trainer_hooks._appliers.intervals import no_eval_reason
from liveparams.trainer_hooks._context import ApplyContext

__all__ = ["CommandApplier"]

logger = logging.getLogger(__package__)


class CommandApplier(ParameterApplier):
    """One-off actions: ``control`` flags, which the loop acts on right after ``on_step_end``; pause holds there."""

    name = "command"
    one_off = True

    def read(self, ctx: ApplyContext) -> None:
        return None

    def check(self, value: str, ctx: ApplyContext, params: Mapping[str, Any] = NO_OTHER_PARAMS) -> str | None:
        if value == "evaluate":
            return no_eval_reason(ctx)
        if value in ("pause", "resume"):
            return _pause_reason(value, ctx)
        if value == "rewind":
            return _restart.rewind_refusal(ctx, params)
        return None

    def apply(self, value: str, ctx: ApplyContext) -> None:
        if value == "evaluate":
            ctx.control.should_evaluate = True
        elif value == "save_checkpoint":
            ctx.control.should_save = True
        elif value == "stop":
            ctx.control.should_save = True  # checkpoint first, then stop
            ctx.control.should_training_stop = True
            if ctx.pause is not None:
                ctx.pause.step = None  # a stop ends the hold
        elif value in ("pause", "resume"):
            assert ctx.pause is not None  # check() refused it otherwise
            ctx.pause.step = int(ctx.state.global_step) if value == "pause" else None
        elif value == "rewind":  # back to a checkpoint, in-process (``_restart``)
            _restart.request_rewind(ctx)
        else:
            raise ValueError(f"unknown command {value!r}")

    def log_applied(self, old: Any, new: Any, step: int) -> None:
        logger.info("Applied command %r at step %d", new, step)


def _pause_reason(value: str, ctx: ApplyContext) -> str | None:
    """Why ``pause``/``resume`` cannot apply now: nothing holds this run, or it is already where asked."""
    if ctx.pause is None:
        return "this run has no callback to hold it (pause needs RuntimeParameterCallback or LoopUpdates)"
    if value == "pause" and ctx.pause.step is not None:
        return f"already paused at step {ctx.pause.step}"
    if value == "pause" and ctx.control.should_training_stop:
        return "training ends at this step"
    if value == "resume" and ctx.pause.step is None:
        return "not paused"
    return None
