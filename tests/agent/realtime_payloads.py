"""The ``postgres_changes`` payload the official Python client hands the agent's callback (docs/internals.md).

Shared by the intake tests and ``benchmarks/agent_latency.py``, which feed the callback without a socket.
"""

from __future__ import annotations

from typing import Any

__all__ = ["postgres_change", "request_row"]


def request_row(request_id: str, seq: int, params: Any, **columns: Any) -> dict[str, Any]:
    """A row of ``parameter_update_requests`` as REST or Realtime hands it over (undecided unless ``columns`` say)."""
    return {
        "job_id": "job",
        "id": request_id,
        "seq": seq,
        "params": params,
        "requested_at": "2026-11-24T04:55:39.748+00:00",
        "requested_by": "u1",
        "status": None,
        "step": None,
        **columns,
    }


def postgres_change(record: dict[str, Any] | None, **errors: Any) -> dict[str, Any]:
    """An INSERT of ``record`` into the requests table; ``None`` stands for a record the server cut down."""
    return {
        "ids": [1],
        "data": {
            "schema": "public",
            "table": "parameter_update_requests",
            "type": "INSERT",
            "commit_timestamp": "2026-11-24T04:55:39.750Z",
            "errors": errors or None,
            "columns": [],
            "record": record if record is not None else {"job_id": "job"},
        },
    }
