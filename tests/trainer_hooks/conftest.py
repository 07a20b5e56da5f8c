"""Fixtures for the trainer-hooks tests (doubles and helpers live in hooks_helpers.py)."""

from __future__ import annotations

import pytest
from hooks_helpers import QueueSource


@pytest.fixture
def source() -> QueueSource:
    return QueueSource()


@pytest.fixture(scope="session")
def tiny_dir() -> str:
    from liveparams.demo.tiny import tiny_model_dir

    return tiny_model_dir()
