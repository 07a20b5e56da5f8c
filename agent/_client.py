"""Builds the official ``supabase`` async client; the one factory for the agent and the CLI.

REST (``_rest.py``), each Realtime subscription (``_subscription.py``) and the user's side
(``liveparams.jobs``) make their own client and must authenticate the same way:

- ``api_key`` is the ``apikey`` the API gateway checks (a project key; on the local stack any
  project-signed JWT, so a job token alone works as both).
- ``bearer``, when given and different, is the ``Authorization`` bearer for REST and the
  ``access_token`` Realtime authorises channels with, so RLS sees it: a job token with the
  project's anon key, or a signed-in user's access token.
"""

from __future__ import annotations

import httpx
from supabase import AsyncClient, AsyncClientOptions, acreate_client
from supabase.types import RealtimeClientOptions

__all__ = ["create_client"]


async def create_client(
    url: str,
    api_key: str,
    bearer: str | None = None,
    *,
    schema: str = "public",
    realtime: RealtimeClientOptions | None = None,
    http_client: httpx.AsyncClient | None = None,
) -> AsyncClient:
    """A client for the project at ``url``; no network is touched until it is used.

    ``http_client`` carries REST calls (the caller closes it). Retries are the caller's:
    the client's own would not respect the agent's shutdown deadline.
    """
    options = AsyncClientOptions(
        schema=schema,
        headers={"Authorization": f"Bearer {bearer}"} if bearer else {},
        auto_refresh_token=False,
        persist_session=False,
        postgrest_client_retry=False,
        realtime=realtime,
        httpx_client=http_client,
    )
    client = await acreate_client(url, api_key, options)
    if bearer and bearer != api_key:
        await client.realtime.set_auth(bearer)  # no channel yet: only sets the join's access_token
    return client
