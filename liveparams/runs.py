"""A job's runs as its owner acts on them: cancel a pending request, end the run, see who is attached now.

A run is one training of a job, from its trainer's attach to its end (train() returned, a
stop applied, or the owner ended it with :func:`end_run`). At its end the database gives every
request still pending the outcome ``cancelled`` ("not applied: the run ended at step N") and
refuses new ones until a trainer attaches again, which opens the job's next run. A crash, a
kill or Ctrl-C is not an end: the resumed run gets the requests made meanwhile
(docs/contracts.md, migration ``20261206110000_request_runs.sql``).

Who is attached right now is Presence on the job's topic, where the agent tracks the key
``trainer``: a killed trainer's socket closes and it leaves at once, long before its
heartbeat on the job row goes stale.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, cast

import httpx
from postgrest.exceptions import APIError
from supabase import AsyncClient

from liveparams.agent._config import job_topic
from liveparams.jobs import _explain, check_job_id, trainer_in

PRESENCE_WAIT_S = 5.0  # how long `job show` waits for the topic's Presence state


async def cancel_request(client: AsyncClient, job_id: str, seq: int) -> dict[str, Any]:
    """Cancel the job's pending request number ``seq`` (``cancel_parameter_update``); returns its row."""
    args = {"p_job_id": check_job_id(job_id), "p_seq": seq}
    try:
        response = await client.rpc("cancel_parameter_update", args).execute()
    except (APIError, httpx.HTTPError) as exc:
        raise _explain(exc, client) from exc
    return cast(dict[str, Any], response.data)


async def end_run(client: AsyncClient, job_id: str) -> dict[str, Any]:
    """End the job's run (``end_training_run``): ``{"step": N | None, "cancelled": how many}``."""
    try:
        response = await client.rpc("end_training_run", {"p_job_id": check_job_id(job_id)}).execute()
    except (APIError, httpx.HTTPError) as exc:
        raise _explain(exc, client) from exc
    return cast(dict[str, Any], response.data)


async def trainer_present(client: AsyncClient, job_id: str, timeout: float = PRESENCE_WAIT_S) -> bool | None:
    """Whether a trainer is on the job's topic now; ``None`` when the topic's Presence did not arrive in time."""
    synced = asyncio.Event()
    channel = client.channel(job_topic(check_job_id(job_id)))
    channel.on_presence_sync(synced.set)
    try:
        await channel.subscribe()
        await asyncio.wait_for(synced.wait(), timeout)
    except Exception:  # Presence is a refinement of the row's heartbeat: without it, the row answers
        return None
    finally:
        with contextlib.suppress(Exception):
            await client.remove_channel(channel)
    return trainer_in(channel.presence_state())
