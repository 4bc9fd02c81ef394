"""Helpers for long-lived server streams."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from shared.core.errors import Unavailable
from shared.core.reasons import Reason

T = TypeVar("T")


def shutting_down() -> BaseException:
    """The error a long-lived stream ends with when the server drains: UNAVAILABLE, so clients resume."""
    return Unavailable("the server is shutting down; resume from the last position seen", reason=Reason.SHUTTING_DOWN)


class Closing:
    """Set once, when a server drains or a call ends; long-lived streams stop on it.

    Unlike an asyncio.Event, watching it costs no task and no future: `set` calls each watcher at once.
    A thousand idle subscriptions each watched two events through a task apiece (and a task per message
    relayed), objects every full garbage collection walks."""

    def __init__(self) -> None:
        self._set = False
        self._watchers: dict[int, Callable[[], None]] = {}
        self._next = 0

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if self._set:
            return
        self._set = True
        watchers, self._watchers = self._watchers, {}
        for watcher in watchers.values():
            watcher()

    def watch(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` (on the event loop's thread) when set; returns what stops watching."""
        self._next += 1
        key = self._next
        self._watchers[key] = callback

        def stop() -> None:
            self._watchers.pop(key, None)

        return stop


async def until_closed(
    source: AsyncIterator[T], closing: Closing, *, error: Callable[[], BaseException] = shutting_down
) -> AsyncIterator[T]:
    """Relay source until it ends; when closing is set first, stop it and raise error().

    While this waits on the source, setting `closing` cancels the task (the source sees CancelledError
    where it waits, as when the client hangs up) and error() is raised instead; while the consumer holds
    a message, the next step raises it."""
    iterator = source.__aiter__()
    task = asyncio.current_task()
    assert task is not None
    waiting = cut = False

    def interrupt() -> None:
        nonlocal cut
        if waiting and not cut:
            cut = True
            task.cancel()

    stop = closing.watch(interrupt)
    try:
        while True:
            if closing.is_set():
                raise error()
            waiting = True
            try:
                item = await iterator.__anext__()
            except StopAsyncIteration:
                return
            except BaseException:
                if not cut:
                    raise  # not ours (a CancelledError: the call itself was cancelled)
                # Ours, whatever the source made of it (an inner until_closed raises its own error).
                task.uncancel()
                raise error() from None
            finally:
                waiting = False
            if cut:  # the source took the cancellation and went on: ours all the same
                task.uncancel()
                raise error()
            yield item
    finally:
        stop()
        # The source must be stopped now (also when our own task is cancelled: the client hung up).
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
