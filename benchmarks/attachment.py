"""How soon a killed trainer stops counting as attached, and what keeping that honest costs while idle.

A trainer process (an ``UpdateAgent``, as the callback starts it) is killed with SIGKILL, as
``kill -9`` or the OOM killer would. Measured, per kill, from the signal to the moment a
watcher on the job's Realtime topic (as ``liveparams watch`` and ``job show`` join it) sees
the trainer's Presence leave. Printed next to it: the bound from the job row alone (two
heartbeats plus 5 s) and the idle traffic each gives, so the two can be compared.

    python benchmarks/attachment.py [--kills 5]

On the local stack unless ``SUPABASE_URL``, ``SUPABASE_DB_URL`` and ``SUPABASE_JWT_SECRET`` are set.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time

from agent_latency import stack_env
from realtime import AsyncRealtimeChannel

from liveparams._supabase import create_client
from liveparams._views import HEARTBEAT_STALE_S, trainer_in
from liveparams.agent import AgentConfig
from liveparams.agent._config import job_topic
from liveparams.agent._job_channel import join_job_channel
from liveparams.tokens import mint_job_token

TRAINER = """
import sys, time
from liveparams.agent import AgentConfig, UpdateAgent
agent = UpdateAgent(AgentConfig(job_id=sys.argv[1], url=sys.argv[2], key=sys.argv[3]))
agent.start()
agent.wait_ready(60)
time.sleep(3600)
"""


async def one_kill(env: dict[str, str], job_id: str, token: str) -> float:
    """Seconds from SIGKILL of a subscribed trainer to its Presence leaving the job's topic."""
    present, gone = asyncio.Event(), asyncio.Event()
    client = await create_client(env["API_URL"], env.get("ANON_KEY") or token, token)

    def bind(joining: AsyncRealtimeChannel) -> None:
        joining.on_presence_sync(lambda: (present if trainer_in(joining.presence_state()) else gone).set())

    # Where the trainer tracks its Presence: the private channel, or the public one on an older database.
    channel, _ = await join_job_channel(client.realtime, job_topic(job_id), {}, bind)
    trainer = subprocess.Popen([sys.executable, "-c", TRAINER, job_id, env["API_URL"], token])
    try:
        await asyncio.wait_for(present.wait(), 60)
        gone.clear()
        killed = time.perf_counter()
        os.kill(trainer.pid, signal.SIGKILL)
        await asyncio.wait_for(gone.wait(), 120)
        return time.perf_counter() - killed
    finally:
        trainer.kill()
        trainer.wait()
        await client.remove_channel(channel)
        await client.realtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=5, help="trainers to start and kill")
    args = parser.parse_args()
    import psycopg

    with stack_env() as env, psycopg.connect(env["DB_URL"], autocommit=True) as db:
        row = db.execute("insert into public.local_training_jobs (status) values ('running') returning id").fetchone()
        assert row is not None
        job_id = str(row[0])
        token = mint_job_token(job_id, env["JWT_SECRET"])
        seconds = [asyncio.run(one_kill(env, job_id, token)) for _ in range(args.kills)]

    beat = AgentConfig.heartbeat_interval
    print(f"{'kill -9 → not attached, seen by':36} {'n':>3} {'median s':>9} {'max s':>7}  idle traffic per trainer")
    print(
        f"{'Presence on the job topic':36} {len(seconds):>3} {statistics.median(seconds):>9.2f} {max(seconds):>7.2f}"
        "  none beyond the socket's own heartbeat"
    )
    print(
        f"{'the job row alone (2 heartbeats + 5 s)':36} {'':>3} {'≤ ' + format(HEARTBEAT_STALE_S, 'g'):>9} {'':>7}"
        f"  {60 / beat:g} heartbeat RPCs a minute (one every {beat:g} s)"
    )


if __name__ == "__main__":
    main()
