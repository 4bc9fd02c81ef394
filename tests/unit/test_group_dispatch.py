"""The consumer-group dispatcher (services.storage.groups.Group) against an in-memory log: deliveries built
from stored bytes, pipelined batches, strict by-stream order, ack deadlines, nacks and a strategy switch."""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Callable, Coroutine
from typing import Any

from allsource.v1 import event_pb2, groups_pb2
from google.protobuf import duration_pb2

from services.storage.backend import EventRun, Record
from services.storage.groups import MAX_DELIVERY_BYTES, Entry, Group, delivery_bytes, parked_key, with_defaults


class MemoryLog:
    """What Group uses of a backend: one tenant's log (positions 1..n) and its records."""

    def __init__(self) -> None:
        self.events: list[bytes] = []
        self.records: dict[tuple[str, str], bytes] = {}
        self.know_positions = True  # like the RocksDB log scan: round robin then decodes nothing

    def append(self, stream_id: str, count: int, payload: bytes = b"{}") -> None:
        for _ in range(count):
            position = len(self.events) + 1
            event = event_pb2.Event(stream_id=stream_id, position=position, event_type="T", payload=payload)
            self.events.append(event.SerializeToString())

    async def head_position(self, tenant_id: str) -> int:
        return len(self.events)

    async def check_tenant_usable(self, tenant_id: str) -> None:
        return None

    async def read_events(
        self, tenant_id: str, event_filter: Any, *, after_position: int, limit: int, **_: Any
    ) -> EventRun:
        run = self.events[after_position : after_position + limit]
        end = after_position + len(run)
        positions = list(range(after_position + 1, end + 1)) if self.know_positions else None
        return EventRun(run, end, end >= len(self.events), positions)

    async def wait_for_commit(self, tenant_id: str, after_position: int, timeout: float) -> bool:
        await asyncio.sleep(timeout)
        return False

    async def put_record(self, tenant_id: str, namespace: str, key: str, value: bytes, expected: int | None) -> Record:
        self.records[(namespace, key)] = value
        return Record(namespace, key, value, 1)

    async def delete_record(self, tenant_id: str, namespace: str, key: str, expected: int | None) -> bool:
        return self.records.pop((namespace, key), None) is not None

    async def list_records(self, tenant_id: str, namespace: str, after: str, limit: int) -> tuple[list[Record], bool]:
        keys = sorted(k for ns, k in self.records if ns == namespace)
        chosen = keys[bisect.bisect_right(keys, after) :][:limit]
        return [Record(namespace, k, self.records[(namespace, k)], 1) for k in chosen], len(chosen) < limit


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 20))


def group_of(log: MemoryLog, **settings: Any) -> Group:
    definition = with_defaults(
        groups_pb2.ConsumerGroup(name="g", settings=groups_pb2.ConsumerGroupSettings(**settings))
    )
    return Group(log, "t", definition, 0, 0)  # type: ignore[arg-type]


def positions(batch: list[Entry]) -> list[int]:
    return [e.position for e in batch]


def test_a_delivery_is_the_stored_bytes_with_the_retry_count() -> None:
    events = [event_pb2.Event(stream_id=f"s{i}", position=i, payload=b"x" * i) for i in (1, 2, 300)]
    batch = [Entry(e.position, e.stream_id, e.SerializeToString(), retries=i * 200) for i, e in enumerate(events)]
    expected = groups_pb2.ConsumeResponse(
        delivery=groups_pb2.ConsumeDelivery(
            events=[groups_pb2.DeliveredEvent(event=e, retry_count=i * 200) for i, e in enumerate(events)]
        )
    )
    assert delivery_bytes(batch) == expected.SerializeToString()


def test_batches_are_half_the_window_so_the_next_is_on_its_way_before_the_acks() -> None:
    async def body() -> None:
        log = MemoryLog()
        log.append("a", 1000)
        group = group_of(log, max_in_flight_per_consumer=100)
        consumer = group.join("c", 100)
        first = await group.take(consumer)
        second = await group.take(consumer)
        assert positions(first) == list(range(1, 51)) and positions(second) == list(range(51, 101))
        assert len(consumer.in_flight) == 100
        idle = asyncio.ensure_future(group.take(consumer))  # the window is full: it waits for acks
        await asyncio.sleep(0.05)
        assert not idle.done()
        await group.ack(consumer, positions(first))
        assert positions(await idle) == list(range(101, 151))
        assert group.checkpoint() == 50
        assert len(group.leases) >= 1 and all(lease.held in (0, 50) for _, _, lease in group.leases)

    run(body)


def test_a_delivery_stays_within_its_byte_bound_but_always_carries_one_event() -> None:
    async def body() -> None:
        log = MemoryLog()
        log.append("a", 10, payload=b"x" * (MAX_DELIVERY_BYTES // 3))
        group = group_of(log)
        consumer = group.join("c", 100)
        sizes = [len(await group.take(consumer)) for _ in range(4)]
        assert sizes[0] == 2 and sum(sizes) == 8  # three of a third are over the bound with their framing

        log2 = MemoryLog()
        log2.append("a", 2, payload=b"x" * (MAX_DELIVERY_BYTES + 10))
        big = group_of(log2)
        assert len(await big.take(big.join("c", 100))) == 1

    run(body)


def test_by_stream_holds_one_event_per_stream_in_flight_and_a_retry_goes_first() -> None:
    async def body() -> None:
        log = MemoryLog()
        for _ in range(5):
            log.append("a", 1)
            log.append("b", 1)
            log.append("c", 1)
        group = group_of(log, strategy=groups_pb2.CONSUMER_STRATEGY_BY_STREAM)
        one, two = group.join("one", 100), group.join("two", 100)
        first = await group.take(one)
        assert positions(first) == [1, 2, 3]  # the oldest of each stream
        idle = asyncio.ensure_future(group.take(two))
        await asyncio.sleep(0.05)
        assert not idle.done()  # every stream is busy
        await group.nack(one, [1], groups_pb2.NACK_ACTION_RETRY, "again")  # a's first goes round again
        again = await idle
        assert positions(again) == [1] and again[0].retries == 1
        await group.ack(one, [2, 3])
        assert positions(await group.take(one)) == [5, 6]  # b's and c's next; a is busy with 1 on two
        await group.ack(two, [1])
        assert positions(await group.take(two)) == [4]
        delivered: dict[str, list[int]] = {}
        for consumer in (one, two):
            for entry in consumer.in_flight.values():
                delivered.setdefault(entry.stream_id, []).append(entry.position)
        assert all(len(v) == 1 for v in delivered.values()), delivered

    run(body)


def test_unacked_events_come_back_after_the_deadline_then_park_past_max_retries() -> None:
    async def body() -> None:
        log = MemoryLog()
        log.append("a", 4)
        group = group_of(log, ack_timeout=duration_pb2.Duration(nanos=100_000_000), max_retries=1)
        consumer = group.join("c", 4)
        assert positions(await group.take(consumer)) == [1, 2]
        await group.ack(consumer, [2])
        assert positions(await group.take(consumer)) == [3, 4]
        again: list[Entry] = []
        while len(again) < 3:  # after 100 ms, 1, 3 and 4 (held, unacked) come back
            again += await group.take(consumer)
        assert sorted(positions(again)) == [1, 3, 4] and {e.retries for e in again} == {1}
        await group.ack(consumer, [3, 4])
        await asyncio.sleep(0.15)
        await group._expire()  # 1 comes back a second time: past max_retries it is parked
        assert group.parked_count == 1 and ("consumer_group_parked", parked_key("g", 1)) in log.records
        parked = groups_pb2.ParkedEvent.FromString(log.records[("consumer_group_parked", parked_key("g", 1))])
        assert parked.event.position == 1 and parked.retry_count == 2 and "max retries" in parked.reason
        assert group.checkpoint() == 4 and not group.entries

    run(body)


def test_a_consumer_leaving_hands_its_events_back_in_order() -> None:
    async def body() -> None:
        log = MemoryLog()
        log.append("a", 6)
        group = group_of(log)
        leaving, staying = group.join("leaving", 4), group.join("staying", 100)
        assert positions(await group.take(leaving)) == [1, 2]
        await group.leave(leaving)
        batch = await group.take(staying)
        assert positions(batch) == [1, 2, 3, 4, 5, 6] and [e.retries for e in batch[:2]] == [1, 1]

    run(body)


def test_switching_to_by_stream_counts_what_is_in_flight() -> None:
    async def body() -> None:
        log = MemoryLog()
        log.append("a", 6)
        group = group_of(log)
        consumer = group.join("c", 100)
        assert positions(await group.take(consumer)) == [1, 2, 3, 4, 5, 6]
        await group.nack(consumer, [5, 6], groups_pb2.NACK_ACTION_RETRY, "")
        definition = groups_pb2.ConsumerGroup()
        definition.CopyFrom(group.group)
        definition.settings.strategy = groups_pb2.CONSUMER_STRATEGY_BY_STREAM
        group.redefine(definition)
        await group.ack(consumer, [1, 2, 3])
        idle = asyncio.ensure_future(group.take(consumer))
        await asyncio.sleep(0.05)
        assert not idle.done()  # 4 is still in flight: stream a is busy
        await group.ack(consumer, [4])
        assert positions(await idle) == [5]

    run(body)


def test_without_positions_from_the_backend_events_are_decoded_and_dispatch_is_the_same() -> None:
    async def body() -> None:
        log = MemoryLog()
        log.know_positions = False
        log.append("a", 3)
        log.append("b", 3)
        group = group_of(log)
        consumer = group.join("c", 100)
        batch = await group.take(consumer)
        assert positions(batch) == [1, 2, 3, 4, 5, 6]
        assert [e.stream_id for e in batch] == ["a"] * 3 + ["b"] * 3

    run(body)
