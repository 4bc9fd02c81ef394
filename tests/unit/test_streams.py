"""until_closed: a long-lived stream stops when the server drains or its call ends, at once where it waits,
without a task per message or per watched flag."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from shared.core.errors import AllSourceError
from shared.rpc.streams import Closing, until_closed


class Source:
    """Yields 1, 2, ... as `release` allows; records how it ended."""

    def __init__(self) -> None:
        self.release = asyncio.Queue[int]()
        self.ended = ""

    async def run(self) -> AsyncIterator[int]:
        try:
            while True:
                yield await self.release.get()
        except asyncio.CancelledError:
            self.ended = "cancelled"
            raise
        except GeneratorExit:
            self.ended = self.ended or "closed"
            raise


def test_a_drain_stops_a_waiting_stream_at_once_with_the_error_and_the_source_is_stopped() -> None:
    async def body() -> tuple[list[int], str, str, int]:
        closing, source, got = Closing(), Source(), []
        tasks_while_streaming = 0

        async def consume() -> None:
            nonlocal tasks_while_streaming
            async for item in until_closed(source.run(), closing):
                got.append(item)
                tasks_while_streaming = max(tasks_while_streaming, len(asyncio.all_tasks()))

        task = asyncio.ensure_future(consume())
        for i in range(3):
            source.release.put_nowait(i)
            await asyncio.sleep(0.01)
        closing.set()  # the stream is waiting on its source now
        with pytest.raises(AllSourceError) as err:
            await asyncio.wait_for(task, 1)
        return got, err.value.reason, source.ended, tasks_while_streaming

    got, reason, ended, tasks = asyncio.run(body())
    assert got == [0, 1, 2]
    assert reason == "SHUTTING_DOWN"
    assert ended == "cancelled"  # interrupted where it waited, not at some later wake-up
    assert tasks == 2  # this test's own and the consumer: no task per message or per watched flag


def test_a_drain_while_the_consumer_holds_a_message_ends_the_stream_at_the_next_step() -> None:
    async def body() -> tuple[list[int], str]:
        closing, source, got = Closing(), Source(), []

        async def consume() -> None:
            async for item in until_closed(source.run(), closing):
                got.append(item)
                closing.set()  # while this message is held
                await asyncio.sleep(0.01)

        source.release.put_nowait(7)
        source.release.put_nowait(8)
        with pytest.raises(AllSourceError) as err:
            await asyncio.wait_for(consume(), 1)
        return got, err.value.reason

    assert asyncio.run(body()) == ([7], "SHUTTING_DOWN")


def test_a_call_cancelled_by_its_client_ends_cancelled_not_with_the_drain_error() -> None:
    async def body() -> tuple[str, int]:
        closing, source = Closing(), Source()

        async def consume() -> None:
            async for _ in until_closed(source.run(), closing):
                pass

        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return source.ended, len(closing._watchers)

    ended, watchers = asyncio.run(body())
    assert ended == "cancelled" and watchers == 0  # the source stopped; nothing left watching


def test_nested_streams_end_with_the_outer_error_when_both_flags_are_set() -> None:
    """Storage's Subscribe: the call's end (inner, CancelledError) and the drain (outer) together."""

    async def body() -> tuple[str, int]:
        ended, closing, source = Closing(), Closing(), Source()

        left: list[int] = []

        async def consume() -> None:
            inner = until_closed(source.run(), ended, error=asyncio.CancelledError)
            try:
                async for _ in until_closed(inner, closing):
                    pass
            finally:
                me = asyncio.current_task()
                assert me is not None
                left.append(me.cancelling())  # no cancellation left pending for the handler's own cleanup

        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0.01)
        ended.set()
        closing.set()
        with pytest.raises(AllSourceError) as err:
            await asyncio.wait_for(task, 1)
        return err.value.reason, left[0]

    reason, cancelling = asyncio.run(body())
    assert reason == "SHUTTING_DOWN" and cancelling == 0
