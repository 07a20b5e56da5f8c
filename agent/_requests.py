"""From rows of ``parameter_update_requests`` to validated requests and rejections.

Pure functions and one small stateful class, no I/O, so the rules can be tested
without a network. What the rules guarantee:

- **Identity and order.** A request is identified by its ``id`` and ordered by
  ``seq``, its place on the job (1, 2, 3, ... in commit order, assigned by the
  database). Entries written the seed's way, without an id, were given
  ``legacy-<first 16 hex of sha256(canonical JSON)>`` by the agent before the
  request table existed; the migration gives them the same id in SQL
  (:func:`request_identity` is the reference the test suite checks it against).
- **Exactly once, in order, with bounded memory.** :class:`RequestLedger` keeps one
  number, the highest ``seq`` handled: a row at or below it is a duplicate (a
  held or replayed event, a re-read), the next one is taken, and anything beyond
  the next means something was missed, so the caller re-reads from the mark.
  Rows that already have an outcome (handled by an earlier process) are skipped,
  except, after a resume from a checkpoint at step S, those ``applied`` at a step
  after S: the checkpoint rewound the model past them, so they are handed out once more.
- **Validation.** Every parameter goes through :func:`liveparams.contract.validate_parameter`;
  params that are not an object, JSON text that does not parse, empty requests
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

__all__ = [
    "LEGACY_PREFIX",
    "MAX_REQUEST_BYTES",
    "RequestLedger",
    "Scan",
    "decode_params",
    "parse_request",
    "request_identity",
]

LEGACY_PREFIX = "legacy-"
# The database's liveparams_max_request_bytes(); tests/stack/test_rpc.py checks the two agree.
MAX_REQUEST_BYTES = 4096


def _canonical(entry: Any) -> str:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def decode_params(value: Any) -> Any:
    """Params stored as JSON text (a double-encoded object) read as what they encode; anything else as is.

    The one reading of a stored request's parameters: the agent validates what this returns,
    and ``liveparams watch`` shows it, so the two cannot disagree about a request.
    """
    if isinstance(value, str):
        try:
            return json.loads(value)
        except (ValueError, RecursionError):  # not JSON, or nested deeper than Python reads
            return value
    return value


def request_identity(raw: Any) -> str:
    """The id of one entry of the seed's ``parameter_updates`` array: its ``id``, or for entries
    without one ``legacy-<16 hex digits of a hash of the (decoded) content>``.

    The migration and the legacy-append trigger compute the same id in SQL
    (``liveparams_legacy_request_id``), so outcomes recorded before the upgrade stay paired.
    """
    entry = decode_params(raw)
    if isinstance(entry, Mapping):
        request_id = entry.get("id")
        if isinstance(request_id, str) and request_id:
            return request_id
    digest = hashlib.sha256(_canonical(entry).encode()).hexdigest()
    return f"{LEGACY_PREFIX}{digest[:16]}"


def parse_request(row: Mapping[str, Any], max_bytes: int) -> UpdateRequest | UpdateOutcome:
    """Turn one request row into a request, or into a ``REJECTED`` outcome saying why not."""
    request_id = str(row.get("id"))
    raw = row.get("params")
    params_in = decode_params(raw)

    def reject(reason: str) -> UpdateOutcome:
        return UpdateOutcome(request_id=request_id, status=OutcomeStatus.REJECTED, reason=reason)

    if not isinstance(params_in, Mapping):
        shown = f"{type(raw).__name__} {reprlib.repr(raw)}"
        return reject(f'malformed request: expected a JSON object such as {{"learning_rate": 5e-05}}, got {shown}')
    size = len(_canonical(params_in).encode())
    if size > max_bytes:
        return reject(f"request is {size} bytes; the limit is {max_bytes}")
    if "id" in params_in:
        return reject(f"malformed request: id must be a non-empty string, got {params_in['id']!r}")
    params: dict[str, ParamValue] = {}
    problems: list[str] = []
    for name, value in params_in.items():
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
    requested_at = row.get("requested_at")
    requested_by = row.get("requested_by")
    seq = row.get("seq")
    return UpdateRequest(
        id=request_id,
        params=params,
        requested_at=requested_at if isinstance(requested_at, str) else "",
        requested_by=requested_by if isinstance(requested_by, str) else None,
        seq=seq if isinstance(seq, int) else 0,
    )


def row_seq(row: Any) -> int | None:
    """The ``seq`` of a request row, or ``None`` when the row has none (e.g. a record cut down by the server)."""
    seq = row.get("seq") if isinstance(row, Mapping) else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


@dataclass
class Scan:
    """What one batch of rows produced, in seq order.

    Args:
        items (`list`): new requests and rejections, interleaved in seq order.
        shown (`dict[str, Any]`): request id → its params as stored, for the log line.
        blocked (`bool`): the scan stopped early because the caller had no room; the rest waits in the table.
        replayed (`set[str]`): ids among ``items`` handed out again after a resume (see ``replay_after_step``).
    """

    items: list[UpdateRequest | UpdateOutcome] = field(default_factory=list)
    shown: dict[str, Any] = field(default_factory=dict)
    blocked: bool = False
    replayed: set[str] = field(default_factory=set)


class RequestLedger:
    """Remembers how far the job's requests have been handed out, so each is handed out once and in order.

    Not thread-safe: the agent uses it from its own event loop only.

    Args:
        max_request_bytes (`int`): params larger than this, as compact JSON, are rejected.

    Attributes:
        last_seq (`int | None`): every request with ``seq <= last_seq`` was handled (handed out,
            rejected, or skipped as decided); ``None`` until the first read.
        replay_after_step (`int | None`): set when training resumed from a checkpoint at this
            global step: requests recorded as ``applied`` at a later step are handed out once
            more, since the checkpoint does not contain them. ``None``: every outcome means handled.
    """

    def __init__(self, max_request_bytes: int) -> None:
        self._max_bytes = max_request_bytes
        self.replay_after_step: int | None = None
        self.last_seq: int | None = None

    def handled(self, seq: int) -> bool:
        """Whether the request at ``seq`` was already handled (a duplicate event or re-read)."""
        return self.last_seq is not None and seq <= self.last_seq

    def follows(self, seq: int) -> bool:
        """Whether ``seq`` is the very next request, so taking it alone leaves no gap."""
        return self.last_seq is not None and seq == self.last_seq + 1

    def caught_up(self, latest_seq: int) -> None:
        """Everything up to ``latest_seq`` was read and handled (a complete, unblocked read)."""
        self.last_seq = max(self.last_seq or 0, latest_seq)

    def scan(self, rows: Sequence[Mapping[str, Any]], room: int) -> Scan:
        """Walk ``rows`` (ascending seq) and return what is new, handing out at most ``room`` requests.

        Rejections do not take room. When the room runs out the scan stops at that
        request (``blocked``), so order is kept and the mark stays before it.
        """
        result = Scan()
        for row in rows:
            seq = row_seq(row)
            if seq is None or self.handled(seq):
                continue
            decided = row.get("status") is not None
            if decided and not self._rewound(row):
                self.last_seq = seq  # handled by an earlier process, and kept by the checkpoint
                continue
            try:
                parsed = parse_request(row, self._max_bytes)
            except Exception as exc:  # a row no rule foresaw must not hold back every later request
                reason = f"could not be read: {type(exc).__name__}: {str(exc)[:200]}"
                parsed = UpdateOutcome(request_id=str(row.get("id")), status=OutcomeStatus.REJECTED, reason=reason)
            item = _settings_only(parsed) if decided else parsed
            if isinstance(item, UpdateRequest):
                if room <= 0:
                    result.blocked = True
                    break
                room -= 1
            self.last_seq = seq
            if item is not None:
                result.items.append(item)
                result.shown[item.id if isinstance(item, UpdateRequest) else item.request_id] = row.get("params")
                if decided:
                    result.replayed.add(str(row.get("id")))
        return result

    def _rewound(self, row: Mapping[str, Any]) -> bool:
        """Whether the stored outcome is an application the resumed checkpoint does not contain."""
        after = self.replay_after_step
        if after is None or row.get("status") != OutcomeStatus.APPLIED.value:
            return False
        step = row.get("step")
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
