"""The agent thread: its own asyncio loop running the supervisor, the re-reader and the outcome writer.

- The **supervisor** opens a :class:`Subscription`, watches its health every
  tick, probes the channel now and then (a probe answered late, by a server that
  was behind, brings push back without a rebuild), and when the client will not
  recover on its own throws it away and opens a new one, with exponential backoff
  and jitter, until shutdown.
- The **re-reader** reads the job's requests newer than the last one handled,
  over REST, after every confirmed (re)subscription (Realtime does not replay
  what it missed), every ``poll_interval`` while push is down (degraded), and,
  while push is up, when the heartbeat's answer (the job's newest request) shows
  that push missed one; ``resync_interval`` after the last read or answer as a
  safety net when no answer says so (an older database, a failing heartbeat);
  rate-limited with ``asyncio-throttle``. A read costs what is new, never the
  job's history.
- The **writer** (:class:`OutcomeWriter`) records outcomes.
- The **lifecycle** (:class:`Lifecycle`) is where the agent stands (starting, subscribed,
  degraded, …): the supervisor and the re-reader report what happened to it, and it alone
  decides the state and says so.
- The **heartbeat** records on the job row that a trainer is attached, then that it is
  alive (or paused), and at which step, every ``heartbeat_interval``, and at once when the
  trainer pauses or goes on, or has restarted in-process (where, and how long it took); on the
  way out, how it detached and at which step.

Nothing here is awaited by the training thread: it talks to this thread only
through the request queue, the outcome inbox and ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable

from asyncio_throttle import Throttler

from liveparams._supabase import quiet_client_task_failures
from liveparams.agent._config import AgentConfig
from liveparams.agent._credential import Credential
from liveparams.agent._exceptions import RestError, SubscriptionError
from liveparams.agent._intake import Intake
from liveparams.agent._lifecycle import AgentStatus, Lifecycle
from liveparams.agent._metrics import METRICS_EVENT, MetricsPublisher, metrics_topic
from liveparams.agent._outcomes import OutcomeWriter, backoff_delay
from liveparams.agent._realtime_internals import Internals
from liveparams.agent._rest import RestClient
from liveparams.agent._subscription import Health, Probe, Subscription
from liveparams.agent._waiting import wait_for_event
from liveparams.contract import RestartRecord

__all__ = ["Worker"]

logger = logging.getLogger(__name__)

TICK = 0.25  # supervisor period (seconds) while the subscription is not ready: how fast recovery is followed
CONFIRM_WAIT = 5.0  # joined but no "Subscribed to PostgreSQL" after this long: re-read and call it ready
SHUTDOWN_MARGIN = 0.15  # of close()'s budget, kept for tearing the loop down after the flush
RUN_ENDS = ("completed", "stopped")  # the detach reasons that end the job's run (docs/contracts.md, "Runs")
REREADS_PER_SECOND = 2
SLOW_READ_FACTOR = 10  # while degraded, a read that took t seconds is followed by at least 10·t of quiet


class Worker:
    """Owns the agent thread and everything that runs on it.

    Args:
        config (`AgentConfig`): the job, the key and the timings.
    """

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.lifecycle = Lifecycle(config, resync=self._request_resync)
        self._internals = Internals(config)  # what the installed realtime client lets the supervisor see
        self.credential = Credential(config)
        self.credential.on_token(self._hand_token)
        self._subscription: Subscription | None = None
        self._rest = RestClient(config, self.credential)
        self.writer = OutcomeWriter(
            self._rest.record_outcomes,
            batch_size=config.outcome_batch_size,
            writes_per_second=config.outcome_writes_per_second,
            backoff_initial=config.backoff_initial,
            backoff_max=config.backoff_max,
        )
        self.intake = Intake(
            queue_size=config.queue_size,
            max_request_bytes=config.max_request_bytes,
            reject=lambda outcome: self.writer.submit([outcome]),
            resync=self._request_resync,
        )
        self.metrics = self._metrics_publisher() if config.metrics else None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="liveparams.agent", daemon=True)
        # asyncio.Event binds to a loop on first use, so these can be made here and used there.
        self._stop = asyncio.Event()
        self._resync = asyncio.Event()
        self._news = asyncio.Event()  # the heartbeat says it now rather than at its next beat
        self._paused_at: int | None = None  # the step training holds at (command=pause), else None
        # The trainer's step, written by the training thread at each step boundary (record_step) and read
        # by the heartbeat when it beats: no wakeup per step. An int's write is atomic under the GIL.
        self.step: int | None = None
        self._checked_at = 0.0  # when a read or the heartbeat's answer last showed what push may have missed
        self._poll_wait = config.poll_interval  # the next wait between two re-reads while degraded (_pace)
        self._failed_reads = 0
        self._restart: RestartRecord | None = None  # the last in-process restart done, until it is stored
        self._deadline = 0.0
        self._end: tuple[str, int | None] = ("closed", None)  # how the trainer detaches, when close() says nothing

    # -- called from other threads -------------------------------------------------------------

    def start(self, replay_after_step: int | None = None) -> None:
        """Start the thread (once); returns at once, the network is only touched on the thread.

        ``replay_after_step``: training resumed from a checkpoint at this step (see ``UpdateAgent.start``).
        """
        self.intake.replay_applied_after(replay_after_step)  # before the thread: its first scan must see it
        self.lifecycle.start()
        self.loop = asyncio.new_event_loop()
        quiet_client_task_failures(self.loop)
        self._thread.start()

    def record_end(self, reason: str, step: int | None) -> None:
        """Say how training ended (completed, stopped, crashed) and at which step, for the job row at stop()."""
        self._end = (reason, step)

    def stop(self, timeout: float) -> bool:
        """Ask the thread to flush and exit within ``timeout`` seconds; return whether it did."""
        self._deadline = time.monotonic() + timeout
        self.call_soon(self._stop.set)
        if threading.current_thread() is self._thread:  # close() from a callback on this thread: cannot wait
            return False
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def receiving(self) -> bool:
        """Whether a request made now can still be queued: the thread runs, the credential stands, the job is there.

        Attribute reads only (the training thread asks at every round of a pause). A job the last read did
        not find stays missing until a read finds it again, which a deleted job's never does. A fixed token
        past its expiry cannot be refreshed: nothing can be read with it any more.
        """
        credential = self.credential
        alive = self._thread.is_alive() and not (credential.revoked or credential.expired)
        return alive and not self.lifecycle.job_missing

    def record_pause(self, step: int | None) -> None:
        """Training holds at ``step`` (None: it goes on); the heartbeat records it at once."""

        def take() -> None:
            self._paused_at = step
            self._news.set()

        self.call_soon(take)

    def record_restart(self, record: RestartRecord) -> None:
        """An in-process restart or rewind is done; the heartbeat records it at once."""

        def take() -> None:
            self._restart = record
            self._news.set()

        self.call_soon(take)

    def call_soon(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` on the agent loop; ignored before start and once the loop has closed."""
        if self.loop is not None:
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(callback)

    # -- the thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        loop = self.loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        except Exception:
            logger.exception("The liveparams agent thread failed; runtime parameter updates stopped")
        finally:
            for task in asyncio.all_tasks(loop):
                task.cancel()
            with contextlib.suppress(Exception):
                loop.run_until_complete(asyncio.sleep(0))
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self.lifecycle.close()

    async def _main(self) -> None:
        self._resync.set()  # read at once: requests made before start() need no push
        self.credential.warn_if_expiring()
        writer = asyncio.create_task(self.writer.run(), name="liveparams.outcomes")
        senders = [writer]  # cancelled first at stop, then flushed
        if self.metrics is not None:
            senders.append(asyncio.create_task(self.metrics.run(), name="liveparams.metrics"))
        others = [
            asyncio.create_task(self._supervise(), name="liveparams.supervisor"),
            asyncio.create_task(self._reread_loop(), name="liveparams.reread"),
            asyncio.create_task(self._heartbeat(), name="liveparams.heartbeat"),
            asyncio.create_task(self.credential.run(), name="liveparams.credential"),
        ]
        await self._stop.wait()
        deadline = self._deadline - SHUTDOWN_MARGIN
        # flush() needs run() stopped: both would otherwise write the same batch at once.
        await _cancel_all(senders, deadline - time.monotonic())
        budget = deadline - time.monotonic()
        left, *_ = await asyncio.gather(
            self.writer.flush(budget),
            _cancel_all(others, budget),
            *([self.metrics.flush(budget)] if self.metrics else []),
        )
        if left:
            self._keep_run_open(left, budget)
        await self._detach(deadline)  # after the flush: a run's end cancels what has no outcome on its row
        await self._rest.aclose()

    def _metrics_publisher(self) -> MetricsPublisher:
        topic, rest = metrics_topic(self.config.job_id), self._rest
        return MetricsPublisher(
            lambda points: rest.broadcast(topic, METRICS_EVENT, {"points": points}),
            rest.record_metrics,
            self.config.metrics_live_interval,
            self.config.metrics_history_interval,
        )

    # -- the trainer's attachment -------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        attached, failures, can_pause = False, 0, True
        while not self._stopped_by_revocation():
            self._news.clear()
            state, step = "attached", self.step  # attaching clears a pause left on the row by an earlier run
            if attached:
                paused = self._paused_at is not None and can_pause
                state, step = ("paused", self._paused_at) if paused else ("alive", self.step)
            try:
                latest = await self._rest.record_trainer_state(state, step)
            except Exception as exc:  # a refusal, the network, or a bug: the heartbeat is informative, go on
                failures += 1
                (logger.warning if failures == 1 else logger.debug)("Could not record the trainer's state: %s", exc)
                transient = isinstance(exc, RestError) and exc.transient
                # A database without `paused` (before 20261207020000_pause_resume.sql): say alive instead,
                # or the paused trainer would look gone once its heartbeat goes stale.
                can_pause = can_pause and (transient or state != "paused")
                wait = backoff_delay(failures, self.config.backoff_initial, self.config.backoff_max)
                await asyncio.sleep(wait if transient else self.config.heartbeat_interval)
                continue
            attached, failures = True, 0
            self._check_latest(latest)
            await self._send_restart()
            await wait_for_event(self._news, self.config.heartbeat_interval)

    async def _send_restart(self) -> None:
        """Store the last restart done on the job row; kept for the next beat while the failure is transient."""
        record = self._restart
        if record is None:
            return
        try:
            await self._rest.record_trainer_restart(record)
        except Exception as exc:  # informative, like the heartbeat: training goes on whatever happens
            if isinstance(exc, RestError) and exc.transient:
                logger.debug("Could not record the trainer's restart yet: %s", exc)
                return
            # A database without it (before 20261207040000_restart_record.sql), or a bug: said once, dropped.
            logger.warning("Could not record the trainer's restart: %s", exc)
        if self._restart is record:  # a newer one may have come while this was sent
            self._restart = None

    def _check_latest(self, latest: int | None) -> None:
        """The heartbeat's answer, the job's newest request: re-read if push missed one.

        This stands in for a re-read on a timer while push is up: a request push lost is read
        one heartbeat later, and an idle agent makes one call where it made two.
        """
        intake = self.intake
        if latest is None or intake.after_seq is None:  # an older database (timed re-reads stay); no read yet
            return
        if latest > intake.after_seq and not intake.backlogged:  # a backlog is read once the trainer drains
            self._request_resync()
        self._checked_at = time.monotonic()

    def _keep_run_open(self, left: int, budget: float) -> None:
        """``left`` outcomes were not recorded: detach without ending the run, whose end would mark their
        requests "cancelled: not applied" for good, though the trainer decided them (applied, most often).

        ``closed`` keeps them undecided: a resumed run gets them again (and reports what its
        checkpoint recorded of them); ``liveparams job end`` ends the run if none will.
        """
        reason, step = self._end
        ending = reason in RUN_ENDS
        if ending:
            self._end = ("closed", step)
        logger.warning(
            "Closing: %d outcomes could not be recorded within %.1fs; their requests stay pending on the job's rows%s",
            left,
            budget,
            f" and the run is not ended (the trainer detaches as closed, not {reason}): a resumed run gets them "
            "again, or `liveparams job end JOB` ends the run"
            if ending
            else "",
        )

    async def _detach(self, deadline: float) -> None:
        """Record how the trainer detached, with what is left of close()'s budget (a revoked credential cannot)."""
        if self.credential.revoked:
            return
        reason, step = self._end
        waiter = asyncio.ensure_future(self._rest.record_trainer_state(reason, step))
        done, _ = await asyncio.wait({waiter}, timeout=max(deadline - time.monotonic(), 0.05))
        if not done:
            waiter.cancel()
            logger.warning("Closing: could not record that the trainer detached (%s) in time", reason)
        elif waiter.exception() is not None:
            logger.warning("Closing: could not record that the trainer detached (%s): %s", reason, waiter.exception())

    # -- supervision ------------------------------------------------------------------------------

    async def _supervise(self) -> None:
        failures = 0
        while not self._stopped_by_revocation():
            subscription = Subscription(
                self.config,
                self.intake.on_change,
                on_broadcast=self.intake.on_broadcast,
                on_joined=self._request_resync,
                on_database_ready=self._on_database_ready,
                credential=self.credential,
                internals=self._internals,
                server_answered_at=lambda: self._rest.answered_at,
            )
            self._subscription = subscription
            try:
                await subscription.open()
                reason = await self._watch(subscription)
                logger.info("Realtime subscription lost (%s); rebuilding it", reason)
                failures = 0 if self.lifecycle.status is AgentStatus.SUBSCRIBED else failures
            except SubscriptionError as exc:
                reason = str(exc)
                logger.debug("Realtime subscription failed: %s", reason)
            except Exception as exc:  # a bug here or in the client: rebuild as after any failure
                logger.exception("Realtime subscription failed unexpectedly")
                reason = f"{type(exc).__name__}: {exc}"
            finally:
                self._subscription = None
                await subscription.close()
            if self._stopped_by_revocation():
                return
            failures += 1
            self._degrade(reason)
            await asyncio.sleep(backoff_delay(failures, self.config.backoff_initial, self.config.backoff_max))

    async def _watch(self, subscription: Subscription) -> str:
        """Return why ``subscription`` must be replaced, once it must."""
        cfg = self.config
        last_probe = joined_at = time.monotonic()
        health = Health.JOINED
        while True:
            if health is Health.READY:  # idle: wake for a change of the client's state or the next probe only
                await subscription.wait_for_change(last_probe + cfg.probe_interval - time.monotonic())
            else:
                await asyncio.sleep(TICK)
            health = subscription.health()
            now = time.monotonic()
            if health is Health.DEAD:
                return subscription.reason
            if health is Health.RECOVERING:
                self._degrade(subscription.reason)
                joined_at = now
                continue
            if health is Health.JOINED and self.lifecycle.awaiting_confirmation and now - joined_at > CONFIRM_WAIT:
                logger.debug("No 'Subscribed to PostgreSQL' after %.0fs; re-reading anyway", CONFIRM_WAIT)
                self._on_database_ready()
                joined_at = now
            if now - last_probe >= cfg.probe_interval:
                probe = await subscription.probe(self._degrade)
                if probe is Probe.UNANSWERED:
                    return subscription.reason
                if probe is Probe.LATE and subscription.health() is Health.READY:
                    self._on_database_ready()  # alive after all: re-read, and that read makes the agent ready
                last_probe = time.monotonic()

    async def _hand_token(self, access_token: str) -> None:
        """A refreshed trainer session: the open channel gets the new token before the old one expires."""
        subscription = self._subscription
        if subscription is not None:
            await subscription.set_auth(access_token)

    def _stopped_by_revocation(self) -> bool:
        """Whether the credential was revoked; then the agent says so and stops receiving (training goes on)."""
        if not self.credential.revoked:
            return False
        self.lifecycle.revoke()
        return True

    def _on_database_ready(self) -> None:
        """Subscription callback, push delivers from now on: re-read, and that read makes the agent ready."""
        self.lifecycle.confirmed()
        self._request_resync()

    def _degrade(self, reason: str) -> None:
        if not self._stopped_by_revocation():
            self.lifecycle.push_down(reason)

    # -- re-reading -------------------------------------------------------------------------------

    def _request_resync(self) -> None:
        self._resync.set()

    async def _reread_loop(self) -> None:
        throttler = Throttler(rate_limit=REREADS_PER_SECOND, period=1.0)
        while not self._stopped_by_revocation():
            ready = self.lifecycle.ready.is_set()
            await wait_for_event(self._resync, self._safety_wait() if ready else self._poll_wait)
            if ready and not self._resync.is_set() and self._safety_wait() > 0:
                continue  # the heartbeat answered meanwhile: push missed nothing
            self._resync.clear()
            self._checked_at = time.monotonic()
            async with throttler:
                answered, began = False, time.monotonic()
                try:
                    answered = await self._reread()
                except Exception:  # keep polling whatever one read did
                    logger.exception("Re-reading the job's requests failed unexpectedly")
                self._pace(answered, time.monotonic() - began)

    def _pace(self, answered: bool, took: float) -> None:
        """Space the re-reads made while push is down by how the server is doing.

        Push goes down for many trainers at once when the server stalls or is overloaded, and each
        then polls: a thousand trainers every ``poll_interval`` (2 s) are twelve times the load of
        their heartbeats, arriving just when the server can least take it, which keeps it down. So
        a read that got no answer doubles the wait (with jitter, up to ``backoff_max``), and one
        that answered slowly waits ``SLOW_READ_FACTOR`` times as long as it took. A healthy server
        (a read in milliseconds) is polled every ``poll_interval``, as before.
        """
        cfg = self.config
        self._failed_reads = 0 if answered else self._failed_reads + 1
        if self._failed_reads:
            wait = backoff_delay(self._failed_reads + 1, cfg.poll_interval, cfg.backoff_max)
        else:
            wait = min(SLOW_READ_FACTOR * took, cfg.backoff_max)
        self._poll_wait = max(wait, cfg.poll_interval)

    def _safety_wait(self) -> float:
        """Seconds left before the safety re-read: ``resync_interval`` after the last read or heartbeat answer."""
        return max(self._checked_at + self.config.resync_interval - time.monotonic(), 0.0)

    async def _reread(self) -> bool:
        """Read what push may have missed; whether the server answered."""
        read = self.lifecycle.begin_read()
        logger.debug("Checking for updates…")
        intake = self.intake
        limit = intake.read_limit
        try:
            result = await self._rest.read_requests(intake.after_seq, intake.replay_after_step, limit)
        except RestError as exc:
            self.lifecycle.read_failed(exc)
            return False
        if result is None:
            self.lifecycle.read_found_no_job()
        else:
            self.lifecycle.read_done(read, complete=intake.ingest_read(result, limit))
        return True


async def _cancel_all(tasks: list[asyncio.Task[None]], timeout: float) -> None:
    """Cancel ``tasks`` and wait at most ``timeout`` for them, cancelling again any that shrugged it off.

    A cancellation can be lost inside third-party code (``asyncio.wait_for`` on Python < 3.12), so
    one ``cancel()`` is not enough to guarantee close() keeps its deadline.
    """
    deadline = time.monotonic() + max(timeout, 0.0)
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=min(0.05, max(deadline - time.monotonic(), 0.0)))
        if time.monotonic() >= deadline:
            return
