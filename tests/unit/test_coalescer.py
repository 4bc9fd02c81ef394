"""The ingest coalescer: concurrent appends share storage calls, each keeps its own outcome."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from allsource.storage.v1 import storage_pb2
from allsource.v1 import event_pb2, ingest_pb2

from services.ingest.coalescer import AppendCoalescer
from shared.core.errors import AllSourceError, Unavailable


class FakeStorage:
    """Answers Append calls after a delay; fails the appends whose stream is 'bad'."""

    def __init__(self, delay: float = 0.01, fail_call: bool = False) -> None:
        self.delay = delay
        self.fail_call = fail_call
        self.calls: list[list[str]] = []
        self.in_flight: list[set[str]] = []
        self.overlaps: list[set[str]] = []  # streams carried by two calls in flight at the same time
        self.concurrent = 0

    def scope(self) -> str:
        return "scope-of-the-caller"

    async def append_raw(self, raw: bytes, *, idempotent: bool = False) -> storage_pb2.AppendResponse:
        request = storage_pb2.AppendRequest.FromString(raw)
        streams = [op.request.stream_id for op in request.operations]
        self.calls.append(streams)
        mine = set(streams)
        for other in self.in_flight:
            if other & mine:
                self.overlaps.append(other & mine)
        self.in_flight.append(mine)
        self.concurrent = max(self.concurrent, len(self.in_flight))
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight.remove(mine)
        if self.fail_call:
            raise Unavailable("storage is down", reason="STORAGE_UNAVAILABLE")
        response = storage_pb2.AppendResponse()
        for i, op in enumerate(request.operations):
            assert op.tenant_id == "default" and op.scope == "scope-of-the-caller"  # each append carries its scope
            outcome = response.outcomes.add()
            if op.request.stream_id == "bad":
                outcome.error.CopyFrom(AllSourceError("no", reason="WRONG_EXPECTED_VERSION").to_status())
            else:
                outcome.success.first_position = i + 1
        return response


def append(stream: str, payload_bytes: int = 2) -> ingest_pb2.AppendEventsRequest:
    payload = b'"' + b"x" * (payload_bytes - 2) + b'"' if payload_bytes > 2 else b"{}"
    return ingest_pb2.AppendEventsRequest(
        stream_id=stream, events=[event_pb2.EventData(event_type="E", payload=payload)]
    )


def make(storage: FakeStorage, **kw: Any) -> AppendCoalescer:
    options: dict[str, Any] = {"in_flight": 2, "max_appends": 1024, "max_bytes": 8 << 20, "parallel_bytes": 1 << 20}
    options.update(kw)
    return AppendCoalescer(storage, **options)  # type: ignore[arg-type]


def test_concurrent_appends_share_calls_and_keep_their_own_outcome() -> None:
    async def body() -> None:
        storage = FakeStorage()
        c = make(storage)
        results = await asyncio.gather(
            *(c.append("default", append(f"s{i}" if i != 7 else "bad")) for i in range(40)), return_exceptions=True
        )
        assert len(storage.calls) <= 3, storage.calls  # the first goes alone, the rest wait behind it
        assert sum(len(call) for call in storage.calls) == 40
        assert isinstance(results[7], AllSourceError) and results[7].reason == "WRONG_EXPECTED_VERSION"
        assert all(isinstance(r[0], ingest_pb2.AppendEventsResponse) for i, r in enumerate(results) if i != 7)

    asyncio.run(body())


def test_a_failed_call_fails_every_append_it_carried() -> None:
    async def body() -> None:
        c = make(FakeStorage(fail_call=True))
        results = await asyncio.gather(
            *(c.append("default", append(f"s{i}")) for i in range(5)), return_exceptions=True
        )
        assert all(isinstance(r, AllSourceError) and r.reason == "STORAGE_UNAVAILABLE" for r in results)

    asyncio.run(body())


def test_call_bounds_are_respected() -> None:
    async def body() -> None:
        storage = FakeStorage()
        c = make(storage, max_appends=4, in_flight=1)
        await asyncio.gather(*(c.append("default", append(f"s{i}")) for i in range(13)))
        assert [len(call) for call in storage.calls] == [1, 4, 4, 4]

    asyncio.run(body())


def test_bulk_backlog_uses_a_second_call() -> None:
    async def body() -> None:
        storage = FakeStorage(delay=0.02)
        c = make(storage, parallel_bytes=100_000, max_bytes=150_000, in_flight=2)
        await asyncio.gather(*(c.append("default", append(f"b{i}", 60_000)) for i in range(6)))
        assert max(len(call) for call in storage.calls) <= 2  # bytes bound
        assert len(storage.calls) >= 3

    asyncio.run(body())


@pytest.mark.parametrize("linger", [0.0, 0.02])
def test_commit_delay_only_under_load(linger: float) -> None:
    async def body() -> None:
        storage = FakeStorage(delay=0.005)
        c = make(storage, in_flight=1, linger_s=linger, linger_until=8)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await c.append("default", append("alone"))
        assert loop.time() - started < 0.015  # an idle store never waits
        # a steady trickle of appends while calls are running
        tasks = []
        for i in range(30):
            tasks.append(asyncio.ensure_future(c.append("default", append(f"t{i}"))))
            await asyncio.sleep(0.001)
        await asyncio.gather(*tasks)
        sizes = [len(call) for call in storage.calls[1:]]
        if linger:
            assert max(sizes) >= 8 and len(sizes) <= 6, sizes
        else:
            assert len(sizes) > 6, sizes

    asyncio.run(body())


def test_a_second_call_never_carries_a_stream_already_in_flight() -> None:
    async def body() -> None:
        storage = FakeStorage(delay=0.02)
        c = make(storage, parallel_bytes=50_000, max_bytes=10_000_000, in_flight=2)
        # big appends alternate between two streams; the backlog is bulk-sized, so two calls may run
        tasks = [asyncio.ensure_future(c.append("default", append(f"s{i % 2}", 30_000))) for i in range(10)]
        await asyncio.sleep(0)
        await asyncio.gather(*tasks)
        assert storage.concurrent == 2, "the backlog should have used a second call"
        assert storage.overlaps == [], storage.calls
        assert sum(len(call) for call in storage.calls) == 10

    asyncio.run(body())


def test_few_sequential_writers_are_not_held_for_company_that_cannot_come() -> None:
    """Three writers each waiting for their answer: the wait ends when all three are back, not at the
    commit-delay deadline (the previous call's writers are the only ones that can join)."""

    async def body() -> None:
        storage = FakeStorage(delay=0.002)
        c = make(storage, in_flight=1, linger_s=0.2, linger_until=20)

        async def writer(n: int) -> None:
            for i in range(10):
                await c.append("default", append(f"w{n}-{i}"))

        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.gather(*(writer(n) for n in range(3)))
        assert loop.time() - started < 0.5, "calls waited for the commit-delay deadline"
        assert sum(len(call) for call in storage.calls) == 30

    asyncio.run(body())


def test_many_concurrent_writers_fill_calls_up_to_linger_until() -> None:
    async def body() -> None:
        storage = FakeStorage(delay=0.002)
        c = make(storage, in_flight=1, linger_s=0.05, linger_until=16)

        async def writer(n: int) -> None:
            for i in range(20):
                await c.append("default", append(f"w{n}-{i}"))
                await asyncio.sleep(0.0005 * (n % 3))  # writers come back at different times

        await asyncio.gather(*(writer(n) for n in range(32)))
        sizes = [len(call) for call in storage.calls]
        assert sum(sizes) == 640
        assert sum(sizes) / len(sizes) >= 12, sizes

    asyncio.run(body())


class TenantsStorage(FakeStorage):
    """Records each call's (tenant, stream) pairs; every append succeeds."""

    def __init__(self, delay: float = 0.01) -> None:
        super().__init__(delay)
        self.carried: list[list[tuple[str, str]]] = []

    async def append_raw(self, raw: bytes, *, idempotent: bool = False) -> storage_pb2.AppendResponse:
        request = storage_pb2.AppendRequest.FromString(raw)
        self.carried.append([(op.tenant_id, op.request.stream_id) for op in request.operations])
        await asyncio.sleep(self.delay)
        response = storage_pb2.AppendResponse()
        for _ in request.operations:
            response.outcomes.add().success.first_position = 1
        return response


def test_a_tenants_backlog_does_not_push_anothers_append_into_later_calls() -> None:
    """Calls take the tenants in turn: the quiet tenant's append, queued behind 12 of the noisy tenant's,
    rides in the next call. Before, the queue went first in, first out: with four appends per call it
    waited three calls more."""

    async def body() -> list[list[tuple[str, str]]]:
        storage = TenantsStorage()
        c = make(storage, max_appends=4)
        first = asyncio.ensure_future(c.append("noisy", append("n-first")))
        await asyncio.sleep(0)  # its call is in flight; the rest queue
        noisy = [asyncio.ensure_future(c.append("noisy", append(f"n{i}"))) for i in range(12)]
        quiet = asyncio.ensure_future(c.append("quiet", append("q")))
        await asyncio.gather(first, *noisy, quiet)
        return storage.carried

    carried = asyncio.run(body())
    assert carried[0] == [("noisy", "n-first")]
    assert ("quiet", "q") in carried[1], carried
    # Each tenant's appends keep their order.
    noisy_order = [stream for call in carried for tenant, stream in call if tenant == "noisy"]
    assert noisy_order == ["n-first", *[f"n{i}" for i in range(12)]]


def test_a_tenants_backlog_is_bounded_by_its_share_and_the_others_still_queue() -> None:
    async def body() -> tuple[list[str], bool]:
        storage = TenantsStorage(delay=0.05)
        c = make(storage, max_queued_bytes=4 << 20, max_queued_bytes_per_tenant=1 << 20)
        first = asyncio.ensure_future(c.append("noisy", append("n-first")))
        await asyncio.sleep(0)
        outcomes: list[str] = []

        async def one(tenant: str, stream: str) -> None:
            try:
                await c.append(tenant, append(stream, 300_000))
                outcomes.append(f"{tenant}:OK")
            except AllSourceError as exc:
                outcomes.append(f"{tenant}:{exc.code.name}/{exc.reason}/{exc.metadata.get('limit')}")
                assert exc.retry_after is not None

        noisy = [asyncio.ensure_future(one("noisy", f"n{i}")) for i in range(6)]
        await asyncio.sleep(0)
        quiet = asyncio.ensure_future(one("quiet", "q"))
        await asyncio.gather(first, *noisy, quiet)
        return outcomes, c._tenant_bytes == {}

    outcomes, drained = asyncio.run(body())
    # Three of 300 KB fit the noisy tenant's 1 MB share; the other three are refused, and the quiet
    # tenant's append is taken (the queue's 4 MB had room for all of them).
    refused = "noisy:RESOURCE_EXHAUSTED/RATE_LIMITED/ingest.max_queued_bytes_per_tenant"
    assert sorted(outcomes) == sorted(["noisy:OK"] * 3 + [refused] * 3 + ["quiet:OK"]), outcomes
    assert drained
