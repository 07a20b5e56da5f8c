"""Waiting on an ``asyncio.Event`` with a timeout, without losing a cancellation."""

from __future__ import annotations

import asyncio


async def wait_for_event(event: asyncio.Event, timeout: float | None) -> None:
    """Wait until ``event`` is set or ``timeout`` passes (``None``: no timeout).

    Not ``asyncio.wait_for``: on Python < 3.12 it swallows a cancellation that arrives as the
    awaited thing completes, and a task that misses its cancellation keeps close() waiting.
    """
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter}, timeout=timeout)
    finally:
        waiter.cancel()
