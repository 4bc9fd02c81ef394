"""Relaying a subscription from storage to a client that may read slowly, or not at all.

Messages from storage wait in a buffer of at most `buffer_bytes` (besides what HTTP/2 flow control holds)
while the client reads. When the client does not make room for `stall_s`, the subscription is ended:
the storage stream is closed, and the client receives RESOURCE_EXHAUSTED / SUBSCRIBER_TOO_SLOW with the
position to resume after (`after_position` in the error's metadata), once it reads again. A client that
never reads again is cut off after another `stall_s`. So a stalled subscriber costs bounded memory, and
never holds up the other subscribers or the writers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator

from allsource.v1 import query_pb2

from shared.core.errors import AllSourceError, ResourceExhausted
from shared.core.reasons import Reason


def position_of(message: query_pb2.SubscribeResponse) -> int:
    """The position a client may resume after once it has this message."""
    kind = message.WhichOneof("content")
    if kind == "events":
        return message.events.events[-1].position if message.events.events else 0
    if kind == "checkpoint":
        return message.checkpoint.position
    if kind == "caught_up":
        return message.caught_up.position
    return 0


class SubscriptionRelay:
    """Pulls from storage into a bounded buffer; yields to the client; ends a stalled subscription."""

    def __init__(
        self, source: AsyncIterator[query_pb2.SubscribeResponse], *, buffer_bytes: int, stall_s: float, start: int
    ) -> None:
        self.source = source
        self.buffer_bytes = buffer_bytes
        self.stall_s = stall_s
        self.delivered = start  # the client has everything up to here
        self._buffer: deque[tuple[query_pb2.SubscribeResponse, int]] = deque()
        self._size = 0
        self._changed = asyncio.Event()
        self._ended: BaseException | None = None
        self._stalled = False
        self._finished = False

    async def _pull(self, handler: asyncio.Task[object] | None) -> None:
        try:
            async for message in self.source:
                size = message.ByteSize()
                if self._size and self._size + size > self.buffer_bytes:
                    if not await self._room_for(size):
                        self._stalled = True
                        self._changed.set()
                        await self._cut_off_later(handler)
                        return
                self._buffer.append((message, size))
                self._size += size
                self._changed.set()
        except AllSourceError as exc:
            self._ended = exc
        except asyncio.CancelledError:
            raise
        self._finished = True
        self._changed.set()

    async def _room_for(self, size: int) -> bool:
        """Wait until the client has read enough; False when it has not within stall_s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.stall_s
        while self._size and self._size + size > self.buffer_bytes:
            left = deadline - loop.time()
            if left <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)
        return True

    async def _cut_off_later(self, handler: asyncio.Task[object] | None) -> None:
        """A client that never reads again does not take the refusal either: end its call outright."""
        await asyncio.sleep(self.stall_s)
        if handler is not None and not handler.done():
            handler.cancel()

    def _too_slow(self) -> ResourceExhausted:
        # Named when the client reads again: it has everything up to the last message it took.
        return ResourceExhausted(
            f"the subscriber read nothing for {self.stall_s:g} s; resume after position {self.delivered}",
            reason=Reason.SUBSCRIBER_TOO_SLOW,
            metadata={"after_position": str(self.delivered)},
            retry_after=1.0,
        )

    async def __aiter__(self) -> AsyncIterator[query_pb2.SubscribeResponse]:
        puller = asyncio.ensure_future(self._pull(asyncio.current_task()))
        try:
            while True:
                while not self._buffer and self._ended is None and not self._finished and not self._stalled:
                    self._changed.clear()
                    await self._changed.wait()
                if self._stalled:
                    raise self._too_slow()
                if self._ended is not None and not self._buffer:
                    raise self._ended
                if not self._buffer:
                    return
                message, size = self._buffer.popleft()
                self._size -= size
                self._changed.set()  # room for the puller
                yield message
                self.delivered = position_of(message) or self.delivered
        finally:
            puller.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await puller
