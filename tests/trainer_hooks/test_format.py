"""Values are printed for people: logs, outcome reasons and the CLI share ``format_value``."""

from __future__ import annotations

import logging

import pytest

from liveparams.contract import format_value
from liveparams.trainer_hooks import get_applier


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (3.3189655172413796e-05, "3.32e-05"),
        (1e-4, "1.00e-04"),
        (5e-05, "5.00e-05"),
        (0.3, "0.3"),
        (0.999, "0.999"),
        (0.999999, "0.999999"),  # adam_beta2's bound: not "1"
        (1 / 3, "0.333333"),
        (1.0, "1"),
        (0.0, "0"),
        (123456.0, "1.23e+05"),
        (40, "40"),
        ("constant", "constant"),
        (None, "None"),
    ],
)
def test_numbers_are_printed_readably(value: object, shown: str) -> None:
    assert format_value(value) == shown


def test_an_applied_change_is_logged_with_readable_numbers(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="liveparams.trainer_hooks"):
        get_applier("learning_rate").log_applied(1e-4, 3.3189655172413796e-05, 7)
        get_applier("max_grad_norm").log_applied(1.0, 0.30000000000000004, 7)
    assert caplog.messages == [
        "✅ Applied learning rate update: 1.00e-04 → 3.32e-05",
        "Applied max_grad_norm: 1 → 0.3 at step 7",
    ]
