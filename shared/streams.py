"""Helpers for long-lived server streams."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TypeVar

from shared.errors import Unavailable

T = TypeVar("T")
_END = object()


async def _next(iterator: AsyncIterator[T]) -> object:
    try:
        return await iterator.__anext__()
    except StopAsyncIteration:
        return _END


async def until_closed(source: AsyncIterator[T], closing: asyncio.Event) -> AsyncIterator[T]:
    """Relay source until it ends; when closing is set first, end with UNAVAILABLE (SHUTTING_DOWN)."""
    iterator = source.__aiter__()
    stop = asyncio.ensure_future(closing.wait())
    try:
        while True:
            step = asyncio.ensure_future(_next(iterator))
            await asyncio.wait((step, stop), return_when=asyncio.FIRST_COMPLETED)
            if not step.done():
                step.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await step
                raise Unavailable(
                    "the server is shutting down; resume from the last position seen", reason="SHUTTING_DOWN"
                )
            item = step.result()
            if item is _END:
                return
            yield item  # type: ignore[misc]
    finally:
        stop.cancel()
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
