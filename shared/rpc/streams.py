"""Helpers for long-lived server streams."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from shared.core.errors import Unavailable
from shared.core.reasons import Reason

T = TypeVar("T")
_END = object()


async def _next(iterator: AsyncIterator[T]) -> object:
    try:
        return await iterator.__anext__()
    except StopAsyncIteration:
        return _END


def shutting_down() -> BaseException:
    """The error a long-lived stream ends with when the server drains: UNAVAILABLE, so clients resume."""
    return Unavailable("the server is shutting down; resume from the last position seen", reason=Reason.SHUTTING_DOWN)


async def until_closed(
    source: AsyncIterator[T], closing: asyncio.Event, *, error: Callable[[], BaseException] = shutting_down
) -> AsyncIterator[T]:
    """Relay source until it ends; when closing is set first, stop it and raise error()."""
    iterator = source.__aiter__()
    stop = asyncio.ensure_future(closing.wait())
    step: asyncio.Future[object] | None = None
    try:
        while True:
            step = asyncio.ensure_future(_next(iterator))
            await asyncio.wait((step, stop), return_when=asyncio.FIRST_COMPLETED)
            if not step.done():
                raise error()
            item = step.result()
            if item is _END:
                return
            yield item  # type: ignore[misc]
    finally:
        # Also when our own task is cancelled (the client hung up): the source must be stopped now, and
        # it cannot be closed while a pending step is still running inside it.
        stop.cancel()
        if step is not None and not step.done():
            step.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await step
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
