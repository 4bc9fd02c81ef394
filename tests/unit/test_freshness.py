"""Reads with min_position (services.query.freshness): the feed's position, storage's head, the bounded
wait, and head calls shared by the reads waiting on a tenant."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from allsource.storage.v1 import storage_pb2

from services.query.cache import BYPASS, ReadCache
from services.query.freshness import HeadPolls, await_position
from shared.core.errors import Unavailable


class FakeStorage:
    """ReadEvents answering the tenant's head (after a short delay), counting calls."""

    def __init__(self, head: int) -> None:
        self.head = head
        self.calls = 0

    async def read_events(self, request: storage_pb2.ReadEventsRequest) -> tuple[Any, bytes]:
        self.calls += 1
        assert request.after_position > 1 << 60  # an empty range: nothing is scanned
        await asyncio.sleep(0.01)
        return storage_pb2.ReadEventsResponse(head_position=self.head), b""


def following(tenant: str) -> ReadCache:
    cache = ReadCache(max_bytes=1 << 20, max_bytes_per_tenant=1 << 20)
    cache.silence_s = 60
    cache.feed_started()
    cache.confirmed([tenant])
    return cache


async def fresh(cache: ReadCache, heads: HeadPolls, min_position: int, wait_s: float = 1.0) -> bool:
    """Await the position in a task of its own; whether the read then bypasses the cache."""

    async def run() -> bool:
        await await_position(cache, heads, "t", min_position, wait_s)
        return BYPASS.get()

    return await asyncio.create_task(run())


def test_a_position_the_feed_brought_needs_no_storage_call() -> None:
    async def main() -> None:
        storage = FakeStorage(head=0)
        cache = following("t")
        cache.reached("t", 7)
        assert await fresh(cache, HeadPolls(storage), 7) is False
        assert storage.calls == 0

    asyncio.run(main())


def test_a_waiting_read_is_woken_by_the_feed() -> None:
    async def main() -> None:
        storage = FakeStorage(head=4)
        cache = following("t")
        waiting = asyncio.ensure_future(fresh(cache, HeadPolls(storage), 5))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        storage.head = 5  # committed, and then the feed brings it
        cache.reached("t", 5)
        assert await asyncio.wait_for(waiting, 1) is False  # the cache has applied it: no bypass

    asyncio.run(main())


def test_storage_having_the_position_bypasses_the_cache() -> None:
    async def main() -> None:
        storage = FakeStorage(head=9)
        cache = following("other")  # this replica does not follow "t"
        assert await fresh(cache, HeadPolls(storage), 9) is True
        assert BYPASS.get() is False  # only the read's own task

    asyncio.run(main())


def test_beyond_the_log_is_refused_after_the_bound_with_shared_head_calls() -> None:
    async def main() -> None:
        storage = FakeStorage(head=3)
        heads = HeadPolls(storage)
        cache = following("t")
        started = time.monotonic()
        results = await asyncio.gather(
            *(fresh(cache, heads, 1000, wait_s=0.3) for _ in range(50)), return_exceptions=True
        )
        took = time.monotonic() - started
        assert all(isinstance(r, Unavailable) and r.reason == "MIN_POSITION_NOT_REACHED" for r in results), results
        error = results[0]
        assert isinstance(error, Unavailable) and error.retry_after and error.metadata["head_position"] == "3"
        assert 0.3 <= took < 2, took
        # 50 readers polling for 0.3 s (5 ms doubling to 100 ms) would make hundreds of calls alone.
        assert storage.calls <= 30, storage.calls

    asyncio.run(main())


def test_no_min_position_returns_at_once() -> None:
    async def main() -> None:
        storage = FakeStorage(head=0)
        assert await fresh(following("t"), HeadPolls(storage), 0) is False
        assert storage.calls == 0

    asyncio.run(main())


@pytest.fixture(autouse=True)
def _no_bypass_leaks() -> None:
    assert BYPASS.get() is False
