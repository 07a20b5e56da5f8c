"""The functions ``/rpc`` may call, kept between requests as PostgREST's schema cache keeps them.

Reading ``pg_proc`` on every call was a fifth of the server's time under many jobs (py-spy,
docs/benchmarks.md). PostgREST reads the catalog once and reloads it on ``NOTIFY pgrst,
'reload schema'`` (or an empty payload) and whenever its listening connection reconnects;
this cache does the same, and is stricter where that is cheap:

- nothing is served from the cache unless the ``LISTEN pgrst`` connection is up (a notification
  could be missed while it is down, so every call reads the catalog then, as before);
- a name that is not cached, or whose cached candidates match none of the arguments given, is
  read again before the call is refused (a function created without a notification is found);
- a call that fails because the cached function is gone (``undefined_function``) is resolved
  again once (``api.py``);
- a fill that raced a notification is not stored (the generation changed under it).

What is left to the notification, as on Supabase, is a change that keeps a cached candidate
callable: a new overload beside a cached one, or a function dropped and re-created with another
return type under the same arguments.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Generic, TypeVar

import psycopg

__all__ = ["RELOAD_CHANNEL", "SchemaCache"]

logger = logging.getLogger(__name__)

RELOAD_CHANNEL = "pgrst"
RELOAD_PAYLOADS = ("", "reload schema")  # PostgREST: an empty payload reloads everything too
RECONNECT_S = 1.0

T = TypeVar("T")


class SchemaCache(Generic[T]):
    """Entries by function name, valid while the ``LISTEN pgrst`` connection is up and nothing asked to reload.

    Args:
        conninfo (`str`): where to listen (any role may ``LISTEN``).
    """

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._entries: dict[str, T] = {}
        self._listening = False
        self.generation = 0  # bumped on every reload; a fill stores only if it did not change meanwhile
        self._task: asyncio.Task[None] | None = None

    def get(self, name: str) -> T | None:
        return self._entries.get(name) if self._listening else None

    def put(self, name: str, entry: T, generation: int) -> None:
        """Keep ``entry`` if the catalog was read at ``generation`` and no reload happened since."""
        if self._listening and generation == self.generation:
            self._entries[name] = entry

    def forget(self, name: str) -> None:
        self._entries.pop(name, None)

    def reload(self) -> None:
        self.generation += 1
        self._entries.clear()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="rest.schema_cache")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self) -> None:
        """Hold ``LISTEN pgrst``; reconnect after PostgreSQL restarts, serving nothing cached meanwhile."""
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True) as conn:
                    await conn.execute(f"listen {RELOAD_CHANNEL}")
                    self.reload()  # whatever changed while no one listened
                    self._listening = True
                    async for notify in conn.notifies():
                        if notify.payload in RELOAD_PAYLOADS:
                            self.reload()
            except psycopg.Error as exc:
                logger.debug("Schema cache: the LISTEN connection failed (%s); reconnecting", exc)
            finally:
                self._listening = False
                self.reload()
            await asyncio.sleep(RECONNECT_S)
