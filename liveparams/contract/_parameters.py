"""The parameters a request may carry, and how each is validated.

This table is the single description of what can change live. The agent
validates against it before anything reaches the training thread, the trainer
hooks register one applier per entry (a test checks both ways), the docs'
parameter table is checked against it, and the database RPC's
``liveparams_parameter_spec()`` is checked against it too. It is plain data:
``agent`` must not import torch or transformers.
"""

from __future__ import annotations

import math
import reprlib
from dataclasses import dataclass
from enum import Enum

from liveparams._exceptions import LiveparamsError

ParamValue = int | float | str


class ParamType(str, Enum):
    NUMBER = "number"
    INTEGER = "integer"
    STRING = "string"


@dataclass(frozen=True)
class ParameterSpec:
    """How one parameter is validated and what it means.

    Args:
        name (`str`): the key in a request, e.g. ``"learning_rate"``.
        type (`ParamType`): JSON type accepted; integers are also accepted as numbers.
        help (`str`): one sentence for the docs and ``--help``.
        min (`float`, *optional*): lower bound, inclusive unless ``min_exclusive``.
        max (`float`, *optional*): upper bound, inclusive.
        min_exclusive (`bool`, defaults to `False`): whether ``min`` itself is refused.
        choices (`tuple[str, ...]`, *optional*): allowed values of a string parameter.
        restart_only (`bool`, defaults to `False`): cannot change in a running
            Trainer; requests for it are rejected with a reason saying so.
    """

    name: str
    type: ParamType
    help: str
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    choices: tuple[str, ...] = ()
    restart_only: bool = False


_BIG = 100_000_000
# torch refuses a beta of 1; the database spec has inclusive maxima only, so the bound is just below it.
_BETA_MAX = 0.999999

PARAMETERS: dict[str, ParameterSpec] = {
    spec.name: spec
    for spec in (
        ParameterSpec(
            "learning_rate",
            ParamType.NUMBER,
            "New peak learning rate; the schedule keeps its shape (see learning_rate_mode).",
            min=0,
            max=1,
            min_exclusive=True,
        ),
        ParameterSpec(
            "learning_rate_mode",
            ParamType.STRING,
            "How learning_rate is applied: 'rescale' (default, keep the schedule) or 'constant' (fixed from now on).",
            choices=("rescale", "constant"),
        ),
        ParameterSpec(
            "weight_decay", ParamType.NUMBER, "AdamW weight decay of the decayed parameter group.", min=0, max=10
        ),
        ParameterSpec(
            "adam_beta1",
            ParamType.NUMBER,
            "Adam/AdamW beta1 (first-moment decay) of every parameter group.",
            min=0,
            max=_BETA_MAX,
        ),
        ParameterSpec(
            "adam_beta2",
            ParamType.NUMBER,
            "Adam/AdamW beta2 (second-moment decay) of every parameter group.",
            min=0,
            max=_BETA_MAX,
        ),
        ParameterSpec(
            "adam_epsilon",
            ParamType.NUMBER,
            "Adam/AdamW epsilon of every parameter group.",
            min=0,
            max=1,
            min_exclusive=True,
        ),
        ParameterSpec(
            "max_grad_norm", ParamType.NUMBER, "Gradient clipping norm; 0 disables clipping.", min=0, max=1_000_000
        ),
        ParameterSpec(
            "warmup_steps", ParamType.INTEGER, "Warmup length of the schedule, in optimizer steps.", min=0, max=_BIG
        ),
        ParameterSpec(
            "max_steps",
            ParamType.INTEGER,
            "Total optimizer steps; the schedule's horizon moves with it.",
            min=1,
            max=_BIG,
        ),
        ParameterSpec("logging_steps", ParamType.INTEGER, "Log every N steps.", min=1, max=_BIG),
        ParameterSpec(
            "eval_steps", ParamType.INTEGER, "Evaluate every N steps (when evaluation is on).", min=1, max=_BIG
        ),
        ParameterSpec(
            "save_steps", ParamType.INTEGER, "Save a checkpoint every N steps (when saving by steps).", min=1, max=_BIG
        ),
        ParameterSpec(
            "beta", ParamType.NUMBER, "TRL preference/RL strength (DPO, ORPO, KTO, GRPO, RLOO).", min=0, max=1000
        ),
        ParameterSpec(
            "command",
            ParamType.STRING,
            "A one-off action: save a checkpoint now, evaluate now, stop gracefully after a checkpoint, "
            "or pause (hold at the step boundary, model kept in memory) and resume, or rewind to a checkpoint.",
            choices=("save_checkpoint", "evaluate", "stop", "pause", "resume", "rewind"),
        ),
        ParameterSpec(
            "checkpoint",
            ParamType.INTEGER,
            "With command 'rewind': the step of the checkpoint to go back to (default: the latest).",
            min=1,
            max=_BIG,
        ),
        ParameterSpec(
            "per_device_train_batch_size",
            ParamType.INTEGER,
            "Micro-batch size per device; applied by an in-process restart from the samples consumed.",
            min=1,
            max=_BIG,
        ),
        ParameterSpec(
            "gradient_accumulation_steps",
            ParamType.INTEGER,
            "Micro-batches per optimizer step; applied by an in-process restart from the samples consumed.",
            min=1,
            max=_BIG,
        ),
        ParameterSpec(
            "num_generations",
            ParamType.INTEGER,
            "GRPO/RLOO's completions per prompt; applied by an in-process restart from the same prompts.",
            min=2,
            max=_BIG,
        ),
        ParameterSpec(
            "max_completion_length",
            ParamType.INTEGER,
            "GRPO/RLOO's longest completion, in tokens; applied by an in-process restart from the same prompts.",
            min=1,
            max=_BIG,
        ),
    )
}

# Keys the server stamps on every request; never parameters.
METADATA_KEYS = frozenset({"id", "requested_at", "requested_by"})


class InvalidParameter(LiveparamsError, ValueError):
    """Raised by :func:`validate_parameter` with a message meant for the user."""


def validate_parameter(name: str, value: object) -> ParamValue:
    """Return ``value`` normalised for ``name``, or raise :class:`InvalidParameter`.

    Why so strict: a value that reaches the optimizer is trusted. JSON booleans
    are not numbers here (``True`` would silently become ``1``), NaN and
    infinities are refused, and integers must be whole.
    """
    spec = PARAMETERS.get(name)
    if spec is None:
        known = ", ".join(sorted(PARAMETERS))
        raise InvalidParameter(f"unknown parameter {name!r}; known parameters: {known}")
    if spec.restart_only:
        raise InvalidParameter(f"{name!r} cannot change while training runs (it needs a restart): {spec.help}")
    if spec.type is ParamType.STRING:
        if not isinstance(value, str) or value not in spec.choices:
            raise InvalidParameter(f"{name!r} must be one of {list(spec.choices)}, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidParameter(f"{name!r} must be a number, got {type(value).__name__} {value!r}")
    if isinstance(value, float) and not math.isfinite(value):  # ints are exact, however long: the bounds judge them
        raise InvalidParameter(f"{name!r} must be finite, got {value!r}")
    if spec.type is ParamType.INTEGER:
        if isinstance(value, float) and not value.is_integer():
            raise InvalidParameter(f"{name!r} must be a whole number, got {value!r}")
        value = int(value)
    low_ok = spec.min is None or (value > spec.min if spec.min_exclusive else value >= spec.min)
    high_ok = spec.max is None or value <= spec.max
    if not (low_ok and high_ok):
        low = "" if spec.min is None else f"{'>' if spec.min_exclusive else '>='} {spec.min:g}"
        high = "" if spec.max is None else f"<= {spec.max:g}"
        shown = reprlib.repr(value)  # `1e400` stored by PostgreSQL reads back as a 401-digit int
        raise InvalidParameter(f"{name!r} = {shown} is out of range ({' and '.join(p for p in (low, high) if p)})")
    return value
