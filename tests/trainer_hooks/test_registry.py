"""The applier registry matches the parameter table, and misuse is loud."""

from __future__ import annotations

import pytest

from liveparams import trainer_hooks
from liveparams.contract import PARAMETERS
from liveparams.trainer_hooks import applier_names, get_applier, register_applier
from liveparams.trainer_hooks._appliers import LearningRateApplier


def test_every_live_parameter_has_exactly_one_applier() -> None:
    live = {name for name, spec in PARAMETERS.items() if not spec.restart_only}
    assert set(applier_names()) == live
    assert len(applier_names()) == len(live)


def test_an_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(
        ValueError,
        match="no applier for 'batch_size'; valid names: adam_beta1, adam_beta2, adam_epsilon, beta, checkpoint, comm",
    ):
        get_applier("batch_size")


def test_registering_a_name_twice_raises() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_applier(LearningRateApplier())


def test_exported_members_are_sorted_and_public() -> None:
    assert trainer_hooks.__all__ == sorted(trainer_hooks.__all__)
    for name in trainer_hooks.__all__:
        assert getattr(trainer_hooks, name) is not None
