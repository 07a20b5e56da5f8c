"""Commit → delivery latency of the local stack's Realtime server, to the official Python client.

A job row is updated ``--calls`` times through the ``request_parameter_update`` RPC
(REST, as the owner); an ``AsyncRealtimeClient`` subscribed to that row with
``filter=id=eq.<job>`` timestamps each ``postgres_changes`` callback. Three views:

- **RPC returned → callback**: the commit happened before the RPC's HTTP response, so this
  is a lower bound of commit → delivery (it can be negative when the change wins the race);
- **RPC sent → callback**: an upper bound (adds the HTTP round trip and the RPC itself);
- **commit_timestamp → callback**: PostgreSQL's commit time (ms resolution, same clock).

Run: ``python benchmarks/realtime_latency.py [--calls 200]`` (starts a throw-away local stack
on free ports), or point it at a running local stack with ``--api-url``.
"""

from __future__ import annotations

import argparse
import asyncio
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
from liveparams_stack.users import create_user


@contextmanager
def stack_url(api_url: str | None) -> Iterator[str]:
    if api_url:
        yield api_url
        return
    with tempfile.TemporaryDirectory(prefix="liveparams-bench-") as root:
        Path(root).chmod(0o755)  # PostgreSQL may run as another OS user
        with LocalStack.on_free_ports(Path(root) / "stack") as stack:
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


async def measure(api_url: str, job_id: str, jwt: str, calls: int) -> dict[str, list[float]]:
    received: asyncio.Queue[tuple[float, Any]] = asyncio.Queue()
    client = AsyncRealtimeClient(f"{api_url}/realtime/v1", token=ANON_KEY)
    await client.set_auth(jwt)
    channel = client.channel("latency")
    channel.on_postgres_changes(
        RealtimePostgresChangesListenEvent.Update,
        lambda payload: received.put_nowait((time.time(), payload)),
        table="local_training_jobs",
        schema="public",
        filter=f"id=eq.{job_id}",
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
                if payload["data"]["record"]["parameter_updates"][-1]["id"] == request_id:
                    break
            committed = datetime.fromisoformat(payload["data"]["commit_timestamp"].replace("Z", "+00:00")).timestamp()
            views["RPC returned → callback"].append((at - returned) * 1000)
            views["RPC sent → callback"].append((at - sent) * 1000)
            views["commit_timestamp → callback"].append((at - committed) * 1000)
            await asyncio.sleep(0.02)  # let the poller go idle, as between real requests
    await client.close()
    return views


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--api-url", help="a running local stack's API URL (default: start a throw-away one)")
    args = parser.parse_args()
    with stack_url(args.api_url) as api_url:
        job_id, jwt = make_job(api_url)
        views = asyncio.run(measure(api_url, job_id, jwt, args.calls))
    print(f"commit → delivery to the official Python client, {args.calls} RPC calls (ms)")
    print(f"{'view':<30} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}")
    for name, samples in views.items():
        row = stats(samples)
        print(f"{name:<30} {row['p50']:>8.2f} {row['p90']:>8.2f} {row['p99']:>8.2f} {row['max']:>8.2f}")


if __name__ == "__main__":
    main()
