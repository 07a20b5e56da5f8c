"""The one thing the callback needs from the outside world: a queue of requests.

``trainer_hooks`` never talks to Supabase or websockets. It drains whatever
implements :class:`UpdateSource` (``liveparams.agent.UpdateAgent`` in production, an
in-memory double in tests) and hands outcomes back to it. The protocol is
part of docs/contracts.md; change both together.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from liveparams.contract._messages import UpdateOutcome, UpdateRequest

__all__ = ["DRAIN_MAX_ITEMS", "END_REASONS", "TRACKER_PREFIX", "UpdateSource"]

# Most requests one drain hands over: what the callback takes per step boundary unless told otherwise.
DRAIN_MAX_ITEMS = 64

# How a training run can end, as the job row shows it: the run reached its end, a request
# (`command=stop`) stopped it, ``train()`` raised, or Ctrl-C interrupted it. Only the first two end
# the job's run (its pending requests get their final outcome; docs/contracts.md). A killed process
# says nothing (its Presence leaves, its heartbeat goes stale); a source closed without a reason
# records "closed".
END_REASONS = ("completed", "stopped", "crashed", "interrupted")

# The callback logs each applied change to the user's trackers as `liveparams/<parameter>`; those
# scalars are markers, not metrics of the run, so the live metrics leave them out.
TRACKER_PREFIX = "liveparams/"


@runtime_checkable
class UpdateSource(Protocol):
    """Where validated requests come from and where outcomes go.

    Every method is called from the training thread, so none may block on the
    network: ``drain`` and ``report`` only touch in-process queues.

    Outside the protocol, so that a source written before it still type-checks, the callback
    also calls ``record_pause(step: int | None) -> None`` when the source has one: when
    ``command=pause`` begins to hold training at ``step``, and with None when it goes on. It must
    return at once; whoever watches the job then sees it paused, and where (the agent has it).
    Likewise ``record_restart(record: RestartRecord) -> None``, once the first step after an
    in-process restart or a rewind begins, and ``record_step(step: int) -> None`` at the start of
    a run and at every step boundary: it is on training's hot path, so it must only note the step
    (the agent's heartbeat sends the last one noted). And a property ``receiving -> bool``: whether
    a request made now can still reach :meth:`drain` (False once the source is closed, its
    credential revoked, its job gone). The callback reads it at every round of a pause, so it must
    be an attribute read, never a call over the network: a pause that no ``resume`` can reach any
    more ends (training goes on) instead of holding for ever. A source without it is taken to
    receive while it is open.
    """

    def start(self, replay_after_step: int | None = None) -> None:
        """Begin receiving requests; idempotent and non-blocking.

        ``replay_after_step=S`` says training resumed from a checkpoint at global step S:
        the checkpoint rewound the run past the requests applied after S, so the source
        delivers those once more (besides everything still undecided, which includes a request
        whose outcome was lost before it was recorded). Requests applied at or before S are
        in the checkpoint and need not be delivered again.
        """

    @property
    def job_id(self) -> str | None:
        """The job whose requests this source delivers: the ``seq`` numbers count that job's requests.

        A checkpoint's record of what was decided holds only for the job it was written for.
        """

    def wait_initial_read(self, timeout: float | None = None) -> bool:
        """Wait at most ``timeout`` seconds for the initial read; return whether it happened in time.

        After it returns True, every request stored before :meth:`start` (including those
        to replay after a resume) is queued for :meth:`drain`. The callback calls it once
        after starting a resumed run, so the replayed settings apply before the first
        resumed step; a False return is logged and training goes on (they then apply at
        the first step boundary after they arrive). A fresh start does not call it.
        """
        ...

    def record_end(self, reason: str, step: int | None = None) -> None:
        """Say how training ended (one of :data:`END_REASONS`) and at which step; returns at once.

        Called once, just before :meth:`close`, so that whoever watches the job sees that the
        trainer detached, how and where.
        """

    def close(self, timeout: float | None = None) -> None:
        """Stop, flushing reported outcomes for at most ``timeout`` seconds (None: the source's own default)."""

    def drain(self, max_items: int = DRAIN_MAX_ITEMS) -> list[UpdateRequest]:
        """Return up to ``max_items`` queued requests in request order, without waiting."""
        ...

    def report(self, outcomes: Iterable[UpdateOutcome]) -> None:
        """Hand outcomes over for recording; returns at once."""

    def publish_metrics(self, step: int, metrics: Mapping[str, Any]) -> None:
        """Hand over what the trainer logged at ``step`` (``on_log``'s dict) for the job's owner; returns at once.

        It must only enqueue, into a bounded queue: sending is the source's business, on its own
        thread, and a point that cannot be sent is dropped. Optional for a custom source: the
        callback skips a source without it.
        """
