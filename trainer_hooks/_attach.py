"""``liveparams run``: give every ``Trainer`` the callback when it starts training, exactly once.

The bootstrap (``liveparams/run-bootstrap/sitecustomize.py``) calls :func:`patch_trainer`
when ``transformers.trainer`` is imported. ``train()`` is wrapped rather than
``__init__``: integrations build trainers they never train, and a callback is only
worth its agent when a run starts. Every rank wraps it, because the ranks exchange
requests (``_distributed``), and no trainer gets a second callback: not when the
script added one itself, nor when ``train()`` is called again (hyperparameter
search, a second stage), which finds the one added the first time.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

__all__ = ["attach", "patch_trainer"]

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
        return train(self, *args, **kwargs)

    setattr(train_with_callback, _WRAPPED, True)
    trainer_class.train = train_with_callback  # type: ignore[attr-defined]
