"""Batch size, accumulation, GRPO/RLOO's ``max_completion_length`` and ``num_generations``, applied by an
in-process restart; ``checkpoint``, which a rewind goes back to.

The applier does not change the loop it runs in (Trainer reads
``gradient_accumulation_steps`` at every micro-batch, and the DataLoader's batch
size is fixed): it asks for a restart (``_restart``), which saves a checkpoint,
leaves the loop and calls ``train()`` again from that checkpoint with the new value.

What it uses of the :class:`~liveparams.trainer_hooks.ApplyContext`: ``args``
(read; the driver sets the new value before ``train()`` is called again),
``state.epoch``, ``train_dataloader`` (the data position), ``control``
(``should_save``, ``should_training_stop``), and ``trainer`` (where the request waits
for the driver). ``checkpoint`` names the checkpoint a ``command: rewind`` goes back to
(``_restart``'s rewind); the command itself is ``commands``'.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from liveparams.trainer_hooks import _restart
from liveparams.trainer_hooks._appliers.base import NO_OTHER_PARAMS, ParameterApplier
from liveparams.trainer_hooks._context import ApplyContext

__all__ = [
    "BatchSizeApplier",
    "CheckpointApplier",
    "GenerationsApplier",
    "GradientAccumulationApplier",
    "MaxCompletionLengthApplier",
]


class RestartApplier(ParameterApplier):
    """A setting ``train()`` fixes when it starts: saved, the loop left, ``train()`` called again with it."""

    def read(self, ctx: ApplyContext) -> int:
        return int(getattr(ctx.args, self.name))

    def check(self, value: int, ctx: ApplyContext, params: Mapping[str, Any] = NO_OTHER_PARAMS) -> str | None:
        return _restart.refusal(ctx, {**params, self.name: value})

    def apply(self, value: int, ctx: ApplyContext) -> None:
        _restart.request_restart(self.name, value, ctx)

    def reapply_check(self, value: int, ctx: ApplyContext, params: Mapping[str, Any] = NO_OTHER_PARAMS) -> str | None:
        """After a resume the value lives in ``args`` (the driver set it): say so when a relaunch forgot it."""
        if int(getattr(ctx.args, self.name)) == value:
            return None
        now = getattr(ctx.args, self.name)
        return f"the run was restarted with {self.name}={value}, and this resume runs with {now}"

    def reapply(self, value: int, ctx: ApplyContext) -> bool:
        return False


class BatchRestartApplier(RestartApplier):
    """Batch size or accumulation: refused on GRPO/RLOO, whose generation batch TRL derives from them once.

    GRPOConfig and RLOOConfig compute ``generation_batch_size`` and ``steps_per_generation`` from
    these two when the config is built, and their DataLoader yields whole generation batches, so
    ``train()`` again with only the new value would go on with the old generation batch: not
    the run the rule describes.
    """

    def check(self, value: int, ctx: ApplyContext, params: Mapping[str, Any] = NO_OTHER_PARAMS) -> str | None:
        if ctx.trainer is not None and hasattr(ctx.trainer, "num_generations"):
            return (
                f"{ctx.trainer_name} derives its generation batch from {self.name} when its config is built; "
                "stop the run and resume it from a checkpoint with the new value"
            )
        return super().check(value, ctx, params)


class BatchSizeApplier(BatchRestartApplier):
    """By an in-process restart: ``train()`` again with a DataLoader of the new size, from the samples consumed."""

    name = "per_device_train_batch_size"


class GradientAccumulationApplier(BatchRestartApplier):
    """By an in-process restart: ``train()`` again with the new micro-batch groups, from the samples consumed."""

    name = "gradient_accumulation_steps"


class GenerationApplier(RestartApplier):
    """A GRPO/RLOO generation setting, by an in-process restart; refused where nothing generates, and under vLLM."""

    def check(self, value: int, ctx: ApplyContext, params: Mapping[str, Any] = NO_OTHER_PARAMS) -> str | None:
        trainer = ctx.trainer
        if trainer is None or not hasattr(trainer, self.name):
            return f"{ctx.trainer_name} generates no completions ({self.name} is GRPO's and RLOO's)"
        if getattr(trainer, "use_vllm", False):
            return f"vLLM's engine was built with the old {self.name}; restart the run with the new one"
        return self.reason(value, ctx, params) or super().check(value, ctx, params)

    def reason(self, value: int, ctx: ApplyContext, params: Mapping[str, Any]) -> str | None:
        """What else makes ``value`` impossible for this trainer now; None by default."""
        return None


class MaxCompletionLengthApplier(GenerationApplier):
    """GRPO/RLOO, by an in-process restart: ``train()`` again generating up to the new length, from the same prompts."""

    name = "max_completion_length"


class GenerationsApplier(GenerationApplier):
    """GRPO/RLOO, by an in-process restart: ``train()`` again with groups of the new size, from the same prompts."""

    name = "num_generations"

    def reason(self, value: int, ctx: ApplyContext, params: Mapping[str, Any]) -> str | None:
        return _restart.generations_reason(ctx, value, params)


class CheckpointApplier(ParameterApplier):
    """With ``command: rewind``: the step of the checkpoint to go back to (without it, the latest)."""

    name = "checkpoint"
    one_off = True

    def read(self, ctx: ApplyContext) -> None:
        return None

    def check(self, value: int, ctx: ApplyContext, params: Mapping[str, Any] = NO_OTHER_PARAMS) -> str | None:
        return None if params.get("command") == "rewind" else "it goes with command 'rewind'"

    def apply(self, value: int, ctx: ApplyContext) -> None:
        _restart.choose_checkpoint(value, ctx)
