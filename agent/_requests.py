"""From the row's ``parameter_updates`` array to validated requests and rejections.

Pure functions and one small stateful class, no I/O, so the rules can be tested
without a network. What the rules guarantee:

- **Identity.** A request is identified by its ``id`` (stamped by the RPC).
  Entries written without one (the seed's UI wrote plain objects) get
  ``legacy-<first 16 hex of sha256(canonical JSON)>``: stable across re-reads
  and processes, and two identical entries are one request.
- **Exactly once, in order.** :class:`RequestLedger` remembers every id it has
  handed out or rejected, walks the array in order, and skips ids that already
  have an outcome on the row (handled by an earlier process) — except, after a
  resume from a checkpoint at step S, those ``applied`` at a step after S: the
  checkpoint rewound the model past them, so they are handed out once more.
- **Validation.** Every parameter goes through :func:`liveparams.agent.validate_parameter`;
  entries that are not objects, JSON text that does not parse, empty requests
  and oversized payloads are rejected with a sentence for the user.
  (``learning_rate_mode`` alone is a request: ``constant`` freezes the current
  rate, ``rescale`` brings the schedule back.)
"""

from __future__ import annotations

import hashlib
import json
import reprlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from liveparams.contract import (
    METADATA_KEYS,
    InvalidParameter,
    OutcomeStatus,
    ParamValue,
    UpdateOutcome,
    UpdateRequest,
    validate_parameter,
)

__all__ = ["LEGACY_PREFIX", "RequestLedger", "Scan", "parse_entry", "request_identity"]

LEGACY_PREFIX = "legacy-"


def _canonical(entry: Any) -> str:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _identity(entry: Any) -> str:
    if isinstance(entry, Mapping):
        request_id = entry.get("id")
        if isinstance(request_id, str) and request_id:
            return request_id
    digest = hashlib.sha256(_canonical(entry).encode()).hexdigest()
    return f"{LEGACY_PREFIX}{digest[:16]}"


def _decode(entry: Any) -> Any:
    """Entries stored as JSON text (a double-encoded object) are read as what they encode."""
    if isinstance(entry, str):
        try:
            return json.loads(entry)
        except ValueError:
            return entry
    return entry


def request_identity(raw: Any) -> str:
    """The request id of one ``parameter_updates`` entry, as stored: its ``id``, or for legacy and
    malformed entries ``legacy-<16 hex digits of a hash of the (decoded) content>``.

    Outcomes are keyed by it on the row, so anything that pairs requests with outcomes
    (the agent, ``liveparams watch``, a UI) must use this one definition.
    """
    return _identity(_decode(raw))


def parse_entry(raw: Any, position: int, max_bytes: int) -> UpdateRequest | UpdateOutcome:
    """Turn one array entry into a request, or into a ``REJECTED`` outcome saying why not."""
    entry = _decode(raw)
    request_id = _identity(entry)

    def reject(reason: str) -> UpdateOutcome:
        return UpdateOutcome(request_id=request_id, status=OutcomeStatus.REJECTED, reason=reason)

    if not isinstance(entry, Mapping):
        shown = f"{type(raw).__name__} {reprlib.repr(raw)}"
        return reject(f'malformed request: expected a JSON object such as {{"learning_rate": 5e-05}}, got {shown}')
    size = len(_canonical(entry).encode())
    if size > max_bytes:
        return reject(f"request is {size} bytes; the limit is {max_bytes}")
    if "id" in entry and not (isinstance(entry["id"], str) and entry["id"]):
        return reject(f"malformed request: id must be a non-empty string, got {entry['id']!r}")
    params: dict[str, ParamValue] = {}
    problems: list[str] = []
    for name, value in entry.items():
        if name in METADATA_KEYS:
            continue
        try:
            params[name] = validate_parameter(name, value)
        except InvalidParameter as exc:
            problems.append(str(exc))
    if not params and not problems:
        return reject("request names no parameter")
    if problems:
        return reject("; ".join(problems))
    requested_at = entry.get("requested_at")
    requested_by = entry.get("requested_by")
    return UpdateRequest(
        id=request_id,
        params=params,
        requested_at=requested_at if isinstance(requested_at, str) else "",
        requested_by=requested_by if isinstance(requested_by, str) else None,
        seq=position,
    )


@dataclass
class Scan:
    """What one look at the row produced, in array order.

    Args:
        items (`list`): new requests and rejections, interleaved in array order.
        raw (`dict[str, Any]`): request id → the entry as stored, for the log line.
        blocked (`bool`): the scan stopped early because the caller had no room; the rest waits on the row.
        replayed (`set[str]`): ids among ``items`` handed out again after a resume (see ``replay_after_step``).
    """

    items: list[UpdateRequest | UpdateOutcome] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    blocked: bool = False
    replayed: set[str] = field(default_factory=set)


class RequestLedger:
    """Remembers which requests have been handed out, so each is handed out once and in order.

    Not thread-safe: the agent uses it from its own event loop only.

    Args:
        max_request_bytes (`int`): entries larger than this, as compact JSON, are rejected.

    Attributes:
        replay_after_step (`int | None`): set when training resumed from a checkpoint at this
            global step: requests recorded as ``applied`` at a later step are handed out once
            more, since the checkpoint does not contain them. ``None``: every outcome means handled.
    """

    def __init__(self, max_request_bytes: int) -> None:
        self._max_bytes = max_request_bytes
        self.replay_after_step: int | None = None
        self._seen: set[str] = set()
        # Ids of the array prefix already walked; lets an event that adds nothing cost a length check.
        self._prefix: list[str] = []

    def is_current(self, updates: Sequence[Any]) -> bool:
        """True when ``updates`` holds nothing beyond what was already walked (the cheap path)."""
        n = len(updates)
        return n == len(self._prefix) and (n == 0 or request_identity(updates[-1]) == self._prefix[-1])

    def scan(self, updates: Sequence[Any], outcomes: Mapping[str, Any], room: int) -> Scan:
        """Walk ``updates`` and return what is new, handing out at most ``room`` requests.

        Rejections do not take room. When the room runs out the scan stops at that
        request (``blocked``), so order is kept and nothing is marked seen that was not
        handed out; call again with the same or a newer array when there is room.
        """
        result = Scan()
        prefix = self._prefix
        start = len(prefix)
        if not (start <= len(updates) and (start == 0 or request_identity(updates[start - 1]) == prefix[-1])):
            # The array is not an extension of what was walked (an older snapshot, or rewritten by an admin):
            # walk it all; the seen-set keeps it exactly-once.
            prefix, start = [], 0
        for position in range(start, len(updates)):
            raw = updates[position]
            request_id = request_identity(raw)
            replay = request_id in outcomes and request_id not in self._seen
            if request_id in self._seen:
                pass  # handed out or rejected by this process already
            elif replay and not self._rewound(outcomes[request_id]):
                self._seen.add(request_id)  # handled by an earlier process, and kept by the checkpoint
            else:
                parsed = parse_entry(raw, position, self._max_bytes)
                item = _settings_only(parsed) if replay else parsed
                if isinstance(item, UpdateRequest):
                    if room <= 0:
                        result.blocked = True
                        break
                    room -= 1
                self._seen.add(request_id)
                if item is not None:
                    result.items.append(item)
                    result.raw[request_id] = raw
                    if replay:
                        result.replayed.add(request_id)
            prefix.append(request_id)
        self._prefix = prefix
        return result

    def _rewound(self, outcome: Any) -> bool:
        """Whether ``outcome`` (as stored) is an application the resumed checkpoint does not contain."""
        after = self.replay_after_step
        if after is None or not isinstance(outcome, Mapping) or outcome.get("status") != OutcomeStatus.APPLIED.value:
            return False
        step = outcome.get("step")
        return isinstance(step, int) and not isinstance(step, bool) and step > after


def _settings_only(item: UpdateRequest | UpdateOutcome) -> UpdateRequest | None:
    """A replayed request without its ``command``: settings are model state the checkpoint rewound,
    but "save", "evaluate" or "stop" belonged to the moment they were asked (a resumed run must not
    stop again because it was stopped once). ``None`` when nothing else is left.
    """
    if not isinstance(item, UpdateRequest):
        return None  # it was applied once, so it was valid then; nothing to say about it now
    params = {name: value for name, value in item.params.items() if name != "command"}
    return replace(item, params=params) if params else None
