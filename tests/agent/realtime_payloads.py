"""The ``postgres_changes`` payload the official Python client hands the agent's callback (protocol notes §4.4).

Shared by the intake tests and ``benchmarks/agent_latency.py``, which feed the callback without a socket.
"""

from __future__ import annotations

from typing import Any

__all__ = ["postgres_change"]


def postgres_change(
    updates: list[Any] | None, outcomes: dict[str, Any] | None = None, **extra: object
) -> dict[str, Any]:
    """An UPDATE of the job row holding ``updates`` and ``outcomes``; ``updates=None`` leaves both columns out.

    ``extra`` adds other columns to the record (e.g. ``progress``), as a progress update would change them.
    """
    record: dict[str, Any] = {"id": "job", "status": "running", **extra}
    if updates is not None:
        record["parameter_updates"] = updates
        record["parameter_update_outcomes"] = outcomes or {}
    return {
        "ids": [1],
        "data": {
            "schema": "public",
            "table": "local_training_jobs",
            "type": "UPDATE",
            "commit_timestamp": "2026-11-24T04:55:39.750Z",
            "errors": None,
            "columns": [],
            "record": record,
            "old_record": {"id": "job"},
        },
    }
