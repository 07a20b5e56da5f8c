"""Parsing, identity and validation of the row's parameter_updates entries (no network)."""

from __future__ import annotations

import json

import pytest

from liveparams.agent._requests import RequestLedger, parse_entry, request_identity
from liveparams.contract import OutcomeStatus, UpdateOutcome, UpdateRequest

LIMIT = 4096


def entry(request_id: str = "7d1c7c36-1111-4a4a-9a9a-000000000001", **params: object) -> dict[str, object]:
    return {**params, "id": request_id, "requested_at": "2026-11-24T04:55:39.748Z", "requested_by": "u1"}


def reason_of(raw: object) -> str:
    item = parse_entry(raw, 0, LIMIT)
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
    item = parse_entry(entry(learning_rate=5e-5, max_steps=300.0, learning_rate_mode="constant"), 3, LIMIT)
    assert item == UpdateRequest(
        id="7d1c7c36-1111-4a4a-9a9a-000000000001",
        params={"learning_rate": 5e-5, "max_steps": 300, "learning_rate_mode": "constant"},
        requested_at="2026-11-24T04:55:39.748Z",
        requested_by="u1",
        seq=3,
    )
    assert isinstance(item.params["max_steps"], int)


@pytest.mark.parametrize("mode", ["constant", "rescale"])
def test_learning_rate_mode_alone_is_a_request(mode: str) -> None:
    """``constant`` alone freezes the current rate; ``rescale`` alone brings the schedule back."""
    item = parse_entry(entry(learning_rate_mode=mode), 0, LIMIT)
    assert isinstance(item, UpdateRequest) and item.params == {"learning_rate_mode": mode}


def test_legacy_entry_without_metadata_is_accepted() -> None:
    item = parse_entry({"learning_rate": 1e-4}, 0, LIMIT)
    assert isinstance(item, UpdateRequest)
    assert item.id.startswith("legacy-") and item.requested_at == "" and item.requested_by is None


def test_json_text_entry_is_decoded() -> None:
    raw = json.dumps(entry("x1", weight_decay=0.1))
    item = parse_entry(raw, 0, LIMIT)
    assert isinstance(item, UpdateRequest) and item.id == "x1" and item.params == {"weight_decay": 0.1}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("{not json", "malformed request"),
        (42, "malformed request"),
        (["learning_rate", 1e-4], "malformed request"),
        (None, "malformed request"),
        (entry(), "names no parameter"),
        (entry(id=None) | {"id": 5, "learning_rate": 1e-4}, "id must be a non-empty string"),
        (entry(learning_rate="0.001"), "must be a number"),
        (entry(learning_rate=True), "must be a number"),
        (entry(learning_rate=float("nan")), "must be finite"),
        (entry(learning_rate=0), "out of range"),
        (entry(learning_rate=2.0), "out of range"),
        (entry(warmup_steps=1.5), "whole number"),
        (entry(bogus=1), "unknown parameter 'bogus'"),
        (entry(per_device_train_batch_size=8), "needs a restart"),
        (entry(command="explode"), "must be one of"),
        (entry(note="x" * 5000, learning_rate=1e-4), "the limit is 4096"),
    ],
)
def test_bad_input_is_rejected_with_a_reason(raw: object, expected: str) -> None:
    assert expected in reason_of(raw)


def test_every_problem_of_a_request_is_reported() -> None:
    reason = reason_of(entry(learning_rate=-1, weight_decay="x"))
    assert "learning_rate" in reason and "weight_decay" in reason


def test_rejection_carries_the_request_id() -> None:
    item = parse_entry(entry("r-9", bogus=1), 0, LIMIT)
    assert isinstance(item, UpdateOutcome) and item.request_id == "r-9" and item.step is None


def ids(items: list[UpdateRequest | UpdateOutcome]) -> list[str]:
    return [i.id if isinstance(i, UpdateRequest) else i.request_id for i in items]


def test_ledger_hands_out_each_request_once_in_order() -> None:
    ledger = RequestLedger(LIMIT)
    first = [entry("a", learning_rate=1e-4), entry("b", weight_decay=0.1)]
    assert ids(ledger.scan(first, {}, room=10).items) == ["a", "b"]
    assert ledger.is_current(first)
    grown = [*first, entry("c", bogus=1), entry("d", max_grad_norm=1.0)]
    assert not ledger.is_current(grown)
    assert ids(ledger.scan(grown, {}, room=10).items) == ["c", "d"]
    assert ledger.scan(grown, {}, room=10).items == []


def test_ledger_survives_an_older_snapshot_and_a_rewritten_array() -> None:
    ledger = RequestLedger(LIMIT)
    new = [entry("a", learning_rate=1e-4), entry("b", weight_decay=0.1)]
    ledger.scan(new, {}, room=10)
    assert ledger.scan(new[:1], {}, room=10).items == []  # a REST read that started before the push
    rewritten = [entry("x", max_steps=10), entry("b", weight_decay=0.1)]
    assert ids(ledger.scan(rewritten, {}, room=10).items) == ["x"]


def test_ledger_skips_requests_that_already_have_an_outcome() -> None:
    ledger = RequestLedger(LIMIT)
    row = [entry("a", learning_rate=1e-4), entry("b", weight_decay=0.1)]
    assert ids(ledger.scan(row, {"a": {"status": "applied"}}, room=10).items) == ["b"]


def test_ledger_after_a_resume_replays_what_the_checkpoint_rewound_once() -> None:
    ledger = RequestLedger(LIMIT)
    ledger.replay_after_step = 8
    row = [entry(name, learning_rate=1e-4) for name in "abcdefg"]
    outcomes = {
        "a": {"status": "applied", "step": 5},  # in the checkpoint
        "b": {"status": "applied", "step": 8},  # in the checkpoint: saved at the end of step 8
        "c": {"status": "applied", "step": 12},  # rewound
        "d": {"status": "rejected", "step": None, "reason": "out of range"},
        "e": {"status": "superseded", "step": 12, "superseded_by": "c"},
        "f": {"status": "failed", "step": 12, "reason": "boom"},
        "g": {"status": "applied", "step": None},
    }
    assert ids(ledger.scan(row, outcomes, room=10).items) == ["c"]
    assert ledger.scan(row[::-1], outcomes, room=10).items == []  # a full walk again: still not twice


def test_a_replay_brings_back_settings_but_not_one_off_commands() -> None:
    ledger = RequestLedger(LIMIT)
    ledger.replay_after_step = 4
    row = [entry("lr", learning_rate=2e-4, command="save_checkpoint"), entry("stop", command="stop")]
    outcomes = {"lr": {"status": "applied", "step": 6}, "stop": {"status": "applied", "step": 7}}
    scan = ledger.scan(row, outcomes, room=10)
    assert [(item.id, item.params) for item in scan.items] == [("lr", {"learning_rate": 2e-4})]
    assert scan.replayed == {"lr"}
    assert ledger.scan(row, outcomes, room=10).items == []


def test_ledger_dedupes_repeated_entries() -> None:
    ledger = RequestLedger(LIMIT)
    legacy = {"learning_rate": 1e-4, "requested_at": "2024-12-14T10:30:00.000Z"}
    row = [entry("a", learning_rate=1e-4), entry("a", learning_rate=1e-4), legacy, dict(legacy)]
    assert len(ledger.scan(row, {}, room=10).items) == 2


def test_ledger_stops_when_out_of_room_and_resumes_in_order() -> None:
    ledger = RequestLedger(LIMIT)
    row = [entry("a", learning_rate=1e-4), entry("r", bogus=1), entry("b", weight_decay=0.1), entry("c", max_steps=5)]
    scan = ledger.scan(row, {}, room=1)
    assert ids(scan.items) == ["a", "r"] and scan.blocked
    scan = ledger.scan(row, {}, room=5)
    assert ids(scan.items) == ["b", "c"] and not scan.blocked
