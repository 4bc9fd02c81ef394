"""The subscription relay: a slow subscriber gets a bounded buffer, then a refusal naming where to resume."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from allsource.v1 import event_pb2, query_pb2

from services.query.relay import SubscriptionRelay
from shared.core.errors import AllSourceError


def events(first: int, count: int) -> query_pb2.SubscribeResponse:
    batch = [event_pb2.Event(position=p, payload=b"x" * 1000) for p in range(first, first + count)]
    return query_pb2.SubscribeResponse(events=event_pb2.EventBatch(events=batch))


async def endless(produced: list[int]) -> AsyncIterator[query_pb2.SubscribeResponse]:
    position = 1
    while True:
        produced.append(position)
        yield events(position, 10)
        position += 10
        await asyncio.sleep(0)


def test_a_reader_that_keeps_up_gets_everything_in_order() -> None:
    async def body() -> list[int]:
        produced: list[int] = []
        relay = SubscriptionRelay(endless(produced), buffer_bytes=32 * 1024, stall_s=5, start=0)
        seen = []
        async for message in relay.__aiter__():
            seen += [e.position for e in message.events.events]
            if len(seen) >= 500:
                break
        return seen

    assert asyncio.run(body()) == list(range(1, 501))


def test_a_stalled_reader_is_bounded_then_told_where_to_resume() -> None:
    async def body() -> tuple[int, int, AllSourceError]:
        produced: list[int] = []
        relay = SubscriptionRelay(endless(produced), buffer_bytes=32 * 1024, stall_s=1.0, start=0)
        iterator = relay.__aiter__()
        first = await iterator.__anext__()  # the client read one message, then stalls
        await asyncio.sleep(1.3)  # past the stall
        pulled_while_stalled = len(produced)
        await asyncio.sleep(0.2)
        assert len(produced) == pulled_while_stalled, "the relay kept pulling for a stalled reader"
        with pytest.raises(AllSourceError) as err:
            await iterator.__anext__()  # the client reads again: it is told to resume
        return first.events.events[-1].position, pulled_while_stalled, err.value

    last_read, pulled, error = asyncio.run(body())
    assert pulled * 10 * 1000 <= 32 * 1024 + 3 * 10_500, "more than the buffer was pulled from storage"
    assert (error.code.name, error.reason) == ("RESOURCE_EXHAUSTED", "SUBSCRIBER_TOO_SLOW")
    assert error.metadata["after_position"] == str(last_read)
    assert error.retry_after is not None


def test_a_reader_that_never_reads_again_is_cut_off() -> None:
    async def body() -> bool:
        produced: list[int] = []
        relay = SubscriptionRelay(endless(produced), buffer_bytes=32 * 1024, stall_s=0.2, start=0)
        reading = asyncio.Event()

        async def handler() -> None:
            async for _ in relay.__aiter__():
                reading.set()
                await asyncio.sleep(3600)  # a write to the client that never completes

        task = asyncio.ensure_future(handler())
        await reading.wait()
        try:
            await asyncio.wait_for(task, 5)
        except asyncio.CancelledError:
            return True
        return False

    assert asyncio.run(body()), "the stalled call was not ended"
