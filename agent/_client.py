"""Builds the official ``supabase`` async client the way the agent authenticates.

One place for it, because REST (``_rest.py``) and each Realtime subscription
(``_subscription.py``) make their own client and must authenticate the same way:

- ``config.key`` alone: it is both the ``apikey`` and the bearer (a service key, or a job
  token on a stack that accepts any project-signed JWT as apikey, like the local one).
- with ``config.api_key`` (the project's anon/publishable key): that is the ``apikey`` the
  API gateway checks, and ``config.key`` (the job token) is the bearer for REST and the
  ``access_token`` Realtime authorises the channel with, so RLS sees the job token.
"""

from __future__ import annotations

import httpx
from supabase import AsyncClient, AsyncClientOptions, acreate_client
from supabase.types import RealtimeClientOptions

from liveparams.agent._config import AgentConfig

__all__ = ["create_client"]


async def create_client(
    config: AgentConfig,
    *,
    realtime: RealtimeClientOptions | None = None,
    http_client: httpx.AsyncClient | None = None,
) -> AsyncClient:
    """A client for ``config``'s project; no network is touched until it is used.

    ``http_client`` carries REST calls (the caller closes it); pass one whenever REST is used.
    """
    options = AsyncClientOptions(
        schema=config.schema,
        headers={"Authorization": f"Bearer {config.key}"},
        auto_refresh_token=False,
        persist_session=False,
        postgrest_client_retry=False,  # retries are the agent's, bounded by close()'s deadline
        realtime=realtime,
        httpx_client=http_client,
    )
    client = await acreate_client(config.url, config.api_key or config.key, options)
    if config.api_key:
        await client.realtime.set_auth(config.key)  # no channel yet: only sets the join's access_token
    return client
