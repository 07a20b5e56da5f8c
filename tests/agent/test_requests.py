"""Parsing, identity and validation of request rows, and the seq ledger (no network)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from liveparams.agent._requests import MAX_REQUEST_BYTES, RequestLedger, parse_request, request_identity
from liveparams.contract import OutcomeStatus, UpdateOutcome, UpdateRequest

LIMIT = MAX_REQUEST_BYTES


def entry(request_id: str = "7d1c7c36-1111-4a4a-9a9a-000000000001", **params: object) -> dict[str, object]:
    """An entry of the seed's parameter_updates array."""
    return {**params, "id": request_id, "requested_at": "2026-11-24T04:55:39.748Z", "requested_by": "u1"}


def request_row(request_id: str = "7d1c7c36-1111-4a4a-9a9a-000000000001", seq: int = 1, params: Any = None,
                **outcome: Any) -> dict[str, Any]:  # fmt: skip
    """A row of parameter_update_requests as REST or Realtime returns it."""
    return {
        "id": request_id,
        "seq": seq,
        "params": params,
        "requested_at": "2026-11-24T04:55:39.748+00:00",
        "requested_by": "u1",
        "status": None,
        **outcome,
    }


def reason_of(params: object) -> str:
    item = parse_request(request_row(params=params), LIMIT)
    assert isinstance(item, UpdateOutcome) and item.status is OutcomeStatus.REJECTED
    assert item.reason
    return item.reason


def test_identity_is_the_stored_id() -> None:
    assert request_identity(entry("abc", learning_rate=1e-4)) == "abc"


def test_legacy_identity_is_stable_and_content_based() -> None:
    legacy = {"learning_rate": 5e-05, "requested_at": "2024-12-14T10:30:00.000Z"}
    same_other_order = {"requested_at": "2024-12-14T10:30:00.000Z", "learning_rate": 5e-05}
    key = request_identity(legacy)
    assert key.startswith("legacy-") and len(key) == len("legacy-") + 16
    assert request_identity(same_other_order) == key
    assert request_identity({**legacy, "requested_at": "2024-12-14T10:31:00.000Z"}) != key


def test_valid_request_is_normalised() -> None:
    params = {"learning_rate": 5e-5, "max_steps": 300.0, "learning_rate_mode": "constant"}
    item = parse_request(request_row(seq=3, params=params), LIMIT)
    assert item == UpdateRequest(
        id="7d1c7c36-1111-4a4a-9a9a-000000000001",
        params={"learning_rate": 5e-5, "max_steps": 300, "learning_rate_mode": "constant"},
        requested_at="2026-11-24T04:55:39.748+00:00",
        requested_by="u1",
        seq=3,
    )
    assert isinstance(item.params["max_steps"], int)


@pytest.mark.parametrize("mode", ["constant", "rescale"])
def test_learning_rate_mode_alone_is_a_request(mode: str) -> None:
    """``constant`` alone freezes the current rate; ``rescale`` alone brings the schedule back."""
    item = parse_request(request_row(params={"learning_rate_mode": mode}), LIMIT)
    assert isinstance(item, UpdateRequest) and item.params == {"learning_rate_mode": mode}


def test_legacy_row_without_metadata_is_accepted() -> None:
    row = {"id": "legacy-0123456789abcdef", "seq": 1, "params": {"learning_rate": 1e-4}, "requested_at": None}
    item = parse_request(row, LIMIT)
    assert isinstance(item, UpdateRequest)
    assert item.requested_at == "" and item.requested_by is None


def test_params_stored_as_json_text_are_decoded() -> None:
    item = parse_request(request_row("x1", params=json.dumps({"weight_decay": 0.1})), LIMIT)
    assert isinstance(item, UpdateRequest) and item.id == "x1" and item.params == {"weight_decay": 0.1}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ("{not json", "malformed request"),
        (42, "malformed request"),
        (["learning_rate", 1e-4], "malformed request"),
        (None, "malformed request"),
        ({}, "names no parameter"),
        ({"id": 5, "learning_rate": 1e-4}, "id must be a non-empty string"),
        ({"learning_rate": "0.001"}, "must be a number"),
        ({"learning_rate": True}, "must be a number"),
        ({"learning_rate": float("nan")}, "must be finite"),
        ({"learning_rate": 0}, "out of range"),
        ({"learning_rate": 2.0}, "out of range"),
        ({"warmup_steps": 1.5}, "whole number"),
        ({"bogus": 1}, "unknown parameter 'bogus'"),
        ({"num_generations": 1}, "out of range"),
        ({"command": "explode"}, "must be one of"),
        ({"note": "x" * 5000, "learning_rate": 1e-4}, "the limit is 4096"),
    ],
)
def test_bad_input_is_rejected_with_a_reason(params: object, expected: str) -> None:
    assert expected in reason_of(params)


def test_every_problem_of_a_request_is_reported() -> None:
    reason = reason_of({"learning_rate": -1, "weight_decay": "x"})
    assert "learning_rate" in reason and "weight_decay" in reason


def test_rejection_carries_the_request_id() -> None:
    item = parse_request(request_row("r-9", params={"bogus": 1}), LIMIT)
    assert isinstance(item, UpdateOutcome) and item.request_id == "r-9" and item.step is None


def ids(items: list[UpdateRequest | UpdateOutcome]) -> list[str]:
    return [i.id if isinstance(i, UpdateRequest) else i.request_id for i in items]


def rows(*specs: tuple[str, dict[str, Any]], start: int = 1, **outcome: Any) -> list[dict[str, Any]]:
    return [request_row(name, start + i, params, **outcome) for i, (name, params) in enumerate(specs)]


def test_ledger_hands_out_each_request_once_in_order() -> None:
    ledger = RequestLedger(LIMIT)
    first = rows(("a", {"learning_rate": 1e-4}), ("b", {"weight_decay": 0.1}))
    assert ids(ledger.scan(first, room=10).items) == ["a", "b"]
    assert ledger.last_seq == 2 and ledger.handled(2) and ledger.follows(3) and not ledger.follows(4)
    grown = [*first, *rows(("c", {"bogus": 1}), ("d", {"max_grad_norm": 1.0}), start=3)]
    assert ids(ledger.scan(grown, room=10).items) == ["c", "d"]
    assert ledger.scan(grown, room=10).items == []  # a re-read or a held event: not twice


def test_ledger_skips_requests_that_already_have_an_outcome() -> None:
    ledger = RequestLedger(LIMIT)
    decided = request_row("a", 1, {"learning_rate": 1e-4}, status="applied", step=3)
    assert ids(ledger.scan([decided, request_row("b", 2, {"weight_decay": 0.1})], room=10).items) == ["b"]


def test_ledger_after_a_resume_replays_what_the_checkpoint_rewound_once() -> None:
    ledger = RequestLedger(LIMIT)
    ledger.replay_after_step = 8
    outcomes = [
        {"status": "applied", "step": 5},  # in the checkpoint
        {"status": "applied", "step": 8},  # in the checkpoint: saved at the end of step 8
        {"status": "applied", "step": 12},  # rewound
        {"status": "rejected", "step": None, "reason": "out of range"},
        {"status": "superseded", "step": 12, "superseded_by": "c"},
        {"status": "failed", "step": 12, "reason": "boom"},
        {"status": "applied", "step": None},
    ]
    table = [
        request_row(name, i + 1, {"learning_rate": 1e-4}, **o)
        for i, (name, o) in enumerate(zip("abcdefg", outcomes, strict=True))
    ]
    assert ids(ledger.scan(table, room=10).items) == ["c"]
    assert ledger.scan(table, room=10).items == []  # read again: still not twice


def test_a_replay_brings_back_settings_but_not_one_off_commands() -> None:
    ledger = RequestLedger(LIMIT)
    ledger.replay_after_step = 4
    table = [
        request_row("lr", 1, {"learning_rate": 2e-4, "command": "save_checkpoint"}, status="applied", step=6),
        request_row("stop", 2, {"command": "stop"}, status="applied", step=7),
    ]
    scan = ledger.scan(table, room=10)
    assert [(item.id, item.params) for item in scan.items] == [("lr", {"learning_rate": 2e-4})]
    assert scan.replayed == {"lr"}
    assert ledger.scan(table, room=10).items == []


def test_ledger_stops_when_out_of_room_and_resumes_in_order() -> None:
    ledger = RequestLedger(LIMIT)
    table = rows(
        ("a", {"learning_rate": 1e-4}), ("r", {"bogus": 1}), ("b", {"weight_decay": 0.1}), ("c", {"max_steps": 5})
    )
    scan = ledger.scan(table, room=1)
    assert ids(scan.items) == ["a", "r"] and scan.blocked and ledger.last_seq == 2
    scan = ledger.scan(table, room=5)
    assert ids(scan.items) == ["b", "c"] and not scan.blocked


def test_legacy_identity_reads_json_text_as_what_it_encodes() -> None:
    """The reference for the SQL that gives seed entries their ids (checked against it in tests/stack)."""
    assert request_identity(json.dumps(entry("abc"))) == "abc"
