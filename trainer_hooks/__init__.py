"""Apply live parameter updates to a running Hugging Face / TRL Trainer.

One line embeds it in a training script::

    trainer.add_callback(RuntimeParameterCallback.from_env(trainer))

The callback drains an :class:`UpdateSource` (``agent.UpdateAgent`` in
production) at step boundaries and changes the run through one
:class:`ParameterApplier` per parameter. It knows nothing of Supabase.
"""

import logging

from trainer_hooks._appliers import ParameterApplier
from trainer_hooks._callback import RuntimeParameterCallback
from trainer_hooks._context import ApplyContext
from trainer_hooks._registry import applier_names, get_applier, register_applier
from trainer_hooks._source import UpdateSource

__all__ = [
    "ApplyContext",
    "ParameterApplier",
    "RuntimeParameterCallback",
    "UpdateSource",
    "applier_names",
    "get_applier",
    "register_applier",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
