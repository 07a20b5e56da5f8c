"""One-off actions (``command``: evaluate, save a checkpoint, stop, rewind), applied last within a request.

A command sets ``control`` flags, which the loop acts on right after
``on_step_end``; "stop" saves first, so the last checkpoint holds the
request's other changes. Commands are never superseded and never set again
after a resume.

What it uses of the :class:`~liveparams.trainer_hooks.ApplyContext`:
``control.should_evaluate``, ``should_save`` and ``should_training_stop`` (set: a
loop without a Trainer reads them after the step, as Trainer does), and what
``evaluate`` checks (see ``intervals.no_eval_reason``).
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
    """One-off actions through ``control`` flags, which the loop acts on right after ``on_step_end``."""

    name = "command"
    one_off = True

    def read(self, ctx: ApplyContext) -> None:
        return None

    def check(self, value: str, ctx: ApplyContext, params: Mapping[str, Any] = NO_OTHER_PARAMS) -> str | None:
        if value == "rewind":
            return _restart.rewind_refusal(ctx, params)
        return no_eval_reason(ctx) if value == "evaluate" else None

    def apply(self, value: str, ctx: ApplyContext) -> None:
        if value == "evaluate":
            ctx.control.should_evaluate = True
        elif value == "save_checkpoint":
            ctx.control.should_save = True
        elif value == "stop":
            ctx.control.should_save = True  # checkpoint first, then stop
            ctx.control.should_training_stop = True
        elif value == "rewind":  # back to a checkpoint, in-process (``_restart``)
            _restart.request_rewind(ctx)
        else:
            raise ValueError(f"unknown command {value!r}")

    def log_applied(self, old: Any, new: Any, step: int) -> None:
        logger.info("Applied command %r at step %d", new, step)
