"""One applier per live parameter, one small family per module: how to check, read and set it on a running training.

- ``base``: :class:`ParameterApplier`, the contract every applier keeps;
- ``schedule``: the learning-rate schedule (``learning_rate_mode``, ``max_steps``,
  ``warmup_steps``, ``learning_rate``);
- ``optimizer``: param-group fields (``weight_decay``, ``adam_beta1``/``adam_beta2``,
  ``adam_epsilon``) and ``max_grad_norm``;
- ``intervals``: ``logging_steps``, ``eval_steps``, ``save_steps``;
- ``trl``: ``beta``, which TRL keeps on the trainer, and the GRPO/RLOO batch internals it depends on;
- ``restart``: ``per_device_train_batch_size``, ``gradient_accumulation_steps`` and GRPO/RLOO's
  ``max_completion_length`` and ``num_generations``, applied by an in-process restart, and ``checkpoint`` (which
  ``command: rewind`` goes back to);
- ``commands``: ``command`` (evaluate, save a checkpoint, stop).

An applier sees the run only through its arguments, chiefly an
:class:`~liveparams.trainer_hooks.ApplyContext`: the optimizer, the scheduler,
an args-like object, the state and control objects, and optionally the model,
train dataloader and trainer. Trainer's own objects fill it in a callback; a
loop without a Trainer builds one from its own (``_context`` says how), and
each family's docstring lists what of it that family reads and sets. Which
applier serves which name, and in what order they run, is ``_registry``'s.

Every family logs under this package's name, ``liveparams.trainer_hooks._appliers``.
"""

from liveparams.trainer_hooks._appliers.base import ParameterApplier
from liveparams.trainer_hooks._appliers.commands import CommandApplier
from liveparams.trainer_hooks._appliers.intervals import (
    EvalStepsApplier,
    IntervalApplier,
    LoggingStepsApplier,
    SaveStepsApplier,
)
from liveparams.trainer_hooks._appliers.optimizer import (
    AdamBeta1Applier,
    AdamBeta2Applier,
    AdamBetaApplier,
    AdamEpsilonApplier,
    MaxGradNormApplier,
    WeightDecayApplier,
)
from liveparams.trainer_hooks._appliers.restart import (
    BatchSizeApplier,
    CheckpointApplier,
    GenerationsApplier,
    GradientAccumulationApplier,
    MaxCompletionLengthApplier,
)
from liveparams.trainer_hooks._appliers.schedule import (
    LearningRateApplier,
    LearningRateModeApplier,
    MaxStepsApplier,
    WarmupStepsApplier,
)
from liveparams.trainer_hooks._appliers.trl import BetaApplier

__all__ = [
    "AdamBeta1Applier",
    "AdamBeta2Applier",
    "AdamBetaApplier",
    "AdamEpsilonApplier",
    "BatchSizeApplier",
    "BetaApplier",
    "CheckpointApplier",
    "CommandApplier",
    "EvalStepsApplier",
    "GenerationsApplier",
    "GradientAccumulationApplier",
    "IntervalApplier",
    "LearningRateApplier",
    "LearningRateModeApplier",
    "LoggingStepsApplier",
    "MaxCompletionLengthApplier",
    "MaxGradNormApplier",
    "MaxStepsApplier",
    "ParameterApplier",
    "SaveStepsApplier",
    "WarmupStepsApplier",
    "WeightDecayApplier",
]
