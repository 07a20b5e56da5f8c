"""Knobs TRL copies onto the trainer object at init (``beta``), and the GRPO/RLOO internals they depend on.

TRL reads ``trainer.beta``, not ``args.beta``, in every loss, so only a
trainer reference can change it. GRPO and RLOO reuse one generation batch for
several micro-steps, and what beta was when the batch was made is baked into
it (reference log-probs, RLOO's rewards); a change is refused until the next
batch (docs/internals.md, "Trainer"). TRL is never imported: trainers are
recognised by class name.

What it uses of the :class:`~liveparams.trainer_hooks.ApplyContext`:

- ``trainer`` (required): ``beta`` (set), ``ref_model``, ``loss_type(s)``,
  ``_buffered_inputs``, ``_step``, ``num_iterations`` and ``args.steps_per_generation``;
- ``args``: ``beta`` (set when present, so a saved ``training_args.bin`` tells the
  truth) and ``loss_type`` (optional);
- ``model.peft_config`` (optional): a PEFT model is its own reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from liveparams.trainer_hooks._appliers.base import NO_OTHER_PARAMS, ParameterApplier
from liveparams.trainer_hooks._context import ApplyContext

__all__ = ["BetaApplier"]

# TRL losses that divide by beta (DPO's ipo and sppo_hard, CPO's simpo, TPO's tpo-l, …): beta=0 raises in them.
_DIVIDES_BY_BETA = frozenset({"ipo", "sppo_hard", "simpo", "tpo-l"})


class BetaApplier(ParameterApplier):
    """``trainer.beta``: TRL copies it from args at init and reads the copy in every loss."""

    name = "beta"

    def read(self, ctx: ApplyContext) -> float:
        return float(ctx.trainer.beta)

    def check(self, value: float, ctx: ApplyContext, params: Mapping[str, Any] = NO_OTHER_PARAMS) -> str | None:
        trainer = ctx.trainer
        if trainer is None:
            return "beta lives on the trainer object: build the callback with from_env(trainer) or bind(trainer)"
        if not hasattr(trainer, "beta"):
            return f"{ctx.trainer_name} has no beta"
        built_without_reference = getattr(trainer, "ref_model", ...) is None and trainer.beta == 0.0
        if built_without_reference and value != 0 and not hasattr(ctx.model, "peft_config"):
            return f"{ctx.trainer_name} started with beta=0 and so built no reference model; restart to enable beta"
        dividing = sorted(_loss_types(trainer, ctx.args) & _DIVIDES_BY_BETA)
        if value == 0 and dividing:
            return f"the {'/'.join(dividing)} loss divides by beta, so beta must be > 0 (a start with 0 would crash)"
        if value != 0 and _batch_in_use_lacks_reference(trainer):
            return (
                "the generation batch in use was made with beta=0, so it has no reference log-probs; "
                f"retry after the next generation (every {_generate_every(trainer)} micro-batches)"
            )
        if _is_trl(trainer, "RLOOTrainer") and _mid_generation(trainer):
            return (
                f"RLOO puts beta into the rewards when it scores a generation batch, and the one in use was "
                f"scored with beta={trainer.beta:g}; retry after the next generation "
                f"(every {_generate_every(trainer)} micro-batches)"
            )
        return None

    def apply(self, value: float, ctx: ApplyContext) -> None:
        ctx.trainer.beta = float(value)
        if hasattr(ctx.args, "beta"):
            ctx.args.beta = float(value)  # so a saved training_args.bin tells the truth


def _loss_types(trainer: Any, args: Any) -> set[str]:
    """The loss types a TRL trainer computes (DPO keeps a list in ``loss_types``, others one ``loss_type``)."""
    found = getattr(trainer, "loss_types", None) or getattr(trainer, "loss_type", None)
    found = found or getattr(args, "loss_type", None)
    if found is None:
        return set()
    if isinstance(found, (list, tuple, set, frozenset)):
        return {str(t) for t in found}
    return {str(getattr(found, "value", found))}


# ---- GRPO/RLOO generation batches -----------------------------------------------------------------


def _is_trl(trainer: Any, name: str) -> bool:
    """Whether ``trainer`` is (a subclass of) TRL's trainer of that name, without importing TRL."""
    return any(cls.__name__ == name for cls in type(trainer).__mro__)


def _mid_generation(trainer: Any) -> bool:
    """Whether GRPO's or RLOO's next micro-step reuses a buffered generation batch (docs/internals.md, Trainer)."""
    buffered = getattr(trainer, "_buffered_inputs", None)
    return bool(buffered) and getattr(trainer, "_step", 0) % _generate_every(trainer) != 0


def _batch_in_use_lacks_reference(trainer: Any) -> bool:
    """Whether GRPO's next micro-step reuses a batch generated while beta was 0 (docs/internals.md, Trainer)."""
    if not _is_trl(trainer, "GRPOTrainer") or not _mid_generation(trainer):
        return False  # nothing buffered, or the next micro-step makes a new batch with the new beta
    return any("ref_per_token_logps" not in batch for batch in trainer._buffered_inputs)


def _generate_every(trainer: Any) -> int:
    """Micro-steps between two of GRPO's (or RLOO's) generation batches."""
    return int(trainer.args.steps_per_generation) * int(getattr(trainer, "num_iterations", 1))
