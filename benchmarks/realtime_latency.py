"""Commit → delivery latency of the local stack's Realtime server, to the official Python client.

A job row is updated ``--calls`` times through the ``request_parameter_update`` RPC
(REST, as the owner); an ``AsyncRealtimeClient`` subscribed to that row with
``filter=id=eq.<job>`` timestamps each ``postgres_changes`` callback. Three views:

- **RPC returned → callback**: the commit happened before the RPC's HTTP response, so this
  is a lower bound of commit → delivery (it can be negative when the change wins the race);
- **RPC sent → callback**: an upper bound (adds the HTTP round trip and the RPC itself);
- **commit_timestamp → callback**: PostgreSQL's commit time (ms resolution, same clock).

Each cadence runs on its own throw-away local stack, side by side in one run: ``fast`` (the
stack's default, for tests) and a number of ms (Realtime's ``poll_interval_ms``, polled every
that many ms and backing off to five times it when idle, as hosted Realtime does: what users
see). Requests are spaced by a random 0–``--max-gap-ms`` pause so they land at random points of
the poll cycle.

Run: ``python benchmarks/realtime_latency.py [--calls 200] [--cadences fast,100]``, or point it at
one running local stack with ``--api-url`` (its cadence is whatever it was started with).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from realtime import AsyncRealtimeClient, RealtimePostgresChangesListenEvent, RealtimeSubscribeStates

from liveparams_stack import LocalStack
from liveparams_stack.keys import ANON_KEY, SERVICE_ROLE_KEY
from liveparams_stack.local import free_port
from liveparams_stack.users import create_user


@contextmanager
def stack_url(api_url: str | None, poll_ms: int | None) -> Iterator[str]:
    if api_url:
        yield api_url
        return
    with tempfile.TemporaryDirectory(prefix="liveparams-bench-") as root:
        Path(root).chmod(0o755)  # PostgreSQL may run as another OS user
        with LocalStack(
            Path(root) / "stack", free_port(), free_port(), realtime_poll_ms=poll_ms, stop_with_caller=True
        ) as stack:
            yield stack.api_url


def make_job(api_url: str) -> tuple[str, str]:
    """A running job and its owner's JWT."""
    owner_id, owner_jwt = create_user(api_url, "bench@liveparams.test")
    response = httpx.post(
        f"{api_url}/rest/v1/local_training_jobs",
        json={"user_id": owner_id, "status": "running", "name": "latency benchmark"},
        headers={
            "apikey": SERVICE_ROLE_KEY,
            "Authorization": f"Bearer {SERVICE_ROLE_KEY}",
            "Prefer": "return=representation",
        },
    )
    response.raise_for_status()
    return response.json()[0]["id"], owner_jwt


def stats(samples: list[float]) -> dict[str, float]:
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50": q[49], "p90": q[89], "p99": q[98], "max": max(samples)}


async def measure(api_url: str, job_id: str, jwt: str, calls: int, max_gap_s: float) -> dict[str, list[float]]:
    received: asyncio.Queue[tuple[float, Any]] = asyncio.Queue()
    client = AsyncRealtimeClient(f"{api_url}/realtime/v1", token=ANON_KEY)
    await client.set_auth(jwt)
    channel = client.channel("latency")
    channel.on_postgres_changes(
        RealtimePostgresChangesListenEvent.Insert,
        lambda payload: received.put_nowait((time.time(), payload)),
        table="parameter_update_requests",
        schema="public",
        filter=f"job_id=eq.{job_id}",
    )
    ready = asyncio.Event()
    channel.on_system(lambda message: ready.set())
    subscribed: asyncio.Queue[RealtimeSubscribeStates] = asyncio.Queue()
    await channel.subscribe(lambda state, _: subscribed.put_nowait(state))
    assert await subscribed.get() == RealtimeSubscribeStates.SUBSCRIBED
    await asyncio.wait_for(ready.wait(), 10)

    views: dict[str, list[float]] = {
        "RPC returned → callback": [],
        "RPC sent → callback": [],
        "commit_timestamp → callback": [],
    }
    headers = {"apikey": ANON_KEY, "Authorization": f"Bearer {jwt}"}
    async with httpx.AsyncClient(base_url=api_url, headers=headers) as http:
        for i in range(calls):
            sent = time.time()
            response = await http.post(
                "/rest/v1/rpc/request_parameter_update",
                json={"p_job_id": job_id, "p_params": {"learning_rate": 1e-4 * (1 + i % 9)}},
            )
            returned = time.time()
            response.raise_for_status()
            request_id = response.json()["id"]
            while True:
                at, payload = await asyncio.wait_for(received.get(), 10)
                if payload["data"]["record"]["id"] == request_id:
                    break
            committed = datetime.fromisoformat(payload["data"]["commit_timestamp"].replace("Z", "+00:00")).timestamp()
            views["RPC returned → callback"].append((at - returned) * 1000)
            views["RPC sent → callback"].append((at - sent) * 1000)
            views["commit_timestamp → callback"].append((at - committed) * 1000)
            await asyncio.sleep(random.uniform(0, max_gap_s))  # land anywhere in the poll cycle
    await client.close()
    return views


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument(
        "--cadences", default="fast,100", help="comma-separated: `fast` and/or poll intervals in ms (default: fast,100)"
    )
    parser.add_argument("--max-gap-ms", type=float, default=600.0, help="longest random pause between requests")
    parser.add_argument("--api-url", help="a running local stack's API URL (default: start throw-away ones)")
    args = parser.parse_args()
    cadences = ["as started"] if args.api_url else args.cadences.split(",")
    results: dict[str, dict[str, list[float]]] = {}
    for cadence in cadences:
        poll_ms = None if cadence in ("fast", "as started") else int(cadence)
        with stack_url(args.api_url, poll_ms) as api_url:
            job_id, jwt = make_job(api_url)
            results[cadence] = asyncio.run(measure(api_url, job_id, jwt, args.calls, args.max_gap_ms / 1000))
    print(f"commit → delivery to the official Python client, {args.calls} RPC calls per cadence (ms)")
    print(f"{'cadence':<12} {'view':<30} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}")
    for cadence, views in results.items():
        label = cadence if cadence in ("fast", "as started") else f"{cadence} ms"
        for name, samples in views.items():
            row = stats(samples)
            print(f"{label:<12} {name:<30} {row['p50']:>8.2f} {row['p90']:>8.2f} {row['p99']:>8.2f} {row['max']:>8.2f}")
    if len(results) == 2:
        (a, first), (b, second) = results.items()
        view = "commit_timestamp → callback"
        ratio = stats(second[view])["p50"] / stats(first[view])["p50"]
        print(f"\np50 {view}: {b} is {ratio:.1f}× {a}")


if __name__ == "__main__":
    main()
