"""``liveparams run``: give every ``Trainer`` the callback when it starts training, exactly once.

The bootstrap (``liveparams/run-bootstrap/sitecustomize.py``) calls :func:`patch_trainer`
when ``transformers.trainer`` is imported. ``train()`` is wrapped rather than
``__init__``: integrations build trainers they never train, and a callback is only
worth its agent when a run starts. Every rank wraps it, because the ranks exchange
requests (``_distributed``), and no trainer gets a second callback: not when the
script added one itself, nor when ``train()`` is called again (hyperparameter
search, a second stage), which finds the one added the first time.

The wrapper also drives in-process restarts (``_restart``): when the run leaves
the loop to apply a restart-only setting, it calls ``train()`` again from the
checkpoint just saved. :func:`train` does the same for a script that calls it
instead of ``trainer.train()``, without ``liveparams run``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from liveparams.trainer_hooks._restart import train_with_restarts

__all__ = ["attach", "patch_trainer", "train"]

logger = logging.getLogger(__name__)

_WRAPPED = "__liveparams_run__"


def attach(trainer: Any) -> None:
    """Add ``RuntimeParameterCallback.from_env(trainer)`` unless the trainer has one; never raises."""
    try:
        from liveparams.trainer_hooks._callback import RuntimeParameterCallback

        if not any(isinstance(c, RuntimeParameterCallback) for c in trainer.callback_handler.callbacks):
            trainer.add_callback(RuntimeParameterCallback.from_env(trainer))
    except Exception:
        logger.exception("liveparams run: the callback could not be added; training runs without live updates")


def patch_trainer(trainer_class: type) -> None:
    """Wrap ``trainer_class.train`` so that each call first :func:`attach` es; idempotent."""
    train: Callable[..., Any] = trainer_class.train  # type: ignore[attr-defined]
    if getattr(train, _WRAPPED, False):
        return

    @functools.wraps(train)
    def train_with_callback(self: Any, *args: Any, **kwargs: Any) -> Any:
        attach(self)
        return train_with_restarts(self, functools.partial(train, self), *args, **kwargs)

    setattr(train_with_callback, _WRAPPED, True)
    trainer_class.train = train_with_callback  # type: ignore[attr-defined]


def train(trainer: Any, *args: Any, **kwargs: Any) -> Any:
    """``trainer.train(*args, **kwargs)`` with live updates, restart-only settings included.

    The one call for a script that calls ``train()`` itself and is not run under
    ``liveparams run``: it adds the callback (as :func:`attach`) and applies a change
    of ``per_device_train_batch_size`` or ``gradient_accumulation_steps`` by
    calling ``train()`` again from the checkpoint it saves (docs/parameters.md).
    Returns the last ``train()``'s ``TrainOutput``.

    Example:

    ```python
    import liveparams

    liveparams.train(trainer)  # instead of trainer.train()
    ```
    """
    attach(trainer)
    return train_with_restarts(trainer, trainer.train, *args, **kwargs)
