"""services.storage.threads.on_thread: a cancelled caller waits for its thread."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from services.storage.threads import on_thread


def test_a_cancelled_caller_waits_for_the_thread_to_end() -> None:
    started = threading.Event()
    ended: list[float] = []

    def work() -> int:
        started.set()
        time.sleep(0.3)
        ended.append(time.monotonic())
        return 7

    async def body() -> None:
        assert await on_thread(lambda: 5) == 5
        caller = asyncio.ensure_future(on_thread(work))
        assert await asyncio.to_thread(started.wait, 5)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        assert ended and ended[0] <= time.monotonic()  # asyncio.to_thread alone: ended == []

    asyncio.run(body())
