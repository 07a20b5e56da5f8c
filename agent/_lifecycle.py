"""Where the agent stands: one state machine, and the bookkeeping of the re-reads that move it.

The states are :class:`AgentStatus`. Only :meth:`Lifecycle._move` changes the state, and it says
why, at the level the change deserves (the user-facing lines are INFO or WARNING, the rest DEBUG).
The moves (anything else is ignored, which is how a late event cannot revive a closed agent)::

    from          event                                        to          logged
    ------------  -------------------------------------------  ----------  -------------------------------------
    NOT_STARTED   start()                                      STARTING    DEBUG
    STARTING      a re-read after a confirmation, push still   SUBSCRIBED  INFO "Listening for runtime parameter
                  up                                                       updates on job %s"
    DEGRADED      idem                                         SUBSCRIBED  INFO "Realtime push restored"
    STARTING or   push down (a join failed, the client was     DEGRADED    WARNING "Realtime push is down (%s);
    SUBSCRIBED    lost, it is recovering)                                  degraded: polling …"
    STARTING,     the trainer credential was revoked           REVOKED     DEBUG (the credential says it once)
    SUBSCRIBED or
    DEGRADED
    any but       the agent thread ended                       CLOSED      DEBUG
    CLOSED

A **confirmation** is "Subscribed to PostgreSQL" (or a join that stayed quiet for a while): from
then on push delivers, but what was committed before it may never be pushed (Realtime does not
replay), so the agent is SUBSCRIBED only once a re-read *begun after* the confirmation has
queued the job's requests, and only if push did not go down in between. A re-read carries a
:class:`Reread` ticket saying what it can vouch for; a read that fails changes nothing, so the
next one vouches for the same confirmation.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import threading
from collections.abc import Callable

from liveparams.agent._config import AgentConfig
from liveparams.agent._exceptions import RestError

__all__ = ["AgentStatus", "Lifecycle", "Reread"]

logger = logging.getLogger(__name__)


class AgentStatus(str, enum.Enum):
    """Where the agent stands, as ``UpdateAgent.status`` reports it."""

    NOT_STARTED = "not_started"
    STARTING = "starting"  # thread running, first subscription not yet confirmed
    SUBSCRIBED = "subscribed"  # push is healthy and the requests were re-read after it was confirmed
    DEGRADED = "degraded"  # push is down; the job's requests are polled over REST
    REVOKED = "revoked"  # the trainer credential was revoked: nothing more is received or recorded
    CLOSED = "closed"


_S = AgentStatus
_MOVES: dict[AgentStatus, frozenset[AgentStatus]] = {  # the table above, as data
    _S.NOT_STARTED: frozenset({_S.STARTING}),
    _S.STARTING: frozenset({_S.SUBSCRIBED, _S.DEGRADED, _S.REVOKED, _S.CLOSED}),
    _S.SUBSCRIBED: frozenset({_S.DEGRADED, _S.REVOKED, _S.CLOSED}),
    _S.DEGRADED: frozenset({_S.SUBSCRIBED, _S.REVOKED, _S.CLOSED}),
    _S.REVOKED: frozenset({_S.CLOSED}),
    _S.CLOSED: frozenset(),
}


@dataclasses.dataclass(frozen=True)
class Reread:
    """A re-read in flight: whether it began after push was confirmed, and under which push."""

    after_confirmation: bool
    push_epoch: int


class Lifecycle:
    """The agent's state, the two events other threads wait on, and what the re-reads have found.

    Used on the agent thread, except :meth:`start` (before the thread runs) and the reads of
    :attr:`status`, :attr:`ready` and :attr:`initial_read` from any thread.

    Args:
        config (`AgentConfig`): the job (named in the log) and the polling interval (idem).
        resync (`Callable[[], None]`): asks for a re-read now; called when push goes down, so that
            polling starts at once rather than after the re-reader's current wait.
    """

    def __init__(self, config: AgentConfig, resync: Callable[[], None]) -> None:
        self._config = config
        self._resync = resync
        self.status = AgentStatus.NOT_STARTED
        self.ready = threading.Event()  # set exactly while SUBSCRIBED
        self.initial_read = threading.Event()  # the requests stored before start() are queued
        self._push_epoch = 0  # bumped whenever push goes down: what began before proves nothing after
        self._confirmed = False  # push was confirmed in this epoch
        self._rest_failing = False  # the last re-read failed: the outage was already reported
        self._row_missing = False  # the last re-read found no job: that was already reported

    # -- events ---------------------------------------------------------------------------------

    def start(self) -> None:
        """The thread is about to run."""
        self._move(AgentStatus.STARTING, "start() was called")

    def confirmed(self) -> None:
        """Push is confirmed: the next re-read that queues the requests makes the agent SUBSCRIBED."""
        self._confirmed = True

    @property
    def job_missing(self) -> bool:
        """Whether the last answered read found no job (deleted, or not readable with this key any more)."""
        return self._row_missing

    @property
    def awaiting_confirmation(self) -> bool:
        """Not SUBSCRIBED, and push not confirmed since it last went down."""
        return self.status is not AgentStatus.SUBSCRIBED and not self._confirmed

    def push_down(self, reason: str) -> None:
        """Push is down (or recovering): its confirmation is void, and polling starts."""
        self._confirmed = False
        self._push_epoch += 1
        if self._move(AgentStatus.DEGRADED, reason):
            self._resync()  # the re-reader may be sleeping resync_interval: start polling now

    def revoke(self) -> None:
        """The trainer credential was revoked: nothing more is received or recorded."""
        self._move(AgentStatus.REVOKED, "the trainer credential was revoked")

    def close(self) -> None:
        """The agent thread ended."""
        self._move(AgentStatus.CLOSED, "the agent thread ended")

    # -- re-reads -------------------------------------------------------------------------------

    def begin_read(self) -> Reread:
        """A re-read starts: what it can vouch for once it answers."""
        return Reread(self._confirmed, self._push_epoch)

    def read_failed(self, error: RestError) -> None:
        """The read got no answer (it spends nothing); said once per outage, not when push already said so."""
        same_outage = self._rest_failing or (error.transient and self.status is AgentStatus.DEGRADED)
        (logger.debug if same_outage else logger.warning)("Could not read the job's requests: %s", error)
        self._rest_failing = True

    def read_found_no_job(self) -> None:
        """The read answered that the job does not exist (or is not readable); said once until it is."""
        self._rest_failing = False
        if not self._row_missing:
            logger.warning("Job %s not found, or not readable with this key", self._config.job_id)
        self._row_missing = True

    def read_done(self, read: Reread, complete: bool) -> None:
        """The read's rows are handed on (``complete``: nothing newer is left unread)."""
        self._rest_failing = self._row_missing = False
        if complete:
            self.initial_read.set()
        if read.after_confirmation and read.push_epoch == self._push_epoch:
            self._move(AgentStatus.SUBSCRIBED, "the requests were re-read after push was confirmed")

    # -- the one place the state changes ---------------------------------------------------------

    def _move(self, to: AgentStatus, why: str) -> bool:
        """Change the state to ``to`` if the table allows it, and say so; return whether it changed."""
        before = self.status
        if to not in _MOVES[before]:
            if to is not before:
                logger.debug("Agent stays %s (not %s): %s", before.value, to.value, why)
            return False
        self.status = to
        if to is AgentStatus.SUBSCRIBED:
            self.ready.set()
        else:
            self.ready.clear()
        if to is AgentStatus.DEGRADED:
            logger.warning(
                "Realtime push is down (%s); degraded: polling the job's requests every %gs until it is back",
                why,
                self._config.poll_interval,
            )
        elif to is AgentStatus.SUBSCRIBED and before is AgentStatus.DEGRADED:
            logger.info("Realtime push restored")
        elif to is AgentStatus.SUBSCRIBED:
            logger.info("Listening for runtime parameter updates on job %s", self._config.job_id)
        else:
            logger.debug("Agent %s -> %s: %s", before.value, to.value, why)
        return True
