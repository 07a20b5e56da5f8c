"""The ``old`` of a change is the value before the request: for ``learning_rate``, always the peak."""

from __future__ import annotations

from pathlib import Path

from hooks_helpers import PushAt, QueueSource, plain_trainer, request, training_args

from liveparams.trainer_hooks import RuntimeParameterCallback

PEAK, STEPS = 1e-3, 12


def test_the_old_learning_rate_is_the_peak_also_when_the_request_freezes_the_rate(
    tiny_dir: str, tmp_path: Path, source: QueueSource
) -> None:
    """Mid-decay the scheduled rate is below the peak; the same request's ``learning_rate_mode`` must not change what
    ``old`` means (it froze the rate first, and ``old`` read the current rate instead of the peak)."""
    rescaled = request(learning_rate=5e-4)
    frozen = request(learning_rate=2e-4, learning_rate_mode="constant")
    pushes = PushAt(source, {4: [rescaled], 8: [frozen]})
    callback = RuntimeParameterCallback(source)
    args = training_args(tmp_path / "out", max_steps=STEPS, learning_rate=PEAK, lr_scheduler_type="linear")
    trainer = plain_trainer(tiny_dir, args, [pushes, callback])
    callback.bind(trainer)
    trainer.train()

    assert source.outcome(rescaled.id).changes["learning_rate"].old == PEAK
    changes = source.outcome(frozen.id).changes
    assert changes["learning_rate"].old == 5e-4  # the peak in force, not the decayed rate at step 8
    assert changes["learning_rate_mode"].old == "rescale"
