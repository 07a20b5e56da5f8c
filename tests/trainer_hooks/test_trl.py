"""Every TRL trainer (plus Reward) takes live changes: LR through its schedule, beta on the trainer object."""

from __future__ import annotations

from pathlib import Path

import pytest
from hooks_helpers import LrRecorder, PushAt, QueueSource, logged_lr, request, schedule_factors
from trl_builders import BUILDERS, COMMON, WITH_BETA

from liveparams import RuntimeParameterCallback
from liveparams.contract import OutcomeStatus


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BUILDERS))
def test_trl_trainer_applies_learning_rate_and_beta_live(tiny_dir: str, tmp_path: Path, name: str) -> None:
    source, recorder = QueueSource(), LrRecorder()
    lr_change, beta_change = request(learning_rate=2e-3), request(beta=0.5)
    callback = RuntimeParameterCallback(source)
    trainer = BUILDERS[name](tiny_dir, str(tmp_path), [PushAt(source, {4: [lr_change], 6: [beta_change]}), recorder])
    trainer.add_callback(callback.bind(trainer))
    trainer.train()

    factors = schedule_factors("linear", COMMON["warmup_steps"], COMMON["max_steps"])
    expected = {s: (1e-3 if s <= 4 else 2e-3) * factors[s - 1] for s in range(1, COMMON["max_steps"] + 1)}
    assert recorder.first_group() == pytest.approx(expected)
    assert logged_lr(trainer) == pytest.approx(expected)
    assert source.outcome(lr_change.id).step == 4

    beta = source.outcome(beta_change.id)
    if name in WITH_BETA:
        assert (beta.status, beta.step, trainer.beta) == (OutcomeStatus.APPLIED, 6, 0.5)
        assert beta.changes["beta"].old == 0.1
    else:
        assert (beta.status, beta.reason) == (OutcomeStatus.REJECTED, f"beta: {name} has no beta")
