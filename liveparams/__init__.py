"""liveparams: change the hyperparameters of a running Hugging Face / TRL training from a Supabase-backed UI.

The one-line embedding::

    from liveparams import RuntimeParameterCallback

    trainer.add_callback(RuntimeParameterCallback.from_env(trainer))

A script that calls ``train()`` itself gets restart-only settings too with
``liveparams.train(trainer)`` in place of ``trainer.train()``.
A loop without Trainer (plain PyTorch, accelerate) uses ``LoopUpdates`` (docs/custom-loops.md).

The pieces, each importable on its own:

- ``liveparams.contract``: the parameter table and the messages both halves share;
- ``liveparams.agent``: the network side (Supabase Realtime and REST, a daemon thread);
  it never imports torch or transformers;
- ``liveparams.trainer_hooks``: the training side (a ``transformers.TrainerCallback``);
  it never talks to the network itself;
- ``liveparams.cli``: the ``liveparams`` command.

Every error liveparams raises on purpose derives from ``liveparams.LiveparamsError``; the tree
is drawn in ``liveparams/_exceptions.py``.

The local development stack is a separate distribution (``liveparams-stack``,
import name ``liveparams_stack``) that a training environment never needs.
"""

from __future__ import annotations

import typing

from liveparams import _lazy
from liveparams._exceptions import LiveparamsError

if typing.TYPE_CHECKING:
    from liveparams.trainer_hooks import LoopUpdates, RuntimeParameterCallback, train

# Imported on first use: the callback pulls in transformers and torch, which ``liveparams.agent``
# and ``liveparams.contract`` (both under this package) must not pay for.
_LAZY = {
    "LoopUpdates": "liveparams.trainer_hooks",
    "RuntimeParameterCallback": "liveparams.trainer_hooks",
    "train": "liveparams.trainer_hooks",
}

__getattr__, __dir__ = _lazy.lazy_exports(__name__, globals(), _LAZY)


__all__ = ["LiveparamsError", "LoopUpdates", "RuntimeParameterCallback", "train"]
