"""Apply live parameter updates to a running Hugging Face / TRL Trainer.

One line embeds it in a training script::

    trainer.add_callback(RuntimeParameterCallback.from_env(trainer))

The callback drains an :class:`UpdateSource` (``liveparams.agent.UpdateAgent`` in
production) at step boundaries and changes the run through one
:class:`ParameterApplier` per parameter. It knows nothing of Supabase. A loop without
Trainer drives the same callback through :class:`LoopUpdates`.
"""

import logging

from liveparams.trainer_hooks._appliers import ParameterApplier
from liveparams.trainer_hooks._attach import train
from liveparams.trainer_hooks._callback import RuntimeParameterCallback
from liveparams.trainer_hooks._context import ApplyContext
from liveparams.trainer_hooks._loop import Commands, LoopArgs, LoopUpdates
from liveparams.trainer_hooks._registry import applier_names, get_applier, register_applier

__all__ = [
    "ApplyContext",
    "Commands",
    "LoopArgs",
    "LoopUpdates",
    "ParameterApplier",
    "RuntimeParameterCallback",
    "applier_names",
    "get_applier",
    "register_applier",
    "train",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
