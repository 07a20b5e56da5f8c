"""Parameter name → applier: the one table of what the callback can change.

Insertion order is the order in which the parameters of one request are
applied, and in which the values in force are set again after a resume:
``learning_rate_mode`` first (on resume, the constant rate must be frozen from
the restored ``group['lr']`` before a schedule keyword recomputes it), then the
schedule's shape (``max_steps``, ``warmup_steps``), then ``learning_rate`` (so
``{"learning_rate": x, "learning_rate_mode": "constant"}`` means "x from now
on"), then the other knobs, the settings applied by an in-process restart, and
commands last (so "stop" saves a checkpoint that already holds the request's changes).
Its keys equal the live (not restart-only) keys of
``liveparams.contract._parameters.PARAMETERS``; a test checks both ways.
"""

from __future__ import annotations

from liveparams.trainer_hooks._appliers import (
    AdamBeta1Applier,
    AdamBeta2Applier,
    AdamEpsilonApplier,
    BatchSizeApplier,
    BetaApplier,
    CheckpointApplier,
    CommandApplier,
    EvalStepsApplier,
    GenerationsApplier,
    GradientAccumulationApplier,
    LearningRateApplier,
    LearningRateModeApplier,
    LoggingStepsApplier,
    MaxCompletionLengthApplier,
    MaxGradNormApplier,
    MaxStepsApplier,
    ParameterApplier,
    SaveStepsApplier,
    WarmupStepsApplier,
    WeightDecayApplier,
)

__all__ = ["applier_names", "get_applier", "register_applier"]

_APPLIERS: dict[str, ParameterApplier] = {}


def register_applier(applier: ParameterApplier) -> None:
    """Add ``applier`` under ``applier.name``; a name registered twice raises ``ValueError``.

    A new parameter also needs its entry in ``liveparams.contract._parameters.PARAMETERS``: the agent
    (and the callback, defensively) refuse requests for names not in that table.
    """
    if applier.name in _APPLIERS:
        raise ValueError(
            f"an applier for {applier.name!r} is already registered ({type(_APPLIERS[applier.name]).__name__})"
        )
    _APPLIERS[applier.name] = applier


def get_applier(name: str) -> ParameterApplier:
    """The applier for ``name``; an unknown name raises ``ValueError`` listing the valid ones."""
    try:
        return _APPLIERS[name]
    except KeyError:
        raise ValueError(f"no applier for {name!r}; valid names: {', '.join(sorted(_APPLIERS))}") from None


def applier_names() -> list[str]:
    """Registered names, in apply order."""
    return list(_APPLIERS)


for _applier in (
    LearningRateModeApplier(),
    MaxStepsApplier(),
    WarmupStepsApplier(),
    LearningRateApplier(),
    WeightDecayApplier(),
    AdamBeta1Applier(),
    AdamBeta2Applier(),
    AdamEpsilonApplier(),
    MaxGradNormApplier(),
    BetaApplier(),
    LoggingStepsApplier(),
    EvalStepsApplier(),
    SaveStepsApplier(),
    BatchSizeApplier(),
    GradientAccumulationApplier(),
    MaxCompletionLengthApplier(),
    GenerationsApplier(),
    CheckpointApplier(),
    CommandApplier(),
):
    register_applier(_applier)
