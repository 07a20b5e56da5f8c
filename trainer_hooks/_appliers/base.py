"""The contract every applier keeps: check a value, read the one in force, set it, set it again after a resume.

Appliers *set* values (never scale by a stored factor), so the callback can
set the values in force again after ``resume_from_checkpoint`` without
compounding them (:meth:`ParameterApplier.reapply`). They raise only on bugs;
a change that cannot be made on this run is refused by
:meth:`ParameterApplier.check` with a sentence for the user.

An applier sees the run only through its arguments: the value, the
:class:`~liveparams.trainer_hooks.ApplyContext` (the live objects, see
``_context``) and, for a check that depends on another parameter, the
parameters set together with this one. Nothing reaches it on the side.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from liveparams.contract import format_value
from liveparams.trainer_hooks._context import ApplyContext

__all__ = ["NO_OPTIMIZER", "NO_OTHER_PARAMS", "ParameterApplier"]

# What a check is given when no other parameter is set with the value (an applier used on its own).
NO_OTHER_PARAMS: Mapping[str, Any] = MappingProxyType({})

# The refusal of an optimizer change asked for before the optimizer is built.
NO_OPTIMIZER = "the optimizer does not exist yet"

logger = logging.getLogger(__package__)  # every family logs as the package, the name users know from the log lines


class ParameterApplier(ABC):
    """Changes one parameter of a running training.

    Attributes:
        name (`str`): the parameter's key in a request (a key of ``liveparams.contract._parameters.PARAMETERS``).
        one_off (`bool`): a command rather than a value; never superseded, never re-applied on resume.
        coupling (`str`, *optional*): parameters with the same coupling interact (the schedule's
            peak, shape and mode), so one of them counts as replaced by a later request only if
            no other of the group was set in between. None: the parameter stands alone.
    """

    name: ClassVar[str]
    one_off: ClassVar[bool] = False
    coupling: ClassVar[str | None] = None

    def check(self, value: Any, ctx: ApplyContext, params: Mapping[str, Any] = NO_OTHER_PARAMS) -> str | None:
        """Why ``value`` cannot be applied to this run (a sentence for the user), or None.

        Args:
            params (`Mapping[str, Any]`, *optional*): every parameter set together with this one
                (the request's, or the values in force set again after a resume), for a check
                that depends on another of them; empty when the value is set alone.
        """
        return None

    @abstractmethod
    def read(self, ctx: ApplyContext) -> Any:
        """The value in force now (the ``old`` of a change)."""

    @abstractmethod
    def apply(self, value: Any, ctx: ApplyContext) -> None:
        """Set ``value``; idempotent, effective from the next optimizer step."""

    def reapply_check(self, value: Any, ctx: ApplyContext, params: Mapping[str, Any] = NO_OTHER_PARAMS) -> str | None:
        """Why ``value``, in force at the checkpoint, cannot be set again after a resume; by default :meth:`check`'s."""
        return self.check(value, ctx, params)

    def reapply(self, value: Any, ctx: ApplyContext) -> bool:
        """After ``resume_from_checkpoint``, set again the part of ``value`` the checkpoint does not restore.

        The default sets all of it, for values that live outside the checkpoint
        (``args``, schedule keywords, trainer attributes, intervals). An applier whose
        value the checkpoint restores must not set it: the run may have moved it on
        since (a plateau reduction, a frozen rate). Returns whether anything was set.
        """
        self.apply(value, ctx)
        return True

    def log_applied(self, old: Any, new: Any, step: int) -> None:
        """One INFO line per applied change."""
        logger.info("Applied %s: %s → %s at step %d", self.name, format_value(old), format_value(new), step)
