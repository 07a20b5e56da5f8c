"""Make every rank apply the same requests at the same global step, and agree on every outcome.

Only rank 0 has an update source. Applying there alone silently diverges the
replicas (docs/internals.md, "Trainer"), so rank 0's drained requests are
broadcast to all ranks. A collective must be called by every rank at the same
hook whether or not anything was drained: one gated on rank-local information
deadlocks. Two rules keep every collective whole:

- Nothing that can fail runs between the collectives of one exchange. Rank 0
  pickles the requests *before* the first broadcast; if that fails it sends an
  empty batch and says so afterwards (:class:`NotSent`), instead of leaving the
  other ranks waiting in a second broadcast that never comes.
- Every rank decides every request, then all ranks exchange their verdicts
  (:meth:`RankSync.agree`): a check or an apply that fails on one rank fails
  the request on all, and every rank that applied it rolls back. So each
  outcome is the same on every rank and no rank rolls back alone.

A rank without the callback (a launcher that dropped it there, a script that
adds it on rank 0 only) would leave the others waiting in the first collective
for good. So before any, the ranks check over the process group's key-value
store, which takes no collective, that every one of them has it
(:func:`every_rank_present`); if one is missing, the others wait
``PRESENCE_TIMEOUT_S`` at most and the run goes on without updates on any rank.

What that costs, and why it is shaped this way:

- At train begin, every rank learns once whether rank 0 has a source at all
  (:meth:`RankSync.enabled_on_rank0`). When it has none (no ``JOB_ID``, the
  source failed to start) no rank makes any per-step collective.
- Otherwise the training thread does not wait for a collective at a step
  boundary with nothing queued. The ranks exchange at boundaries announced in
  advance. At one of them rank 0 drains its source and every rank *posts* a
  four-element header (request count, payload bytes, boundaries to the
  exchange after next, whether rank 0's source can no longer receive) as an
  asynchronous broadcast (:meth:`RankSync.post`); it
  travels while the next steps compute, and at the next exchange every rank
  waits for it (:meth:`RankSync.collect`, which finds it arrived) and, when it is
  not empty, receives the payload and decides those requests. So the requests
  drained at one exchange apply at the next on every rank, a boundary all of
  them knew in advance. Boundaries in between cost a comparison: rank 0 spaces
  the exchanges ``EXCHANGE_EVERY_S`` of training apart (from the step time it
  measured) when steps are shorter than that, and at every boundary otherwise.
  The price is latency: a request waits for an exchange to be taken and applies
  at the next, where a synchronous exchange at every boundary applied it at the
  first; benchmarks/ranks.py measures both (docs/benchmarks.md). Train begin
  still exchanges synchronously (:meth:`RankSync.broadcast`), so the requests
  replayed after a resume apply before the first resumed step.
- All of it goes over a gloo group of all ranks, on CPU tensors. Under NCCL a
  count on the GPU would need ``.item()``, a CUDA synchronisation every step;
  over gloo the step's GPU work is never waited for.
"""

from __future__ import annotations

import itertools
import logging
import pickle
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from liveparams._exceptions import LiveparamsError
from liveparams.contract import OutcomeStatus, UpdateOutcome, UpdateRequest

__all__ = ["EXCHANGE_EVERY_S", "PRESENCE_TIMEOUT_S", "NotSent", "RankSync", "every_rank_present", "is_multi_process"]

logger = logging.getLogger(__name__)

# When steps are shorter than this, exchanges are about this much training apart instead of at every boundary.
# benchmarks/ranks.py, 8 gloo ranks, 10 ms steps: 0.1 s costs ~18 µs a step and applies a request ~130 ms after it
# was taken; 0.05 s ~40-80 µs and ~60 ms (docs/benchmarks.md).
EXCHANGE_EVERY_S = 0.1
PRESENCE_TIMEOUT_S = 30.0  # the ranks reach train begin together (DDP's set-up is collective): only a missing one waits
_HEADER_SIZE = 4  # request count, payload bytes, boundaries to the next exchange, rank 0's source lost
_presence_rounds = itertools.count()  # one round per train begin, counted alike on every rank that has the callback

# The order in which disagreeing verdicts win: a failure anywhere fails the request everywhere.
_SEVERITY = {OutcomeStatus.FAILED: 2, OutcomeStatus.REJECTED: 1}


def is_multi_process() -> bool:
    """Whether a process group with more than one rank is running (the same answer on every rank)."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def every_rank_present(timeout: float | None = None) -> bool:
    """Whether every rank reached this call (its n-th in this process); the same answer on each rank that did.

    Not a collective: each rank counts itself in on the default store, waits until all are
    in or ``timeout`` passes, and proposes "all here" or "not all"; the first proposal is
    the answer everyone reads (``compare_set``). "All here" can only be proposed once every
    rank is counted, so a rank that never comes cannot be waited for in a collective later.
    Without a store to ask (an unusual ``init_process_group``) it answers True, as before.
    """
    store = _default_store()
    if store is None:
        return True
    key, world = f"liveparams/presence/{next(_presence_rounds)}", dist.get_world_size()
    arrived = store.add(f"{key}/count", 1)
    deadline = time.monotonic() + (PRESENCE_TIMEOUT_S if timeout is None else timeout)
    while arrived < world and time.monotonic() < deadline:
        time.sleep(0.01)
        arrived = store.add(f"{key}/count", 0)
    decided = store.compare_set(f"{key}/decision", "", "all" if arrived >= world else "not all")
    return bytes(decided) == b"all"


def _default_store() -> Any:
    """The default process group's key-value store (a private torch function, hence the guard)."""
    try:
        return dist.distributed_c10d._get_default_store()
    except Exception:
        logger.debug("no key-value store for the presence check", exc_info=True)
        return None


def _encode(requests: list[UpdateRequest]) -> bytes:
    return pickle.dumps(requests)


def _decode(payload: bytes) -> list[UpdateRequest]:
    requests = pickle.loads(payload)
    if not (isinstance(requests, list) and all(isinstance(r, UpdateRequest) for r in requests)):
        raise TypeError(f"expected a list of UpdateRequest, got {type(requests).__name__}")
    return requests


class NotSent(LiveparamsError):
    """Rank 0 could not send its requests (after an empty batch went out, so no rank waits)."""


@dataclass
class _Posted:
    """A header on its way from rank 0 (posted at one exchange boundary, collected at the next)."""

    work: Any  # the asynchronous broadcast (torch.distributed.Work)
    header: Any  # numpy view of the tensor sent: (request count, payload bytes, gap, lost), rank 0's once done
    payload: bytes  # rank 0's encoded requests (empty on the other ranks)
    requests: list[UpdateRequest]  # what rank 0 announced (empty on the other ranks)


@dataclass
class _Cadence:
    """Rank 0's choice of how many step boundaries apart the exchanges are, from how fast the steps go."""

    last: tuple[int, float] | None = None  # (step, monotonic time) of the previous post

    def gap(self, step: int) -> int:
        """Boundaries between the collect of the header posted now and the next one: ``EXCHANGE_EVERY_S`` of steps."""
        now, last = time.monotonic(), self.last
        self.last = (step, now)
        if last is None or step <= last[0] or now <= last[1]:
            return 1
        return max(1, round(EXCHANGE_EVERY_S * (step - last[0]) / (now - last[1])))


class RankSync:
    """Rank 0 → all ranks, over a CPU (gloo) group of every rank.

    Creating one is itself collective (``new_group``): every rank must build it at
    the same point, once per process group. Every method but :meth:`due` is collective
    too: every rank calls the same ones in the same order.
    """

    def __init__(self) -> None:
        self.world = dist.group.WORLD
        self.rank = dist.get_rank()
        # Always a group of its own, even when the default backend is gloo: one code path, the one tested on CPU.
        self._group = dist.new_group(backend="gloo")
        self._posted: _Posted | None = None
        self._due = 0  # the step boundary that collects the posted header
        self._cadence = _Cadence()
        self._header = torch.zeros(_HEADER_SIZE, dtype=torch.int64)  # reused: one header is in flight at a time
        self._header_options = dist.BroadcastOptions()  # root 0, the first tensor
        self.rank0_lost = False  # the last collected header said rank 0's source can no longer receive

    def is_for_current_world(self) -> bool:
        """False once the process group this was built in has been destroyed or replaced."""
        return is_multi_process() and dist.group.WORLD is self.world

    def _broadcast_ints(self, *values: int) -> list[int]:
        box = torch.tensor(values, dtype=torch.int64)
        dist.broadcast(box, src=0, group=self._group)
        return [int(v) for v in box.tolist()]  # a CPU tensor: no device synchronisation

    def enabled_on_rank0(self, enabled: bool) -> bool:
        """Rank 0's ``enabled`` on every rank (other ranks' argument is ignored)."""
        return bool(self._broadcast_ints(int(enabled))[0])

    def broadcast(self, requests: list[UpdateRequest]) -> list[UpdateRequest | None]:
        """Rank 0's ``requests`` on every rank (other ranks pass ``[]``), now: a synchronous exchange.

        A rank that cannot read the payload gets ``None`` in each place, so it still
        takes part in every request's :meth:`agree`. Raises :class:`NotSent` on rank 0
        (only) when the requests could not be encoded; every rank then got none.
        """
        payload, error = self._encode(requests)
        count, size = self._broadcast_ints(0 if error else len(requests), len(payload))
        received = self._receive(count, size, payload, requests)
        if error is not None:
            raise NotSent(f"{type(error).__name__}: {error}") from error
        return received

    def due(self, step: int) -> bool:
        """Whether the step boundary ``step`` collects the posted header and posts the next; no collective.

        The same answer on every rank: the boundaries were announced by earlier headers.
        """
        return self._posted is not None and step >= self._due

    def post(self, requests: list[UpdateRequest], step: int, *, first: bool = False, lost: bool = False) -> None:
        """Start sending rank 0's ``requests`` (other ranks pass ``[]``) to the next :meth:`collect`; no wait.

        Called at boundary ``step`` right after its :meth:`collect`, or with ``first`` at train
        begin: the header is then collected at the next boundary, and one still posted (by a
        ``train()`` that raised before collecting it) is dropped. Only the header goes now, as an
        asynchronous broadcast that travels while the next steps compute. Raises :class:`NotSent`
        on rank 0 (only) when the requests could not be encoded; the header then announces none,
        and the next :meth:`collect` returns none on every rank. ``lost`` (rank 0's): its source can no
        longer receive; the next :meth:`collect` sets :attr:`rank0_lost` to it on every rank.
        """
        if first:  # a header left in flight may still be written into: the run starts with a new one
            self._due, self._cadence, self._header = step + 1, _Cadence(), torch.zeros(_HEADER_SIZE, dtype=torch.int64)
            self.rank0_lost = False
        payload, error = self._encode(requests)
        header = self._header.numpy()  # numpy, not tensor indexing: a few µs less at every exchange
        if self.rank == 0:  # the others receive into it
            header[:] = (0 if error else len(requests), len(payload), self._cadence.gap(step), int(lost))
        # The process group's own asynchronous broadcast: ``dist.broadcast``'s checks cost more than the call
        # (about 40 µs of the training thread's CPU when cold, as it is after a step's compute).
        work = self._group.broadcast([self._header], self._header_options)
        self._posted = _Posted(work, header, payload, [] if error else list(requests))
        if error is not None:
            raise NotSent(f"{type(error).__name__}: {error}") from error

    def collect(self, step: int) -> list[UpdateRequest | None]:
        """What the previous :meth:`post` sent, on every rank, as :meth:`broadcast` returns it (``[]``: none posted).

        Waits for the header, which had at least a step to arrive; only when it announces
        requests does a second, synchronous broadcast carry them. The header also says which
        boundary collects the next one.
        """
        posted, self._posted = self._posted, None
        if posted is None:
            return []
        posted.work.wait()
        count, size, gap, lost = (int(v) for v in posted.header.tolist())  # a CPU tensor's view: no synchronisation
        self._due, self.rank0_lost = step + gap, bool(lost)
        return self._receive(count, size, posted.payload, posted.requests)

    def finish(self) -> list[UpdateRequest]:
        """Wait for a header still posted and drop it; on rank 0, the requests it announced, which no rank will apply.

        For the end of a run: no collective follows (every rank reads the same header, so
        none waits for a payload), and no work is left in flight.
        """
        posted, self._posted = self._posted, None
        if posted is None:
            return []
        posted.work.wait()
        return posted.requests

    def _encode(self, requests: list[UpdateRequest]) -> tuple[bytes, Exception | None]:
        """Rank 0's payload, encoded before any collective so that no failure comes between two of them."""
        if self.rank != 0 or not requests:
            return b"", None
        try:
            return _encode(requests), None
        except Exception as exc:  # nothing is sent, and every rank is told so by the header
            return b"", exc

    def _receive(
        self, count: int, size: int, payload: bytes, requests: list[UpdateRequest]
    ) -> list[UpdateRequest | None]:
        """The payload the header announced, broadcast now when it is not empty, decoded on every rank."""
        if size:
            box = torch.frombuffer(bytearray(payload), dtype=torch.uint8) if self.rank == 0 else None
            box = box if box is not None else torch.empty(size, dtype=torch.uint8)
            dist.broadcast(box, src=0, group=self._group)
            payload = box.numpy().tobytes()
        if self.rank == 0:
            return list(requests) if count else []
        try:
            return list(_decode(payload)) if count else []
        except Exception:
            logger.exception("reading the requests broadcast by rank 0 failed on rank %d", self.rank)
            return [None] * count

    def agree(self, outcome: UpdateOutcome) -> UpdateOutcome:
        """The outcome every rank reports for one request: applied only if it was applied on every rank.

        Otherwise the most severe verdict wins (failed over rejected; the lowest rank
        among equals), with the rank named when it is not rank 0. The usual case, applied
        everywhere, takes one exchange of a number per rank; the reasons follow only when a
        rank did not apply it (pickled objects cost about ten times more).
        """
        world = dist.get_world_size(self._group)
        applied = [torch.zeros(1, dtype=torch.int64) for _ in range(world)]
        dist.all_gather(applied, torch.tensor([int(outcome.status is OutcomeStatus.APPLIED)]), group=self._group)
        if all(int(box) for box in applied):
            return outcome
        verdicts: list[Any] = [None] * world
        dist.all_gather_object(verdicts, (outcome.status.value, outcome.reason), group=self._group)
        worst_rank, worst = 0, (OutcomeStatus(verdicts[0][0]), verdicts[0][1])
        for rank, (status, reason) in enumerate(verdicts):
            if _SEVERITY.get(OutcomeStatus(status), 0) > _SEVERITY.get(worst[0], 0):
                worst_rank, worst = rank, (OutcomeStatus(status), reason)
        status, reason = worst
        if status is OutcomeStatus.APPLIED:
            return outcome
        if worst_rank != 0:
            reason = f"on rank {worst_rank}: {reason}"
        return UpdateOutcome(outcome.request_id, status, step=outcome.step, reason=reason)
