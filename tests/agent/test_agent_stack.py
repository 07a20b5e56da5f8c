"""The agent against the stack: real PostgreSQL, the stack's REST and Realtime, the unmodified official clients.

The agent authenticates with a job-scoped token (the production path). Requests are made
through the RPC as the job's owner. Every scenario checks the user-visible result: which
requests ``drain()`` returned, in which order, and what the row says.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from presence_helpers import presence_watch, sees_a_trainer
from realtime import RealtimeSubscribeStates
from websockets.protocol import State

from liveparams._views import trainer_attachment
from liveparams.agent import AgentConfig, AgentStatus, Transport, UpdateAgent, request_identity
from liveparams.agent import _realtime_internals as internals
from liveparams.agent._job_channel import POLICIES_MIGRATION
from liveparams.agent._subscription import Health, Subscription
from liveparams.contract import Change, OutcomeStatus, UpdateOutcome

pytestmark = pytest.mark.stack

DELIVERY_TIMEOUT_S = 20.0
QUIET_S = 1.0  # after the expected requests arrived, how long to watch for duplicates
REPO = Path(__file__).resolve().parents[2]

# Fast timings, so that every recovery path runs within a few seconds.
FAST: dict[str, Any] = {
    "poll_interval": 0.5,
    "resync_interval": 2.0,
    "probe_interval": 0.5,
    "probe_timeout": 1.0,
    "recovery_grace": 3.0,
    "backoff_initial": 0.1,
    "backoff_max": 1.0,
}


@pytest.fixture
def job(new_user: Callable[[], tuple[str, str]], new_job: Callable[..., str]) -> tuple[str, str]:
    """(job id, owner's JWT) of a fresh running job."""
    owner_id, owner_jwt = new_user()
    return new_job(owner_id), owner_jwt


# The delivery tests run with both transports; the rest with the default only (the suite's time).
TRANSPORTS = pytest.mark.parametrize("transport", list(Transport), ids=[t.value for t in Transport])


@pytest.fixture
def transport() -> Transport:
    """How make_agent's agents receive requests; TRANSPORTS parametrizes it."""
    return Transport.POSTGRES_CHANGES


@pytest.fixture
def make_agent(
    stack_env: dict[str, str], job_token: Callable[[str], str], transport: Transport
) -> Iterator[Callable[..., UpdateAgent]]:
    """``make_agent(job_id, **config)``: an UpdateAgent on the job token (``url`` may be overridden), closed after."""
    agents: list[UpdateAgent] = []

    def make(job_id: str, **overrides: Any) -> UpdateAgent:
        connection = {"job_id": job_id, "url": stack_env["API_URL"], "key": job_token(job_id), "transport": transport}
        config = AgentConfig(**(connection | FAST | overrides))
        agents.append(UpdateAgent(config))
        return agents[-1]

    yield make
    for agent in agents:
        agent.close()


@pytest.fixture
def outcomes(service_http: httpx.Client) -> Callable[[str], dict[str, dict[str, Any]]]:
    """``outcomes(job_id)``: request id -> its recorded outcome (decided requests only), read with the service role."""

    def read(job_id: str) -> dict[str, dict[str, Any]]:
        response = service_http.get(
            "/rest/v1/parameter_update_requests",
            params={"job_id": f"eq.{job_id}", "status": "not.is.null", "select": "*", "order": "seq"},
        )
        response.raise_for_status()
        return {row["id"]: row for row in response.json()}

    return read


@pytest.fixture
def row(service_http: httpx.Client) -> Callable[[str], dict[str, Any]]:
    """``row(job_id)``: the job row as stored, read with the service role."""

    def read(job_id: str) -> dict[str, Any]:
        response = service_http.get("/rest/v1/local_training_jobs", params={"id": f"eq.{job_id}", "select": "*"})
        response.raise_for_status()
        result: dict[str, Any] = response.json()[0]
        return result

    return read


def collect(agent: UpdateAgent, count: int, timeout: float = DELIVERY_TIMEOUT_S) -> list[str]:
    """Drain until ``count`` requests arrived (or the timeout), then watch a little longer for extras."""
    ids: list[str] = []
    deadline = time.monotonic() + timeout
    while len(ids) < count and time.monotonic() < deadline:
        ids += [request.id for request in agent.drain()]
        time.sleep(0.01)
    quiet_until = time.monotonic() + QUIET_S
    while time.monotonic() < quiet_until:
        ids += [request.id for request in agent.drain()]
        time.sleep(0.01)
    return ids


def wait_for(predicate: Callable[[], bool], timeout: float = DELIVERY_TIMEOUT_S) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def stall_until_degraded(agent: UpdateAgent, faults: Callable[..., dict[str, Any]]) -> str:
    """Once the agent is ready, stall its socket (the server neither reads nor writes it) and wait until it polls
    instead (its probe went unanswered); return the socket's topic."""
    assert agent.wait_ready(DELIVERY_TIMEOUT_S)
    topic = f"realtime:{agent.config.topic}"
    assert faults("stall_sockets", topic=topic)["affected"] == 1
    assert wait_for(lambda: agent.status is AgentStatus.DEGRADED, 10)
    return topic


def push_delivers(agent: UpdateAgent, request_update: Callable[..., dict[str, Any]], owner: str, steps: int) -> bool:
    """Once the agent is ready again, a new request reaches it, once."""
    assert agent.wait_ready(DELIVERY_TIMEOUT_S)
    request_id = request_update(owner, agent.job_id, {"max_steps": steps})["id"]
    return collect(agent, 1) == [request_id]


def agent_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "liveparams.agent"]


@TRANSPORTS
def test_requests_before_start_and_while_subscribing_arrive_once_in_order(
    job: tuple[str, str], make_agent: Callable[..., UpdateAgent], request_update: Callable[..., dict[str, Any]]
) -> None:
    job_id, owner = job
    before = [request_update(owner, job_id, {"learning_rate": 1e-4})["id"] for _ in range(2)]
    agent = make_agent(job_id)
    agent.start()
    joining = request_update(owner, job_id, {"weight_decay": 0.01})["id"]  # lands somewhere in the join
    assert agent.wait_ready(DELIVERY_TIMEOUT_S)
    assert agent.status is AgentStatus.SUBSCRIBED
    after = [request_update(owner, job_id, {"max_grad_norm": float(i + 1)})["id"] for i in range(3)]
    assert collect(agent, 6) == [*before, joining, *after]


@TRANSPORTS
def test_a_request_is_pushed_not_found_by_a_re_read(
    job: tuple[str, str], make_agent: Callable[..., UpdateAgent], request_update: Callable[..., dict[str, Any]]
) -> None:
    job_id, owner = job
    agent = make_agent(job_id, resync_interval=600.0)  # the next safety re-read is far off: only push can bring it
    with agent:
        assert agent.wait_ready(DELIVERY_TIMEOUT_S)
        stored = request_update(owner, job_id, {"learning_rate": 5e-5})
        assert collect(agent, 1, timeout=5.0) == [stored["id"]]


def test_the_request_arrives_as_validated_values(
    job: tuple[str, str], make_agent: Callable[..., UpdateAgent], request_update: Callable[..., dict[str, Any]]
) -> None:
    job_id, owner = job
    agent = make_agent(job_id)
    with agent:
        assert agent.wait_ready(DELIVERY_TIMEOUT_S)
        stored = request_update(owner, job_id, {"learning_rate": 5e-5, "learning_rate_mode": "constant"})
        assert wait_for(lambda: not agent._worker.intake.queue.empty())
        (request,) = agent.drain()
    assert request.id == stored["id"] and request.requested_at == stored["requested_at"]
    assert request.params == {"learning_rate": 5e-5, "learning_rate_mode": "constant"}


def test_outcomes_are_recorded_on_the_row_and_a_resumed_run_skips_them_unless_rewound(
    job: tuple[str, str],
    make_agent: Callable[..., UpdateAgent],
    request_update: Callable[..., dict[str, Any]],
    outcomes: Callable[[str], dict[str, dict[str, Any]]],
) -> None:
    job_id, owner = job
    early = request_update(owner, job_id, {"weight_decay": 0.05})["id"]
    first = request_update(owner, job_id, {"learning_rate": 5e-5})["id"]
    second = request_update(owner, job_id, {"learning_rate": 2e-5})["id"]
    agent = make_agent(job_id)
    with agent:
        assert collect(agent, 3) == [early, first, second]
        agent.report(
            [
                UpdateOutcome(early, OutcomeStatus.APPLIED, step=5),
                UpdateOutcome(first, OutcomeStatus.SUPERSEDED, step=12, superseded_by=second, reason="replaced"),
                UpdateOutcome(second, OutcomeStatus.APPLIED, step=12, changes={"learning_rate": Change(1e-4, 2e-5)}),
            ]
        )
    stored = outcomes(job_id)  # close() flushed them
    assert stored[early]["status"] == "applied" and stored[early]["step"] == 5
    assert stored[first]["status"] == "superseded" and stored[first]["superseded_by"] == second
    assert stored[second]["status"] == "applied" and stored[second]["step"] == 12
    assert stored[second]["changes"] == {"learning_rate": {"old": 1e-4, "new": 2e-5}}

    third = request_update(owner, job_id, {"max_grad_norm": 0.5})["id"]
    resumed = make_agent(job_id)
    with resumed:
        assert collect(resumed, 1) == [third]
    # Resumed from the checkpoint of step 8: what was applied at step 12 is not in it and comes again.
    rewound = make_agent(job_id)
    rewound.start(replay_after_step=8)
    assert collect(rewound, 2) == [second, third]


def append_raw(service_http: httpx.Client, job_id: str, entries: list[Any]) -> None:
    """Write entries the RPC would refuse, as an old UI or a hand-edited row could have."""
    current = service_http.get(
        "/rest/v1/local_training_jobs", params={"id": f"eq.{job_id}", "select": "parameter_updates"}
    ).json()[0]["parameter_updates"]
    response = service_http.patch(
        "/rest/v1/local_training_jobs", params={"id": f"eq.{job_id}"}, json={"parameter_updates": current + entries}
    )
    response.raise_for_status()


def test_bad_input_is_rejected_with_a_reason_on_the_row(
    job: tuple[str, str],
    make_agent: Callable[..., UpdateAgent],
    service_http: httpx.Client,
    outcomes: Callable[[str], dict[str, dict[str, Any]]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    job_id, _ = job

    def stamped(**params: Any) -> dict[str, Any]:
        return {**params, "id": str(uuid.uuid4()), "requested_at": "2026-11-24T05:00:00.000Z"}

    bad = {
        "out of range": stamped(learning_rate=-1),
        "must be a number": stamped(learning_rate="fast"),
        "unknown parameter": stamped(bogus=1),
        "names no parameter": stamped(),
        "the limit is 4096": stamped(learning_rate=1e-4, note="x" * 5000),
    }
    good = stamped(learning_rate=1e-4)
    malformed = ["{not json", 42, ["learning_rate", 1e-4]]  # no id: keyed by a hash of their content
    legacy = {"learning_rate": 2e-4, "requested_at": "2024-12-14T10:30:00.000Z"}  # the seed design's entries
    append_raw(service_http, job_id, [*bad.values(), *malformed, legacy, good])

    agent = make_agent(job_id)
    with agent:
        assert collect(agent, 2) == [request_identity(legacy), good["id"]]
        agent.report([UpdateOutcome(request_identity(legacy), OutcomeStatus.APPLIED, step=3)])
        assert wait_for(lambda: len(outcomes(job_id)) == len(bad) + len(malformed) + 1)
    assert outcomes(job_id)[request_identity(legacy)]["status"] == "applied"
    stored = outcomes(job_id)
    for reason, entry in bad.items():
        assert stored[entry["id"]]["status"] == "rejected"
        assert reason in stored[entry["id"]]["reason"]
    for raw in malformed:
        outcome = stored[request_identity(raw)]
        assert outcome["status"] == "rejected" and "malformed request" in outcome["reason"]
    assert caplog.text.count("Rejected parameter update") == len(bad) + len(malformed)
    assert "malformed request" in caplog.text


def test_an_entry_no_client_could_read_back_holds_back_nothing(
    job: tuple[str, str],
    make_agent: Callable[..., UpdateAgent],
    service_http: httpx.Client,
    outcomes: Callable[[str], dict[str, dict[str, Any]]],
) -> None:
    """A seed writer's entry as JSON text nesting 2,000 levels: PostgreSQL stores what it encodes, and
    no JSON reader of Python (the agent's, the client's) reads that back. It is stored rejected with
    the reason, and the request after it arrives."""
    job_id, _ = job
    deep_id, good = str(uuid.uuid4()), {"id": str(uuid.uuid4()), "learning_rate": 1e-4}
    deep = f'{{"id": "{deep_id}", "learning_rate": {"[" * 2_000}{"]" * 2_000}}}'
    append_raw(service_http, job_id, [deep, good])
    with make_agent(job_id) as agent:
        assert collect(agent, 1) == [good["id"]]
    assert outcomes(job_id)[deep_id]["status"] == "rejected"
    assert outcomes(job_id)[deep_id]["reason"] == (
        "malformed request: nested more than 32 levels deep, deeper than clients read back"
    )


# Each fault with postgres_changes; with broadcast, those that break its channel or the database's
# delivery (a reconnect, a crash, an expired token, changes lost or held back).
BROADCAST_FAULTS = ("close-1011", "phx_error", "expire-token-close", "changes-dropped", "changes-held")
FAULTS = [
    pytest.param("close_sockets", {"code": 1011}, id="close-1011"),
    pytest.param("close_sockets", {"code": 1001}, id="close-1001"),
    pytest.param("phx_error", {}, id="phx_error"),
    pytest.param("system_error", {"message": "Unable to subscribe to changes"}, id="system-error"),
    pytest.param("stale_phx_close", {}, id="stale-phx_close"),
    pytest.param("expire_token", {}, id="expire-token-close"),
    pytest.param("stall_sockets", {}, id="stalled-socket"),
    pytest.param("changes", {"mode": "drop"}, id="changes-dropped"),
    pytest.param("changes", {"mode": "hold"}, id="changes-held"),
]


def _with_transports(faults: list[Any]) -> list[Any]:
    both = [pytest.param(*f.values, Transport.POSTGRES_CHANGES, id=f"{f.id}-postgres_changes") for f in faults]
    return both + [
        pytest.param(*f.values, Transport.BROADCAST, id=f"{f.id}-broadcast") for f in faults if f.id in BROADCAST_FAULTS
    ]


@pytest.mark.faults
@pytest.mark.parametrize(("action", "body", "transport"), _with_transports(FAULTS))
def test_every_fault_is_survived_with_nothing_lost_or_duplicated(
    action: str,
    body: dict[str, Any],
    job: tuple[str, str],
    make_agent: Callable[..., UpdateAgent],
    request_update: Callable[..., dict[str, Any]],
    faults: Callable[..., dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    job_id, owner = job
    agent = make_agent(job_id)
    caplog.set_level(logging.INFO)
    agent.start()
    assert agent.wait_ready(DELIVERY_TIMEOUT_S)
    before = request_update(owner, job_id, {"learning_rate": 1e-4})["id"]
    assert collect(agent, 1) == [before]

    assert faults(action, **body)["affected"] >= 1
    during = [request_update(owner, job_id, {"max_steps": 100 + i})["id"] for i in range(2)]
    assert collect(agent, 2) == during

    faults("reset")  # held changes are released now: they must not come out twice
    assert agent.wait_ready(DELIVERY_TIMEOUT_S)
    after = request_update(owner, job_id, {"weight_decay": 0.2})["id"]
    assert collect(agent, 1) == [after]
    assert agent.config.key not in caplog.text


@pytest.mark.faults
def test_outcomes_survive_rest_errors(
    job: tuple[str, str],
    make_agent: Callable[..., UpdateAgent],
    request_update: Callable[..., dict[str, Any]],
    faults: Callable[..., dict[str, Any]],
    outcomes: Callable[[str], dict[str, dict[str, Any]]],
) -> None:
    job_id, owner = job
    request_id = request_update(owner, job_id, {"learning_rate": 3e-5})["id"]
    agent = make_agent(job_id)
    with agent:
        assert collect(agent, 1) == [request_id]
        faults("rest_errors", count=4, status=503)
        agent.report([UpdateOutcome(request_id, OutcomeStatus.APPLIED, step=7)])

        def stored() -> bool:
            try:
                return request_id in outcomes(job_id)
            except httpx.HTTPStatusError:  # the injected errors hit this read too
                return False

        assert wait_for(stored)
    assert outcomes(job_id)[request_id]["step"] == 7


BURST = 200  # requests decided at the last step boundaries, their outcomes still pending at close()


def apply_all_and_complete(agent: UpdateAgent, requested: list[str], step: int) -> None:
    """The trainer applied every request at ``step``, where training completed, and closed its agent."""
    agent.report([UpdateOutcome(request_id, OutcomeStatus.APPLIED, step=step) for request_id in requested])
    agent.record_end("completed", step=step)
    agent.close()


def test_a_burst_of_outcomes_pending_at_close_is_all_recorded_before_the_run_ends(
    job: tuple[str, str],
    make_agent: Callable[..., UpdateAgent],
    request_update: Callable[..., dict[str, Any]],
    outcomes: Callable[[str], dict[str, dict[str, Any]]],
    row: Callable[[str], dict[str, Any]],
) -> None:
    """The steady-state rate limit (here 10 outcomes a call, 2 calls/s: about 40 in close()'s 2 s) does
    not bind close()'s flush; none of the burst ends "cancelled: not applied" by the run's end."""
    job_id, owner = job
    requested = [request_update(owner, job_id, {"max_steps": 100 + i})["id"] for i in range(BURST)]
    agent = make_agent(job_id, outcome_batch_size=10, outcome_writes_per_second=2)
    agent.start()
    assert collect(agent, BURST) == requested
    apply_all_and_complete(agent, requested, step=50)
    stored = outcomes(job_id)
    assert [stored.get(request_id, {}).get("status") for request_id in requested] == ["applied"] * BURST
    ended = row(job_id)
    assert (ended["trainer_detach_reason"], ended["run_end_step"]) == ("completed", 50)


@pytest.mark.faults
def test_outcomes_not_recorded_at_close_keep_the_run_open_and_their_requests_pending(
    job: tuple[str, str],
    make_agent: Callable[..., UpdateAgent],
    request_update: Callable[..., dict[str, Any]],
    faults: Callable[..., dict[str, Any]],
    outcomes: Callable[[str], dict[str, dict[str, Any]]],
    row: Callable[[str], dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Ending the run would mark requests the trainer applied "cancelled: not applied", for good."""
    job_id, owner = job
    requested = [request_update(owner, job_id, {"max_steps": 100 + i})["id"] for i in range(3)]
    agent = make_agent(job_id)
    agent.start()
    assert collect(agent, 3) == requested
    faults("rest_errors", status=503, seconds=60, path="rpc/record_parameter_update_outcomes")
    with caplog.at_level(logging.WARNING):
        apply_all_and_complete(agent, requested, step=9)
    faults("reset")
    assert "3 outcomes could not be recorded" in caplog.text and "the run is not ended" in caplog.text
    detached = row(job_id)
    assert (detached["trainer_detach_reason"], detached["trainer_detach_step"]) == ("closed", 9)
    assert detached["run_ended_at"] is None and outcomes(job_id) == {}
    assert trainer_attachment(detached).detail == "the trainer detached: closed at step 9"  # what job show says
    resumed = make_agent(job_id)
    with resumed:
        assert collect(resumed, 3) == requested


@pytest.mark.faults
@TRANSPORTS
def test_survives_a_restart_of_the_api(
    job: tuple[str, str],
    make_agent: Callable[..., UpdateAgent],
    request_update: Callable[..., dict[str, Any]],
    local_stack: Any,
    faults: Callable[..., dict[str, Any]],
) -> None:
    job_id, owner = job
    agent = make_agent(job_id)
    agent.start()
    assert agent.wait_ready(DELIVERY_TIMEOUT_S)
    local_stack.restart_api()
    during = request_update(owner, job_id, {"max_steps": 500})["id"]
    assert collect(agent, 1) == [during]
    assert agent.wait_ready(DELIVERY_TIMEOUT_S)
    after = request_update(owner, job_id, {"max_steps": 600})["id"]
    assert collect(agent, 1) == [after]


def socket_fds() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(FileNotFoundError):  # the directory's own descriptor, closed by now
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return count


def test_close_leaves_no_thread_or_socket(job: tuple[str, str], make_agent: Callable[..., UpdateAgent]) -> None:
    """How long close() takes is measured in benchmarks/; here only what it leaves behind."""
    job_id, _ = job
    sockets_before = socket_fds()
    agent = make_agent(job_id)
    agent.start()
    assert agent.wait_ready(DELIVERY_TIMEOUT_S)
    threads = agent_threads()
    agent.close()
    assert agent.status is AgentStatus.CLOSED
    for thread in threads:
        thread.join(DELIVERY_TIMEOUT_S)
    assert agent_threads() == []
    assert wait_for(lambda: socket_fds() <= sockets_before)


def test_a_process_that_forgets_to_close_still_exits_and_flushes(
    job: tuple[str, str],
    stack_env: dict[str, str],
    job_token: Callable[[str], str],
    request_update: Callable[..., dict[str, Any]],
    outcomes: Callable[[str], dict[str, dict[str, Any]]],
) -> None:
    job_id, owner = job
    request_id = request_update(owner, job_id, {"learning_rate": 1e-4})["id"]
    script = textwrap.dedent(
        f"""
        import time
        from liveparams.agent import UpdateAgent
        from liveparams.contract import OutcomeStatus, UpdateOutcome
        agent = UpdateAgent.from_env()
        agent.start()
        while not (requests := agent.drain()):
            time.sleep(0.01)
        agent.report([UpdateOutcome(requests[0].id, OutcomeStatus.APPLIED, step=1)])
        print("done", {request_id!r} == requests[0].id)
        """
    )
    env = os.environ | {
        "JOB_ID": job_id,
        "SUPABASE_URL": stack_env["API_URL"],
        "LIVEPARAMS_TOKEN": job_token(job_id),
        "PYTHONPATH": str(REPO),
    }
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done True"
    assert outcomes(job_id)[request_id]["status"] == "applied"


def test_a_job_token_with_the_anon_key_as_apikey(
    job: tuple[str, str],
    make_agent: Callable[..., UpdateAgent],
    request_update: Callable[..., dict[str, Any]],
    outcomes: Callable[[str], dict[str, dict[str, Any]]],
    stack_env: dict[str, str],
) -> None:
    """How a hosted project is used: the gateway gets the anon key, RLS and the RPC get the job token."""
    job_id, owner = job
    agent = make_agent(job_id, api_key=stack_env["ANON_KEY"])
    with agent:
        assert agent.wait_ready(DELIVERY_TIMEOUT_S)
        request_id = request_update(owner, job_id, {"learning_rate": 1e-4})["id"]
        assert collect(agent, 1) == [request_id]
        agent.report([UpdateOutcome(request_id, OutcomeStatus.APPLIED, step=3)])
    assert outcomes(job_id)[request_id]["status"] == "applied"


def test_a_full_queue_loses_nothing(
    job: tuple[str, str], make_agent: Callable[..., UpdateAgent], request_update: Callable[..., dict[str, Any]]
) -> None:
    job_id, owner = job
    requested = [request_update(owner, job_id, {"max_steps": 10 + i})["id"] for i in range(7)]
    agent = make_agent(job_id, queue_size=2)
    with agent:
        assert collect(agent, 7) == requested


def test_a_wrong_key_degrades_without_raising(stack_env: dict[str, str], job: tuple[str, str]) -> None:
    job_id, _ = job
    config = AgentConfig(job_id=job_id, url=stack_env["API_URL"], key="not-a-valid-jwt", **FAST)
    with UpdateAgent(config) as agent:
        assert not agent.wait_ready(2.0)
        assert agent.drain() == []
        assert agent.status is AgentStatus.DEGRADED


def test_subscription_health_sees_a_listener_killed_by_a_callback(
    job: tuple[str, str],
    stack_env: dict[str, str],
    job_token: Callable[[str], str],
    request_update: Callable[..., dict[str, Any]],
) -> None:
    """The client's listen task dies when a callback raises, yet ``is_connected`` stays true (docs/internals.md).

    The agent's own callback never raises; this hands the subscription one that does, to check
    that ``health()`` sees the silent stall the supervisor rebuilds from.
    """
    job_id, owner = job
    config = AgentConfig(job_id=job_id, url=stack_env["API_URL"], key=job_token(job_id), **FAST)
    confirmed = threading.Event()

    def explode(payload: Any) -> None:
        raise RuntimeError("a callback that raises")

    async def scenario() -> tuple[Health, Health]:
        subscription = Subscription(config, explode, on_joined=lambda: None, on_database_ready=confirmed.set)
        await subscription.open()
        try:
            for _ in range(100):
                if confirmed.is_set():
                    break
                await asyncio.sleep(0.05)
            before = subscription.health()
            await asyncio.to_thread(request_update, owner, job_id, {"learning_rate": 1e-4})
            for _ in range(200):
                if subscription.health() is Health.DEAD:
                    break
                await asyncio.sleep(0.05)
            return before, subscription.health()
        finally:
            await subscription.close()

    before, after = asyncio.run(scenario())
    assert before is Health.READY
    assert after is Health.DEAD


class Plug:
    """A TCP forwarder in front of the stack's API whose plug can be pulled: a network outage, not a fake server.

    ``pull()`` cuts every connection and refuses new ones; ``push()`` accepts them again.
    ``cut_realtime()`` does that to Realtime websockets only: push is down, REST still works;
    ``restore_realtime()`` lets them through again.
    ``blackhole()`` keeps every connection open but lets nothing through (a stalled path).
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="test.plug", daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._realtime_writers: set[asyncio.StreamWriter] = set()
        self._realtime_cut = False
        self._blackholed = False
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self._thread.start()
        self.push()

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                if not self._blackholed:
                    writer.write(data)
                    await writer.drain()
        writer.close()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        request_line = await client_reader.readline()  # a websocket is the first request on its own connection
        realtime = b"/realtime/" in request_line
        try:
            if realtime and self._realtime_cut:
                raise OSError("realtime is cut")
            server_reader, server_writer = await asyncio.open_connection(*self._target)
        except OSError:
            client_writer.close()
            return
        server_writer.write(request_line)
        connection = {client_writer, server_writer}
        self._writers |= connection
        if realtime:
            self._realtime_writers |= connection
        await asyncio.gather(self._pipe(client_reader, server_writer), self._pipe(server_reader, client_writer))
        self._writers -= connection
        self._realtime_writers -= connection

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def push(self) -> None:
        async def listen() -> None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

        self._run(listen())

    def pull(self) -> None:
        async def cut() -> None:
            if self._server is not None:
                self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()

        self._run(cut())

    def cut_realtime(self) -> None:
        async def cut() -> None:
            self._realtime_cut = True
            for writer in list(self._realtime_writers):
                writer.transport.abort()

        self._run(cut())

    def restore_realtime(self) -> None:
        self._realtime_cut = False  # read by the plug's thread; a plain flag is enough for a test

    def blackhole(self) -> None:
        self._blackholed = True  # read by the plug's thread; a plain flag is enough for a test

    def close(self) -> None:
        self.pull()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@pytest.fixture
def plug(stack_env: dict[str, str]) -> Iterator[Plug]:
    """A plug in front of the stack's API; agents given ``url=plug.url`` go through it."""
    api = httpx.URL(stack_env["API_URL"])
    plug = Plug(api.host, api.port or 80)
    yield plug
    plug.close()


@pytest.mark.slow
@pytest.mark.faults
def test_an_outage_longer_than_the_client_retries_for(
    job: tuple[str, str],
    plug: Plug,
    make_agent: Callable[..., UpdateAgent],
    request_update: Callable[..., dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The official client gives up for good after 5 failed reconnects (about 15 s) and says nothing.

    ``recovery_grace`` is set beyond that, so only the supervisor's "gave up" check can bring push back.
    Probes are turned off: one in flight when the plug is pulled would time out and rebuild the
    subscription first, and the client's give-up would never be seen.
    """
    job_id, owner = job
    caplog.set_level(logging.INFO, logger="liveparams.agent")
    with make_agent(job_id, url=plug.url, recovery_grace=120, probe_interval=3600) as agent:
        assert agent.wait_ready(DELIVERY_TIMEOUT_S)
        plug.pull()
        during = request_update(owner, job_id, {"max_steps": 700})["id"]
        assert wait_for(lambda: agent.status is AgentStatus.DEGRADED, 5)
        # The client's own reconnects: immediately, then after 1, 2, 4 and 8 s; then it gives up and
        # only the supervisor notices. Waited for rather than slept: a loaded machine is slower.
        assert wait_for(lambda: "the client gave up reconnecting" in caplog.text, 60)
        plug.push()
        assert agent.wait_ready(DELIVERY_TIMEOUT_S)
        assert collect(agent, 1) == [during]
        after = request_update(owner, job_id, {"max_steps": 800})["id"]
        assert collect(agent, 1) == [after]


def test_polling_starts_at_once_when_push_goes_down(
    job: tuple[str, str],
    plug: Plug,
    make_agent: Callable[..., UpdateAgent],
    request_update: Callable[..., dict[str, Any]],
) -> None:
    """While subscribed the row is re-read only every resync_interval (here a minute); degraded, it must be polled."""
    job_id, owner = job
    with make_agent(job_id, url=plug.url, resync_interval=60.0) as agent:
        assert agent.wait_ready(DELIVERY_TIMEOUT_S)
        plug.cut_realtime()
        assert wait_for(lambda: agent.status is AgentStatus.DEGRADED)
        during = request_update(owner, job_id, {"max_steps": 900})["id"]
        assert collect(agent, 1) == [during]
        assert agent.status is AgentStatus.DEGRADED


@pytest.mark.faults
def test_a_server_that_was_only_behind_answers_the_probe_late_and_push_comes_back_without_a_rebuild(
    job: tuple[str, str],
    make_agent: Callable[..., UpdateAgent],
    request_update: Callable[..., dict[str, Any]],
    faults: Callable[..., dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The server stops reading the agent's socket (a paused or backlogged server), longer than ``probe_timeout``
    and shorter than ``recovery_grace`` after it. The agent polls meanwhile, and when the server reads on it
    answers the probe that was waiting: push is back on the same socket. A rebuild from every trainer of a
    server that is only behind would add their joins to the backlog (docs/benchmarks.md, "a frozen front")."""
    job_id, owner = job
    caplog.set_level(logging.INFO, logger="liveparams.agent")
    with make_agent(job_id, recovery_grace=15.0) as agent:
        stall_until_degraded(agent, faults)
        during = request_update(owner, job_id, {"max_steps": 500})["id"]
        assert collect(agent, 1) == [during]  # polled: the stalled socket dropped its push
        faults("unstall_sockets")
        assert push_delivers(agent, request_update, owner, 600)
    assert "no reply to a probe within 1s" in caplog.text
    assert "rebuilding it" not in caplog.text


@pytest.mark.faults
def test_while_the_server_answers_nothing_an_unanswered_probe_waits_instead_of_rebuilding(
    job: tuple[str, str],
    make_agent: Callable[..., UpdateAgent],
    request_update: Callable[..., dict[str, Any]],
    faults: Callable[..., dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The agent's socket stalls and every REST call fails too, for several times ``recovery_grace``: a new socket
    to a server that answers nothing would get no further, so the agent keeps polling and waits. Once the server
    reads on, push comes back: by the late reply on the same socket, or, where that reply takes longer than
    ``recovery_grace`` after REST answers again (a loaded machine), by the rebuild the next test asserts."""
    job_id, owner = job
    caplog.set_level(logging.INFO, logger="liveparams.agent")
    with make_agent(job_id, recovery_grace=1.0) as agent:
        assert agent.wait_ready(DELIVERY_TIMEOUT_S)
        faults("rest_errors", seconds=3600, status=503)
        stall_until_degraded(agent, faults)
        time.sleep(4.0)  # four times recovery_grace: the agent rebuilt here before
        while_nothing_answered = caplog.text
        faults("reset")  # the socket reads on, REST answers again
        assert push_delivers(agent, request_update, owner, 700)
    assert "no reply to a probe within 1s" in while_nothing_answered
    assert "rebuilding it" not in while_nothing_answered


@pytest.mark.faults
def test_a_probe_the_server_dropped_is_asked_again_once_it_answers_and_push_comes_back_without_a_rebuild(
    job: tuple[str, str],
    make_agent: Callable[..., UpdateAgent],
    request_update: Callable[..., dict[str, Any]],
    faults: Callable[..., dict[str, Any]],
    failing_broadcast_checks: Callable[[str], Callable[[bool], None]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Realtime drops a broadcast, without a reply, when it cannot check the channel's write policy (a policy
    that raises, a database pool it waits on too long: a server working through a backlog). The probe it dropped
    can never be answered; once the server answers REST again the agent probes once more on the same socket,
    and push is back without a rebuild (a new socket, a join and a Presence track for the backlog)."""
    job_id, owner = job
    caplog.set_level(logging.INFO, logger="liveparams.agent")
    agent = make_agent(job_id, probe_interval=8.0, recovery_grace=3.0)
    fail = failing_broadcast_checks(agent.config.topic)
    with agent:
        assert agent.wait_ready(DELIVERY_TIMEOUT_S)  # joined, and its first probe is 8 s away
        fail(True)  # the probe's policy check will raise
        faults("rest_errors", seconds=3600, status=503)  # and the server answers nothing over REST
        assert wait_for(lambda: agent.status is AgentStatus.DEGRADED, 15)  # the probe went unanswered
        time.sleep(4.0)  # longer than recovery_grace: nothing rebuilds while the server answers nothing
        fail(False)
        faults("reset")  # REST answers: the agent probes again, and this one is answered
        assert push_delivers(agent, request_update, owner, 750)
    assert "no reply to a probe within 1s" in caplog.text
    assert "rebuilding it" not in caplog.text


@pytest.mark.faults
def test_a_channel_that_stays_silent_while_the_server_answers_rest_is_rebuilt(
    job: tuple[str, str],
    make_agent: Callable[..., UpdateAgent],
    request_update: Callable[..., dict[str, Any]],
    faults: Callable[..., dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A wedged channel on a live server: the probe goes unanswered while REST answers, so after recovery_grace the
    agent rebuilds its client, and push works again on the new socket while the old one stays stalled."""
    job_id, owner = job
    caplog.set_level(logging.INFO, logger="liveparams.agent")
    with make_agent(job_id) as agent:
        stall_until_degraded(agent, faults)
        assert push_delivers(agent, request_update, owner, 800)  # on a new socket: the stalled one never reads on
    assert "while the server answered over REST)); rebuilding it" in caplog.text


@pytest.mark.faults
def test_a_socket_the_client_replaces_on_its_own_while_a_probe_is_overdue_is_not_rebuilt_again(
    job: tuple[str, str],
    make_agent: Callable[..., UpdateAgent],
    request_update: Callable[..., dict[str, Any]],
    faults: Callable[..., dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The stalled socket is closed (as the client does when its pings go unanswered) and the client reconnects and
    rejoins by itself: the probe sent on the old socket can never be answered, and waiting for it must not end in
    a rebuild of the client that already recovered."""
    job_id, owner = job
    caplog.set_level(logging.INFO, logger="liveparams.agent")
    with make_agent(job_id, recovery_grace=3.0) as agent:
        faults("close_sockets", code=1011, topic=stall_until_degraded(agent, faults))
        assert agent.wait_ready(DELIVERY_TIMEOUT_S)
        time.sleep(5.0)  # past recovery_grace: a rebuild came here before
        assert push_delivers(agent, request_update, owner, 900)
    assert "rebuilding it" not in caplog.text


@pytest.mark.faults
def test_a_change_push_drops_is_read_at_the_next_heartbeat(
    job: tuple[str, str],
    make_agent: Callable[..., UpdateAgent],
    request_update: Callable[..., dict[str, Any]],
    faults: Callable[..., dict[str, Any]],
) -> None:
    """Push drops a change while the channel stays joined and answers probes: the heartbeat's answer (the job's
    newest request) shows the agent missed one, and it is read then, not at the timed re-read (here an hour)."""
    job_id, owner = job
    with make_agent(job_id, resync_interval=3600.0, heartbeat_interval=1.0) as agent:
        assert agent.wait_ready(DELIVERY_TIMEOUT_S)
        faults("changes", mode="drop")
        dropped = request_update(owner, job_id, {"max_steps": 600})["id"]
        assert collect(agent, 1, timeout=10) == [dropped]
        assert agent.status is AgentStatus.SUBSCRIBED  # push never looked down: the heartbeat alone found it


@pytest.mark.faults
def test_while_the_heartbeat_fails_the_timed_re_read_still_catches_what_push_drops(
    job: tuple[str, str],
    make_agent: Callable[..., UpdateAgent],
    request_update: Callable[..., dict[str, Any]],
    faults: Callable[..., dict[str, Any]],
) -> None:
    """No heartbeat answer says what push missed (its calls fail, as with a database that predates the answer):
    the safety re-read every ``resync_interval`` still delivers what push dropped."""
    job_id, owner = job
    with make_agent(job_id, resync_interval=2.0, heartbeat_interval=1.0) as agent:
        assert agent.wait_ready(DELIVERY_TIMEOUT_S)
        faults("rest_errors", seconds=60, status=503, path="rpc/record_trainer_state")
        faults("changes", mode="drop")
        dropped = request_update(owner, job_id, {"max_steps": 700})["id"]
        assert collect(agent, 1, timeout=10) == [dropped]


def test_a_client_without_the_internals_the_supervisor_reads_still_delivers_with_one_warning(
    job: tuple[str, str],
    plug: Plug,
    make_agent: Callable[..., UpdateAgent],
    request_update: Callable[..., dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An upgrade of the client that lacks every private part the supervisor reads (our reader says so, and
    reading one fails as it then would): the agent says so once, and delivers through push, an outage of push
    and its return, with the client's public API only."""
    job_id, owner = job
    lacking = [internals.LISTEN_TASK, internals.WEBSOCKET, internals.REJOIN_TIMER, internals.JOIN_PUSH]
    monkeypatch.setattr(internals, "missing", lambda client, channel: lacking)

    def absent(*args: object) -> None:
        raise AttributeError("not in this version of the client")

    for reader in ("listen_task", "websocket", "stop_rejoining"):
        monkeypatch.setattr(internals, reader, absent)
    caplog.set_level(logging.INFO, logger="liveparams.agent")
    with make_agent(job_id, url=plug.url) as agent:
        assert agent.wait_ready(DELIVERY_TIMEOUT_S)
        pushed = request_update(owner, job_id, {"max_steps": 100})["id"]
        assert collect(agent, 1) == [pushed]
        plug.cut_realtime()
        assert wait_for(lambda: agent.status is AgentStatus.DEGRADED)
        polled = request_update(owner, job_id, {"max_steps": 200})["id"]
        assert collect(agent, 1) == [polled]
        # Past recovery_grace the supervisor throws the client away and builds others: each is looked at.
        assert wait_for(lambda: "rebuilding it" in caplog.text)
        plug.restore_realtime()
        assert agent.wait_ready(DELIVERY_TIMEOUT_S)
        after = request_update(owner, job_id, {"max_steps": 300})["id"]
        assert collect(agent, 1) == [after]
    said = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert [message for message in said if "lacks" in message] == [
        f"The installed realtime client ({importlib.metadata.version('realtime')}) lacks "
        f"{', '.join(sorted(lacking))}, which the agent reads to watch its connection; going on with its public "
        "API: a dead listener is found by the channel probe, and what push drops is read at the next heartbeat "
        "(every 25s)"
    ]
    assert not [message for message in said if "unexpectedly" in message]


def test_a_close_cancelled_mid_handshake_still_frees_the_socket(
    job: tuple[str, str], plug: Plug, stack_env: dict[str, str], job_token: Callable[[str], str]
) -> None:
    """Shutdown cancels what is left, possibly a Subscription.close() waiting for a close reply that never comes."""
    job_id, _ = job
    config = AgentConfig(job_id=job_id, url=plug.url, key=job_token(job_id), **FAST)

    async def scenario() -> bool:
        subscription = Subscription(
            config, lambda payload: None, on_joined=lambda: None, on_database_ready=lambda: None
        )
        await subscription.open()
        ws = subscription._client.realtime._ws_connection if subscription._client is not None else None
        assert ws is not None
        plug.blackhole()
        closing = asyncio.create_task(subscription.close())
        for _ in range(10_000):  # until the close frame is out and its reply awaited
            if ws.state is State.CLOSING or closing.done():
                break
            await asyncio.sleep(0.001)
        assert not closing.done()
        closing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await closing
        return ws.transport.is_closing()

    assert asyncio.run(scenario())


def test_a_seed_writer_appending_to_the_array_reaches_the_trainer_and_the_column_stays_empty(
    job: tuple[str, str],
    make_agent: Callable[..., UpdateAgent],
    service_http: httpx.Client,
    outcomes: Callable[[str], dict[str, dict[str, Any]]],
    row: Callable[[str], dict[str, Any]],
) -> None:
    """The seed design's UI route: read the array, append ``{learning_rate, requested_at, requested_by}``, write it."""
    job_id, _ = job
    agent = make_agent(job_id)
    with agent:
        assert agent.wait_ready(DELIVERY_TIMEOUT_S)
        legacy = {"learning_rate": 3e-4, "requested_at": "2026-11-28T08:00:00.000Z", "requested_by": "seed-ui"}
        append_raw(service_http, job_id, [legacy])
        assert wait_for(lambda: not agent._worker.intake.queue.empty())
        (request,) = agent.drain()
        assert request.id == request_identity(legacy) and request.params == {"learning_rate": 3e-4}
        assert request.requested_by == "seed-ui"
        changes = {"learning_rate": Change(1e-4, 3e-4)}
        agent.report([UpdateOutcome(request.id, OutcomeStatus.APPLIED, step=4, changes=changes)])
    assert outcomes(job_id)[request.id]["status"] == "applied"
    stored = row(job_id)
    assert stored["parameter_updates"] == []
    assert stored["parameters_in_force"] == {"learning_rate": 3e-4} and stored["parameters_applied_step"] == 4


def test_the_job_row_shows_the_trainer_attached_then_how_it_detached(
    job: tuple[str, str], make_agent: Callable[..., UpdateAgent], row: Callable[[str], dict[str, Any]]
) -> None:
    job_id, _ = job
    agent = make_agent(job_id)
    agent.start()
    assert wait_for(lambda: row(job_id)["trainer_attached_at"] is not None)
    attached = row(job_id)
    assert attached["trainer_detached_at"] is None and attached["trainer_seen_at"] is not None
    agent.record_end("completed", step=42)
    agent.close()
    detached = row(job_id)
    assert (detached["trainer_detach_reason"], detached["trainer_detach_step"]) == ("completed", 42)
    assert detached["trainer_detached_at"] is not None and detached["status"] == "running"  # the platform's own


def test_a_ui_on_the_jobs_topic_sees_the_trainer_present(
    job: tuple[str, str], make_agent: Callable[..., UpdateAgent], stack_env: dict[str, str]
) -> None:
    """The owner joins the job's private channel, as the panel does, and sees the trainer's Presence there."""
    job_id, owner = job

    async def scenario() -> list[str]:
        async with presence_watch(stack_env, owner, job_id, private=True) as watch:
            assert watch.joined == (RealtimeSubscribeStates.SUBSCRIBED, None)
            agent = make_agent(job_id)
            await asyncio.to_thread(agent.start)
            await watch.wait_for(lambda present: "trainer" in present)
            return list(watch.present)

    assert "trainer" in asyncio.run(scenario())


def test_in_a_project_that_allows_private_channels_only_push_presence_and_the_probe_work(
    job: tuple[str, str],
    make_agent: Callable[..., UpdateAgent],
    request_update: Callable[..., dict[str, Any]],
    stack_env: dict[str, str],
    faults: Callable[..., dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Hosted Realtime with "Allow public access" off refuses every public join: the agent never needs one. Its
    probe is answered there: on a private channel an unauthorized broadcast gets no reply at all, which the probe
    would take for a stalled socket, so the trainer's policy lets it broadcast, and push stays up probe after probe."""
    job_id, owner = job
    faults("private_only", enabled=True)
    caplog.set_level(logging.WARNING, logger="liveparams.agent")
    with make_agent(job_id) as agent:
        assert agent.wait_ready(DELIVERY_TIMEOUT_S)
        pushed = request_update(owner, job_id, {"max_steps": 100})["id"]
        assert collect(agent, 1) == [pushed]
        assert sees_a_trainer(stack_env, owner, job_id, private=True)
        time.sleep(6 * FAST["probe_interval"] + FAST["probe_timeout"])
        assert agent.status is AgentStatus.SUBSCRIBED
    assert not [record for record in caplog.records if "push is down" in record.getMessage()]


def test_a_stranger_can_neither_join_the_jobs_channel_nor_show_its_owner_a_trainer(
    job: tuple[str, str],
    make_agent: Callable[..., UpdateAgent],
    stack_env: dict[str, str],
    new_user: Callable[[], tuple[str, str]],
) -> None:
    """Someone with the publishable key and the job's id, signed in or not: the private join is refused, and
    what they track on the public topic never reaches the owner's view, which shows the real trainer only."""
    job_id, owner = job
    _, stranger = new_user()
    fake = {"trainer": "attached", "since": "a stranger's"}

    async def scenario() -> None:
        agent = make_agent(job_id)
        await asyncio.to_thread(agent.start)
        async with presence_watch(stack_env, owner, job_id, private=True) as view:
            assert await view.wait_for(lambda present: "trainer" in present)
            for bearer in (stack_env["ANON_KEY"], stranger):
                async with presence_watch(stack_env, bearer, job_id, private=True, track=fake) as refused:
                    state, error = refused.joined
                    assert state is RealtimeSubscribeStates.CHANNEL_ERROR
                    assert "Unauthorized: You do not have permissions to read" in str(error)
                async with presence_watch(stack_env, bearer, job_id, private=False, track=fake) as public:
                    assert public.joined[0] is RealtimeSubscribeStates.SUBSCRIBED
                    assert await public.wait_for(lambda present: "trainer" in present)  # its own track...
                    assert [meta["since"] for meta in public.present["trainer"]] == [fake["since"]]  # ...only
                    await asyncio.sleep(QUIET_S)  # the owner's view would have had a diff by now
                    assert len(view.present["trainer"]) == 1
                    assert view.present["trainer"][0]["since"] != fake["since"]

    asyncio.run(scenario())


def test_against_a_database_without_the_channel_policies_the_agent_joins_publicly_and_says_so_once(
    older_database: None,
    job: tuple[str, str],
    plug: Plug,
    make_agent: Callable[..., UpdateAgent],
    request_update: Callable[..., dict[str, Any]],
    stack_env: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The private join is refused there: the agent joins the public channel, push and Presence work as before,
    and one warning names the migration, however many times the client is rebuilt."""
    job_id, owner = job
    caplog.set_level(logging.INFO, logger="liveparams.agent")
    with make_agent(job_id, url=plug.url) as agent:
        assert agent.wait_ready(DELIVERY_TIMEOUT_S)
        pushed = request_update(owner, job_id, {"max_steps": 100})["id"]
        assert collect(agent, 1) == [pushed]
        assert sees_a_trainer(stack_env, owner, job_id, private=False)
        plug.cut_realtime()
        assert wait_for(lambda: "rebuilding it" in caplog.text)
        plug.restore_realtime()
        assert agent.wait_ready(DELIVERY_TIMEOUT_S)
        after = request_update(owner, job_id, {"max_steps": 200})["id"]
        assert collect(agent, 1) == [after]
    said = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    public = [message for message in said if POLICIES_MIGRATION in message]
    assert len(public) == 1, said
    assert public[0].startswith(f"Realtime refused the private job channel liveparams-job-{job_id}")


@pytest.mark.stack
def test_the_initial_read_queues_what_was_asked_before_start(
    job: tuple[str, str], make_agent: Callable[..., UpdateAgent], request_update: Callable[..., dict[str, Any]]
) -> None:
    """What the callback waits on after a resume: the requests stored before start() are on the queue."""
    job_id, owner_jwt = job
    early = request_update(owner_jwt, job_id, {"learning_rate": 2e-4})
    agent = make_agent(job_id)
    assert agent.job_id == job_id
    agent.start()
    assert agent.wait_initial_read(DELIVERY_TIMEOUT_S)
    assert [request.id for request in agent.drain()] == [early["id"]]  # no further wait needed
