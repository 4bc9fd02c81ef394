"""Work on a thread that uses the database, awaited so that a cancelled caller does not outlive it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def on_thread(fn: Callable[..., T], *args: object) -> T:
    """fn(*args) on a thread. A caller cancelled meanwhile (the backend stopping, an RPC's client gone)
    still waits for the thread to end before the cancellation goes on: the thread reads or compacts the
    database, which a stop closes next, and `asyncio.to_thread` alone would return at once."""
    work = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(work)
    finally:
        if not work.done():
            await asyncio.wait([work])
