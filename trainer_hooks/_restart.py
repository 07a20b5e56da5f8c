"""In-process restart: a restart-only setting applied by saving, leaving the loop and calling ``train()`` again.

``per_device_train_batch_size`` and ``gradient_accumulation_steps`` shape the
DataLoader and the loop's micro-batch groups, which ``train()`` builds once. So
the applier only asks for a restart: it records the new settings and where the
data stands (:class:`PendingRestart`, on the trainer), and sets ``should_save``
and ``should_training_stop``. Whoever calls ``train()`` (``liveparams run``'s
wrapper, or :func:`liveparams.train`) then finds the request, sets the new
arguments and calls ``train(resume_from_checkpoint=<that checkpoint>)`` in the
same process; the callback keeps its update source open across it. GRPO/RLOO's
``max_completion_length`` and ``num_generations`` take the same road, with what TRL derived
from them at init set again before ``train()`` (:func:`_as_trl_builds_it`); a new group size
goes on from the same prompts (:func:`generations_reason`).
When the first step after the re-entry begins, the callback says how long it all took.

Why the data position is ours, not transformers': its resume skips
``global_step % steps_per_epoch × gradient_accumulation_steps`` batches, counted
with the *new* settings, so after a change it repeats or skips samples. The
restart counts the samples the epoch actually consumed and has Trainer skip
exactly those (:func:`resumed_at`). Trainer groups an epoch's micro-batches from
the epoch's start, so the restart is only possible where the samples consumed are
a whole number of the new steps (:func:`alignment_reason`); elsewhere it is refused.

``command: rewind`` takes the same road back into ``train()``, from an earlier
checkpoint: every checkpoint's record holds its data position and the settings it
is counted in (:func:`data_record`), and the callback replays the requests applied
after it (``RuntimeParameterCallback._replays_after``), as a resume from it would.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from liveparams.contract import UpdateRequest
from liveparams.trainer_hooks import _distributed
from liveparams.trainer_hooks._context import ApplyContext

__all__ = [
    "ALL_RESTART_SETTINGS",
    "FIELD",
    "GENERATION_SETTINGS",
    "HOW_TO_DRIVE",
    "RECORD_KEY",
    "RESTART_SETTINGS",
    "Checkpoint",
    "DataPosition",
    "PendingRestart",
    "alignment_reason",
    "as_replay",
    "cancel",
    "choose_checkpoint",
    "data_record",
    "find_checkpoint",
    "generations_reason",
    "is_driven",
    "pending",
    "position_of",
    "refusal",
    "request_restart",
    "request_rewind",
    "resumed_at",
    "rewind_refusal",
    "train_with_restarts",
]

logger = logging.getLogger(__name__)

# The settings an in-process restart applies that shape the data position (appliers in ``_appliers.restart``).
RESTART_SETTINGS = ("per_device_train_batch_size", "gradient_accumulation_steps")
# GRPO/RLOO's, which TRL copies onto the trainer at init (appliers in ``_appliers.restart``).
GENERATION_SETTINGS = ("max_completion_length", "num_generations")
# Every setting an in-process restart applies.
ALL_RESTART_SETTINGS = RESTART_SETTINGS + GENERATION_SETTINGS

# The trainer attribute that holds the pending restart; its presence says a driver calls train().
FIELD = "_liveparams_restart"

HOW_TO_DRIVE = (
    "an in-process restart needs whoever calls train(): run the script under `liveparams run`, "
    "or call `liveparams.train(trainer)` instead of `trainer.train()`"
)


@dataclass(frozen=True)
class DataPosition:
    """Where the training data stands: ``samples`` of epoch ``epoch`` consumed (per process)."""

    epoch: int
    samples: int


@dataclass(frozen=True)
class PendingRestart:
    """A restart from the checkpoint of ``step``: the settings to set, and the data position to go on from.

    ``checkpoint`` is None for a restart from the checkpoint this step saves; a rewind names an
    earlier one. Frozen, and replaced rather than changed, so that a request rolled back
    (``_snapshot``) puts the previous one back.
    """

    step: int
    position: DataPosition
    settings: Mapping[str, int] = field(default_factory=dict)
    checkpoint: str | None = None
    from_step: int | None = None  # a rewind's: the step it left (a restart leaves the step it goes on from)
    asked_at: float = field(default_factory=time.monotonic, compare=False)

    @property
    def kind(self) -> str:
        """``"rewind"`` (back to an earlier checkpoint) or ``"restart"`` (from the checkpoint this step saves)."""
        return "restart" if self.checkpoint is None else "rewind"

    def elapsed(self) -> float:
        """Seconds since the request was applied: the checkpoint's save, leaving the loop, the reload, the data skip."""
        return time.monotonic() - self.asked_at

    def path(self, output_dir: str) -> str:
        return self.checkpoint or os.path.join(output_dir, f"checkpoint-{self.step}")


def is_driven(trainer: Any) -> bool:
    """Whether a driver (``liveparams run``, :func:`liveparams.train`) calls this trainer's ``train()``."""
    return trainer is not None and hasattr(trainer, FIELD)


def pending(trainer: Any) -> PendingRestart | None:
    return getattr(trainer, FIELD, None) if trainer is not None else None


def cancel(trainer: Any) -> None:
    """No restart after all (a ``stop`` was applied too): the driver returns."""
    if is_driven(trainer):
        setattr(trainer, FIELD, None)


def request_restart(name: str, value: int, ctx: ApplyContext) -> None:
    """Ask the driver for a restart with ``name=value`` (added to one asked at this step), and leave the loop."""
    before = pending(ctx.trainer)
    settings = {**(before.settings if before else {}), name: value}
    position = position_of(ctx)
    if "num_generations" in settings:  # the same prompts, in rows of the new group size
        old = int(ctx.args.num_generations)
        position = replace(position, samples=position.samples * settings["num_generations"] // old)
    setattr(ctx.trainer, FIELD, PendingRestart(int(ctx.state.global_step), position, settings))
    ctx.control.should_save = True  # the checkpoint the run goes on from
    ctx.control.should_training_stop = True


def position_of(ctx: ApplyContext) -> DataPosition:
    """The samples the current epoch consumed, from ``state.epoch`` (epoch + batches done / batches per epoch)."""
    batches_per_epoch = len(ctx.train_dataloader)
    epoch = math.floor(ctx.state.epoch or 0)
    batches = round(((ctx.state.epoch or 0) - epoch) * batches_per_epoch)
    return DataPosition(epoch, batches * int(ctx.args.train_batch_size))


def data_record(trainer: Any) -> dict[str, Any]:
    """What every checkpoint's record keeps of the data: the position, and the settings it is counted in.

    Empty where it cannot be known (no trainer reference, no dataloader yet, a dataset without length).
    """
    dataloader = getattr(getattr(trainer, "callback_handler", None), "train_dataloader", None)
    if dataloader is None or not _has_length(dataloader) or trainer.state.epoch is None:
        return {}
    ctx = ApplyContext(args=trainer.args, state=trainer.state, control=None, train_dataloader=dataloader)
    settings = {name: int(getattr(trainer.args, name)) for name in RESTART_SETTINGS}
    settings |= {n: int(v) for n in GENERATION_SETTINGS if (v := getattr(trainer.args, n, None)) is not None}
    return {**asdict(position_of(ctx)), **settings}


def _new(name: str, ctx: ApplyContext, params: Mapping[str, Any]) -> int:
    """``name`` after the restart: this request's value, one asked for earlier at this step, or today's."""
    if name in params:
        return int(params[name])
    earlier = pending(ctx.trainer)
    if earlier is not None and name in earlier.settings:
        return earlier.settings[name]
    return int(getattr(ctx.args, name))


def refusal(ctx: ApplyContext, params: Mapping[str, Any]) -> str | None:
    """Why this run cannot restart in-process now with ``params`` (a sentence for the user), or None."""
    if params.get("command") == "rewind":
        return None  # the rewind's own check judges its settings, at the checkpoint's position
    return _run_refusal(ctx) or _alignment_now(ctx, params)


def _alignment_now(ctx: ApplyContext, params: Mapping[str, Any]) -> str | None:
    if ctx.control.should_training_stop:
        return f"training ends at this step ({ctx.state.global_step}): its max_steps is reached or a stop was requested"
    batch_size, accumulation = (_new(name, ctx, params) for name in RESTART_SETTINGS)
    return alignment_reason(position_of(ctx), batch_size, accumulation)


def _run_refusal(ctx: ApplyContext) -> str | None:
    """Why this run cannot go back into ``train()`` in-process at all, or None."""
    trainer, args = ctx.trainer, ctx.args
    if not is_driven(trainer):
        return HOW_TO_DRIVE
    if _distributed.is_multi_process():
        return (
            "an in-process restart under several processes is not supported yet (every rank would have to "
            "restart at the same step); stop the run and resume it from a checkpoint with the new value"
        )
    if getattr(trainer, "is_deepspeed_enabled", False):
        return "DeepSpeed fixes the batch size and accumulation in its config; restart the run with a new config"
    if int(args.max_steps) <= 0:
        return (
            "the run is planned in epochs, and its schedule's horizon would change with the steps per epoch; "
            "set max_steps to restart in-process"
        )
    if getattr(args, "ignore_data_skip", False):
        return "ignore_data_skip is set: the run would not go on from the samples it consumed"
    if getattr(args, "save_only_model", False):
        # Trainer then saves no optimizer, scheduler or RNG state, and a resume skips them without a word.
        return (
            "save_only_model is set, so a checkpoint holds no optimizer or learning-rate scheduler state: the run "
            "would go on with a fresh optimizer and its schedule from the start; unset save_only_model to change "
            "this in-process"
        )
    if ctx.train_dataloader is None or not _has_length(ctx.train_dataloader):
        return "the dataset has no length (streamed), so its position cannot be restored exactly"
    return None


def alignment_reason(position: DataPosition, batch_size: int, accumulation: int) -> str | None:
    """Why the new steps would not line up with the epoch's: Trainer groups micro-batches from the epoch's start."""
    per_step = batch_size * accumulation
    if position.samples % per_step == 0:
        return None
    return (
        f"the run is at sample {position.samples} of epoch {position.epoch}, not a whole number of the new steps "
        f"({batch_size} × {accumulation} = {per_step} samples each), so the new steps would not line up with the "
        f"epoch's; ask again at a step where the samples consumed in the epoch are a multiple of {per_step}"
    )


def generations_reason(ctx: ApplyContext, new: int, params: Mapping[str, Any]) -> str | None:
    """Why GRPO/RLOO cannot go on with ``num_generations=new`` from the prompts consumed now, or None.

    Each generation batch takes ``generation_batch_size / num_generations`` prompts of the shuffled
    epoch, each ``num_generations`` times (TRL's ``RepeatSampler``), so the prompts consumed are a
    whole number of the old batches; the run goes on where they are a whole number of the new ones.
    """
    trainer, args = ctx.trainer, ctx.args
    if params.get("command") == "rewind":
        return "send num_generations after the rewind, once the run is back at its checkpoint"
    if any(name in params for name in (*RESTART_SETTINGS, "max_completion_length")):
        return "send num_generations alone: the prompts consumed are counted in its groups"
    if getattr(trainer, "environment_factories", None) is not None:
        return "an environment owns the data (its placeholder prompts are sized by num_generations)"
    if int(getattr(trainer, "num_iterations", 1)) != 1:
        return "with num_iterations > 1 a generation batch is trained on several times; not supported yet"
    if new < 2:
        return f"{ctx.trainer_name} needs at least 2 generations per prompt to compute the advantages"
    generation_batch = int(args.generation_batch_size)
    if generation_batch % new:
        return f"generation_batch_size ({generation_batch}) must be divisible by num_generations ({new})"
    evaluates = getattr(args, "eval_strategy", "no") != "no" and not args.num_generations_eval
    if evaluates and int(args.per_device_eval_batch_size) % new:
        return f"per_device_eval_batch_size ({args.per_device_eval_batch_size}) must be divisible by {new}"
    if ctx.train_dataloader is None or not _has_length(ctx.train_dataloader):
        return None  # the run's own refusal says why
    batches = position_of(ctx).samples // int(args.train_batch_size)
    per_generation = int(args.steps_per_generation)
    if batches % per_generation:
        return f"step {ctx.state.global_step} is in the middle of a generation batch; ask again at its end"
    prompts = batches // per_generation * (generation_batch // int(args.num_generations))
    new_prompts = generation_batch // new
    if prompts % new_prompts:
        return (
            f"the run has consumed {prompts} prompts of epoch {position_of(ctx).epoch}, not a whole number of the new "
            f"generation batches ({new_prompts} prompts each); ask again a step or two later"
        )
    return None


def _has_length(dataloader: Any) -> bool:
    try:
        len(dataloader)
    except TypeError:
        return False
    return True


# ---- rewind ----------------------------------------------------------------------------------------

# The callback's key in ``trainer_state.json``'s ``stateful_callbacks`` (its class name).
RECORD_KEY = "RuntimeParameterCallback"


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint a rewind may go back to: its step, and what its record says of the data."""

    path: str
    step: int
    position: DataPosition
    settings: Mapping[str, int]


def find_checkpoint(step: int | None, ctx: ApplyContext) -> Checkpoint | str:
    """The checkpoint of ``step`` (None: the latest) in the run's ``output_dir``, or why there is none to use."""
    from transformers.trainer_utils import get_last_checkpoint

    folder = str(ctx.args.output_dir)
    latest = get_last_checkpoint(folder) if step is None and os.path.isdir(folder) else None
    path: str = os.path.join(folder, f"checkpoint-{step}") if step is not None else str(latest or "")
    state_file = os.path.join(path, "trainer_state.json")
    if not path or not os.path.isfile(state_file):
        return f"there is no checkpoint at step {step} in {folder}" if step else f"there is no checkpoint in {folder}"
    with open(state_file, encoding="utf-8") as f:
        state = json.load(f)
    saved = int(state.get("global_step", 0))
    if saved > int(ctx.state.global_step):
        return f"{path} is at step {saved}, ahead of the run (step {ctx.state.global_step})"
    record = state.get("stateful_callbacks", {}).get(RECORD_KEY, {}).get("attributes", {}).get("data")
    if not record:
        return f"{path} has no record of its data position (it was saved without this version of the callback)"
    settings = {name: int(record[name]) for name in ALL_RESTART_SETTINGS if name in record}
    return Checkpoint(path, saved, DataPosition(int(record["epoch"]), int(record["samples"])), settings)


def as_replay(request: UpdateRequest) -> UpdateRequest:
    """``request`` as a rewind replays it: a rewind's own settings without the rewind, set after the reload.

    (Its restart settings are set by the driver before ``train()``; only the others are left.)
    """
    if request.params.get("command") != "rewind":
        return request
    rewind_keys = ("command", "checkpoint", *ALL_RESTART_SETTINGS)
    return replace(request, params={k: v for k, v in request.params.items() if k not in rewind_keys})


def rewind_refusal(ctx: ApplyContext, params: Mapping[str, Any]) -> str | None:
    """Why ``command: rewind`` with ``params`` cannot be applied now, or None."""
    reason = _run_refusal(ctx)
    if reason is not None:
        return reason
    target = find_checkpoint(params.get("checkpoint"), ctx)
    if isinstance(target, str):
        return target
    changed = {n: v for n, v in target.settings.items() if int(getattr(ctx.args, n)) != v}
    if changed:
        return (
            f"the run was restarted with new settings after {target.path} (it was saved with {changed}); "
            "rewinding past an in-process restart is not supported yet"
        )
    new = {name: int(params.get(name, target.settings[name])) for name in RESTART_SETTINGS}
    return alignment_reason(target.position, *new.values())


def choose_checkpoint(step: int | None, ctx: ApplyContext) -> None:
    """Set the rewind's target (None: the latest checkpoint), keeping settings asked for in the same request."""
    target = find_checkpoint(step, ctx)
    if isinstance(target, str):
        raise ValueError(target)  # the check refused it already; reaching here is a bug
    before = pending(ctx.trainer)
    settings = {**target.settings, **(before.settings if before else {})}
    left = int(ctx.state.global_step)
    setattr(ctx.trainer, FIELD, PendingRestart(target.step, target.position, settings, target.path, left))


def request_rewind(ctx: ApplyContext) -> None:
    """Leave the loop for ``train()`` again from the chosen checkpoint (the latest if none was chosen)."""
    chosen = pending(ctx.trainer)
    if chosen is None or chosen.checkpoint is None:
        choose_checkpoint(None, ctx)
    ctx.control.should_training_stop = True


# ---- the driver ----------------------------------------------------------------------------------


def train_with_restarts(trainer: Any, train: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``train(*args, **kwargs)``, then, while the run asked for a restart, ``train()`` again from its checkpoint.

    Nested calls (``liveparams.train`` under ``liveparams run``) leave the restarts to the outer one.
    """
    if is_driven(trainer):
        return train(*args, **kwargs)
    setattr(trainer, FIELD, None)
    try:
        result = train(*args, **kwargs)
        while (restart := pending(trainer)) is not None:
            setattr(trainer, FIELD, None)
            result = _restart(trainer, train, restart, args, kwargs)
        return result
    finally:
        delattr(trainer, FIELD)


def _restart(trainer: Any, train: Callable[..., Any], restart: PendingRestart, args: tuple, kwargs: dict) -> Any:
    for name, value in restart.settings.items():
        setattr(trainer.args, name, value)
    trainer._train_batch_size = trainer.args.train_batch_size  # what get_train_dataloader batches by
    _as_trl_builds_it(trainer)
    checkpoint = restart.path(trainer.args.output_dir)
    logger.info("Restarting in-process from %s with %s", checkpoint, dict(restart.settings))
    call_args = args[1:] if args else ()
    with resumed_at(trainer, restart.position):
        return train(checkpoint, *call_args, **{k: v for k, v in kwargs.items() if k != "resume_from_checkpoint"})


def _as_trl_builds_it(trainer: Any) -> None:
    """What GRPO/RLOO derive from the settings at init, set as a trainer built with the new args would have it.

    ``num_generations`` (and ``num_generations_eval`` when it follows it) is read from the trainer
    by the sampler, which ``train()`` builds again, and by the advantages.
    ``max_completion_length`` is copied onto the trainer (the loss of ``dr_grpo`` divides by it)
    and into the generation's ``max_new_tokens`` (unless ``generation_kwargs`` set that itself, as
    at init). The generation buffer and its micro-step counter start empty, as in a new process, so
    the first step after the restart generates, as a resume does. Other trainers have none of these.
    """
    if not hasattr(trainer, "_buffered_inputs"):
        return
    trainer._step, trainer._buffered_inputs = 0, None
    if hasattr(trainer, "num_generations"):
        trainer.num_generations = trainer.args.num_generations
        trainer.num_generations_eval = trainer.args.num_generations_eval or trainer.num_generations
    length = getattr(trainer.args, "max_completion_length", None)
    if length is None or not hasattr(trainer, "max_completion_length"):
        return
    trainer.max_completion_length = length
    new_tokens = (trainer.args.generation_kwargs or {}).get("max_new_tokens", length)
    if getattr(trainer, "generation_config", None) is not None:
        trainer.generation_config.max_new_tokens = new_tokens
    if isinstance(getattr(trainer, "generation_kwargs", None), dict):
        trainer.generation_kwargs["max_new_tokens"] = new_tokens


@contextlib.contextmanager
def resumed_at(trainer: Any, position: DataPosition) -> Iterator[None]:
    """For one ``train(resume_from_checkpoint=…)``: go on from ``position``, not from transformers' arithmetic.

    Two methods of this trainer instance are wrapped for the call: the resume point
    (epoch, micro-batches to skip in it) is the position in the new batch size, and the
    epochs the loop plans reach ``max_steps`` from there (Trainer counts them from step 0
    with the new steps per epoch, too few when earlier steps took more samples).
    """
    init_state, initial_values = trainer._init_training_state, trainer.set_initial_training_values

    def initial_training_values(*a: Any, **k: Any) -> tuple:
        values = list(initial_values(*a, **k))
        epochs, per_epoch, max_steps = values[0], values[1], values[6]
        values[0] = max(epochs, position.epoch + 1 + math.ceil(max_steps / per_epoch))
        return tuple(values)

    def training_state(*a: Any, **k: Any) -> tuple[int, int]:
        init_state(*a, **k)
        return position.epoch, position.samples // trainer._train_batch_size

    trainer.set_initial_training_values, trainer._init_training_state = initial_training_values, training_state
    try:
        yield
    finally:
        del trainer.set_initial_training_values, trainer._init_training_state
