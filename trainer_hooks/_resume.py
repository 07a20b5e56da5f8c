"""After ``resume_from_checkpoint``: set again the values in force that the checkpoint does not restore.

``optimizer.pt`` and ``scheduler.pt`` bring back the rates and param-group
fields; ``args``, the schedule lambdas' keywords, ``state`` intervals and
``max_steps``, and TRL's trainer attributes are not in a checkpoint. Each
applier says which part of its value to set again (``ParameterApplier.reapply``);
they run in registry order, as a request's parameters do.
"""

from __future__ import annotations

import logging
from typing import Any

from liveparams.contract import format_value
from liveparams.trainer_hooks import _registry
from liveparams.trainer_hooks._context import ApplyContext

__all__ = ["reapply_in_force"]

logger = logging.getLogger(__name__)


def reapply_in_force(in_force: dict[str, Any], ctx: ApplyContext) -> None:
    """Set again each value of ``in_force`` (parameter → value) that the checkpoint did not restore."""
    step = ctx.state.global_step
    for name in _registry.applier_names():
        if name not in in_force:
            continue
        applier, value = _registry.get_applier(name), in_force[name]
        try:
            reason = applier.reapply_check(value, ctx, in_force)
            if reason is not None:
                logger.warning("could not re-apply %s=%s after resume: %s", name, format_value(value), reason)
            elif applier.reapply(value, ctx):
                logger.info("Re-applied %s=%s after resume at step %d", name, format_value(value), step)
        except Exception:
            logger.exception("re-applying %s=%s after resume failed", name, format_value(value))
