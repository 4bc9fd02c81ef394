"""The storage contract, written once and run against every backend (see test_rocksdb_contract.py).

A backend test module subclasses StorageContract and implements `new_backend(path)`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from allsource.storage.v1 import lifecycle_pb2, model_pb2
from allsource.v1 import event_pb2, tenant_pb2
from google.protobuf import duration_pb2

from services.storage.backend import AppendOp, Snapshot, StorageBackend
from services.storage.keys import LIFECYCLE_LEDGER_NS
from services.storage.subscribe import SubscriptionParams, follow
from shared.core.errors import AllSourceError
from shared.core.timestamps import from_timestamp
from shared.core.wire import recast

T = "default"
K = model_pb2.ExpectedVersionKind


def ev(event_type: str = "Happened", payload: bytes = b"{}", event_id: str = "", **meta: str) -> model_pb2.EventInput:
    return model_pb2.EventInput(event_id=event_id, event_type=event_type, payload=payload, metadata=meta)


def req(
    stream: str,
    *events: model_pb2.EventInput,
    kind: int = K.EXPECTED_VERSION_KIND_ANY,
    version: int = 0,
    request_id: str = "",
) -> model_pb2.AppendInput:
    return model_pb2.AppendInput(
        stream_id=stream,
        events=list(events) or [ev()],
        expected_version=model_pb2.ExpectedVersion(kind=kind, version=version),
        request_id=request_id,
    )


def tenant_record(tenant_id: str, display_name: str) -> model_pb2.TenantRecord:
    """A tenant as the admin service writes it: its public Tenant, in storage's type."""
    return recast(tenant_pb2.Tenant(tenant_id=tenant_id, display_name=display_name), model_pb2.TenantRecord)


def decode(data: bytes) -> event_pb2.Event:
    return event_pb2.Event.FromString(data)


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let the event loop run until the condition holds (a subscription has caught up, say)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


class StorageContract:
    """Behaviour every StorageBackend must have."""

    def new_backend(self, path: Path) -> StorageBackend:
        raise NotImplementedError

    @pytest.fixture
    def run(self, tmp_path: Path) -> Callable[[Callable[[StorageBackend], Awaitable[Any]]], Any]:
        """Run `body(backend)` on a started backend in a fresh event loop, closing it afterwards."""

        def runner(body: Callable[[StorageBackend], Awaitable[Any]]) -> Any:
            async def main() -> Any:
                backend = self.new_backend(tmp_path)
                await backend.start()
                try:
                    return await body(backend)
                finally:
                    await backend.close()

            return asyncio.run(main())

        return runner

    @staticmethod
    async def append_one(b: StorageBackend, request: model_pb2.AppendInput, tenant: str = T) -> Any:
        (result,) = await b.append([AppendOp(tenant, request)])
        return result

    # -- versions, positions, time ------------------------------------------------------------------

    def test_versions_and_positions_are_gapless_from_one(self, run: Any) -> None:
        async def body(b: StorageBackend) -> None:
            r1 = await self.append_one(b, req("a", ev(), ev(), ev()))
            r2 = await self.append_one(b, req("b", ev()))
            r3 = await self.append_one(b, req("a", ev(), ev()))
            assert (r1.first_version, r1.last_version, r1.first_position, r1.last_position) == (1, 3, 1, 3)
            assert (r2.first_version, r2.last_version, r2.first_position, r2.last_position) == (1, 1, 4, 4)
            assert (r3.first_version, r3.last_version, r3.first_position, r3.last_position) == (4, 5, 5, 6)
            run_ = await b.read_events(T, model_pb2.EventFilter(), after_position=0, limit=100, max_scan=100)
            events = [decode(e) for e in run_.events]
            assert [e.position for e in events] == [1, 2, 3, 4, 5, 6]
            assert [(e.stream_id, e.version) for e in events] == [
                ("a", 1),
                ("a", 2),
                ("a", 3),
                ("b", 1),
                ("a", 4),
                ("a", 5),
            ]
            times = [from_timestamp(e.recorded_at) for e in events]
            assert times == sorted(times)
            assert await b.head_position(T) == 6

        run(body)

    def test_index_stats_count_every_index_of_the_tenant_only(self, run: Any) -> None:
        async def body(b: StorageBackend) -> None:
            await self.append_one(b, req("order-1", ev("A"), ev("B")))
            await self.append_one(b, req("plain", ev("A")))
            figures = {f.index: f for f in await b.index_stats(T)}
            assert sorted(figures) == ["category_type", "event_id", "event_type", "stream"]
            entries = {name: f.entries for name, f in figures.items()}
            # one entry per event in each index; category_type only for "order-1" (it has a category)
            assert entries == {"stream": 3, "event_type": 3, "event_id": 3, "category_type": 2}
            assert all(f.bytes > 0 and not f.partial and not f.backfill_target for f in figures.values())
            with pytest.raises(AllSourceError):
                await b.index_stats("nobody")

        run(body)

    def test_stored_event_keeps_client_fields_and_assigns_ids(self, run: Any) -> None:
        async def body(b: StorageBackend) -> None:
            chosen = str(uuid.uuid4())
            data = ev("OrderPlaced", b'{"total": 3}', event_id=chosen, source="test")
            data.occurred_at.FromSeconds(1_700_000_000)
            r = await self.append_one(b, req("order-1", data, ev("OrderPaid")))
            assert r.event_ids[0] == chosen
            assert uuid.UUID(r.event_ids[1]).version == 7  # server-assigned, time-ordered
            first = decode(await b.get_event(T, chosen))
            assert (first.event_type, first.payload, first.content_type) == (
                "OrderPlaced",
                b'{"total": 3}',
                "application/json",
            )
            assert dict(first.metadata) == {"source": "test"}
            assert first.occurred_at.seconds == 1_700_000_000
            assert (first.tenant_id, first.stream_id, first.version, first.position) == (T, "order-1", 1, 1)
            assert from_timestamp(first.recorded_at) == from_timestamp(r.recorded_at)
            second = decode(await b.get_event(T, r.event_ids[1]))
            assert second.event_id == r.event_ids[1]

        run(body)

    # -- expected version ---------------------------------------------------------------------------

    @pytest.mark.parametrize(
        ("kind", "version", "current", "ok"),
        [
            (K.EXPECTED_VERSION_KIND_UNSPECIFIED, 0, 2, True),
            (K.EXPECTED_VERSION_KIND_ANY, 0, 0, True),
            (K.EXPECTED_VERSION_KIND_ANY, 0, 2, True),
            (K.EXPECTED_VERSION_KIND_NO_STREAM, 0, 0, True),
            (K.EXPECTED_VERSION_KIND_NO_STREAM, 0, 2, False),
            (K.EXPECTED_VERSION_KIND_STREAM_EXISTS, 0, 0, False),
            (K.EXPECTED_VERSION_KIND_STREAM_EXISTS, 0, 2, True),
            (K.EXPECTED_VERSION_KIND_EXACT, 0, 0, True),
            (K.EXPECTED_VERSION_KIND_EXACT, 2, 2, True),
            (K.EXPECTED_VERSION_KIND_EXACT, 1, 2, False),
            (K.EXPECTED_VERSION_KIND_EXACT, 3, 2, False),
            (K.EXPECTED_VERSION_KIND_EXACT, 0, 2, False),
        ],
    )
    def test_expected_version_rules(self, run: Any, kind: int, version: int, current: int, ok: bool) -> None:
        async def body(b: StorageBackend) -> None:
            if current:
                await self.append_one(b, req("s", *[ev() for _ in range(current)]))
            result = await self.append_one(b, req("s", ev(), kind=kind, version=version))
            if ok:
                assert isinstance(result, model_pb2.AppendResult), result
                assert result.last_version == current + 1
            else:
                assert isinstance(result, AllSourceError)
                assert result.reason == "WRONG_EXPECTED_VERSION"
                assert result.code.name == "ABORTED"
                assert result.metadata["actual_version"] == str(current)
                assert result.metadata["expected_kind"] == K.Name(kind)
                if kind == K.EXPECTED_VERSION_KIND_EXACT:
                    assert result.metadata["expected_version"] == str(version)
                else:
                    assert "expected_version" not in result.metadata
                assert await b.head_position(T) == current  # nothing written

        run(body)

    # -- idempotency --------------------------------------------------------------------------------

    def test_same_event_ids_and_content_replay_the_original_result(self, run: Any) -> None:
        async def body(b: StorageBackend) -> None:
            ids = [str(uuid.uuid4()) for _ in range(3)]
            batch = [ev("A", b'{"n": %d}' % i, event_id=ids[i]) for i in range(3)]
            first = await self.append_one(b, req("s", *batch, kind=K.EXPECTED_VERSION_KIND_NO_STREAM))
            await self.append_one(b, req("other", ev()))
            again = await self.append_one(b, req("s", *batch, kind=K.EXPECTED_VERSION_KIND_NO_STREAM))
            assert again.deduplicated and not first.deduplicated
            assert (again.first_version, again.last_version, again.first_position, again.last_position) == (1, 3, 1, 3)
            assert list(again.event_ids) == ids
            assert await b.head_position(T) == 4  # the replay wrote nothing

        run(body)

    def test_event_id_reused_with_other_content_or_stream_is_rejected(self, run: Any) -> None:
        async def body(b: StorageBackend) -> None:
            eid = str(uuid.uuid4())
            await self.append_one(b, req("s", ev("A", b"{}", event_id=eid)))
            for bad in (
                req("s", ev("A", b'{"changed": true}', event_id=eid)),
                req("s", ev("B", b"{}", event_id=eid)),
                req("elsewhere", ev("A", b"{}", event_id=eid)),
                req("s", ev("A", b"{}", event_id=eid), ev("A", b"{}", event_id=str(uuid.uuid4()))),
            ):
                result = await self.append_one(b, bad)
                assert isinstance(result, AllSourceError) and result.reason == "DUPLICATE_EVENT_ID", result
                assert result.code.name == "ALREADY_EXISTS"
            assert await b.head_position(T) == 1

        run(body)

    def test_request_id_retry_returns_the_first_response(self, run: Any) -> None:
        async def body(b: StorageBackend) -> None:
            first = await self.append_one(b, req("s", ev(), ev(), request_id="req-1"))
            retry = await self.append_one(b, req("s", ev(), ev(), request_id="req-1"))
            assert retry.deduplicated
            assert list(retry.event_ids) == list(first.event_ids)
            assert (retry.first_position, retry.last_position) == (first.first_position, first.last_position)
            assert await b.head_position(T) == 2
            reused = await self.append_one(b, req("s", ev("Different"), request_id="req-1"))
            assert isinstance(reused, AllSourceError) and reused.reason == "REQUEST_ID_REUSED"

        run(body)

    def test_duplicates_inside_one_group_commit(self, run: Any) -> None:
        async def body(b: StorageBackend) -> None:
            eid = str(uuid.uuid4())
            results = await b.append(
                [
                    AppendOp(T, req("s", ev(), request_id="same")),
                    AppendOp(T, req("s", ev(), request_id="same")),
                    AppendOp(T, req("x", ev("A", event_id=eid))),
                    AppendOp(T, req("x", ev("A", event_id=eid))),
                    AppendOp(T, req("y", ev("B", event_id=eid))),
                ]
            )
            assert not results[0].deduplicated and results[1].deduplicated
            assert results[1].first_position == results[0].first_position
            assert not results[2].deduplicated and results[3].deduplicated
            assert isinstance(results[4], AllSourceError) and results[4].reason == "DUPLICATE_EVENT_ID"
            assert await b.head_position(T) == 2

        run(body)

    def test_rejected_append_leaves_no_trace(self, run: Any) -> None:
        async def body(b: StorageBackend) -> None:
            await self.append_one(b, req("s", ev()))
            eid = str(uuid.uuid4())
            result = await self.append_one(b, req("s", ev("X", event_id=eid), kind=K.EXPECTED_VERSION_KIND_NO_STREAM))
            assert isinstance(result, AllSourceError)
            with pytest.raises(AllSourceError) as missing:
                await b.get_event(T, eid)
            assert missing.value.reason == "EVENT_NOT_FOUND"
            piece = await b.read_stream(T, "s", backward=False, from_version=1, limit=10)
            assert piece.stream_version == 1 and len(piece.events) == 1
            run_ = await b.read_events(
                T, model_pb2.EventFilter(event_types=["X"]), after_position=0, limit=10, max_scan=10
            )
            assert run_.events == []
            # and the id is still free to use
            ok = await self.append_one(b, req("s", ev("X", event_id=eid)))
            assert ok.first_version == 2

        run(body)

    def test_unknown_tenant(self, run: Any) -> None:
        async def body(b: StorageBackend) -> None:
            result = await self.append_one(b, req("s", ev()), tenant="nobody")
            assert isinstance(result, AllSourceError) and result.reason == "TENANT_NOT_FOUND"
            run_ = await b.read_events("nobody", model_pb2.EventFilter(), after_position=0, limit=10, max_scan=10)
            assert run_.events == [] and run_.end_of_range
            assert await b.head_position("nobody") == 0

        run(body)

    # -- tenants ------------------------------------------------------------------------------------

    @staticmethod
    async def new_tenant(b: StorageBackend, tenant_id: str) -> None:
        assert await b.put_tenant(tenant_record(tenant_id, tenant_id), 0) == 1

    def test_tenants_are_registered_once_and_have_their_own_positions(self, run: Any) -> None:
        async def body(b: StorageBackend) -> None:
            listed, done = await b.list_tenants("", 10)
            assert [t.tenant_id for t in listed] == [T] and done  # the default tenant exists from the start
            await self.new_tenant(b, "acme")
            with pytest.raises(AllSourceError) as err:
                await b.put_tenant(model_pb2.TenantRecord(tenant_id="acme"), 0)
            assert err.value.reason == "TENANT_ALREADY_EXISTS"
            with pytest.raises(AllSourceError):
                await b.put_tenant(tenant_record("acme", "x"), 5)  # stale revision
            assert await b.put_tenant(tenant_record("acme", "Acme"), 1) == 2
            tenant, revision = await b.get_tenant("acme")
            # Fields storage does not declare pass through untouched (the admin service's Tenant).
            assert (recast(tenant, tenant_pb2.Tenant).display_name, revision) == ("Acme", 2)
            a = await self.append_one(b, req("s", ev(), ev()), tenant=T)
            c = await self.append_one(b, req("s", ev()), tenant="acme")
            assert (a.first_position, c.first_position, c.first_version) == (1, 1, 1)
            assert await b.head_position("acme") == 1 and await b.head_position(T) == 2
            # Each tenant's reads see only its own events, even for the same stream id and event id.
            run_ = await b.read_events("acme", model_pb2.EventFilter(), after_position=0, limit=10, max_scan=100)
            assert [decode(e).tenant_id for e in run_.events] == ["acme"]
            with pytest.raises(AllSourceError) as err:
                await b.get_event("acme", a.event_ids[0])
            assert err.value.reason == "EVENT_NOT_FOUND"

        run(body)

    def test_an_inactive_tenant_is_refused_and_kept(self, run: Any) -> None:
        async def body(b: StorageBackend) -> None:
            await self.new_tenant(b, "acme")
            await self.append_one(b, req("s", ev()), tenant="acme")
            await b.check_tenant_usable("acme")
            inactive = model_pb2.TenantRecord(tenant_id="acme", status=model_pb2.TENANT_STATUS_INACTIVE)
            await b.put_tenant(inactive, 1)
            with pytest.raises(AllSourceError) as err:
                await b.check_tenant_usable("acme")
            assert err.value.reason == "TENANT_INACTIVE"
            await b.put_tenant(model_pb2.TenantRecord(tenant_id="acme", status=model_pb2.TENANT_STATUS_ACTIVE), 2)
            await b.check_tenant_usable("acme")
            assert len((await b.read_stream("acme", "s", from_version=0, backward=False, limit=10)).events) == 1

        run(body)

    def test_usage_counts_exactly(self, run: Any) -> None:
        async def body(b: StorageBackend) -> None:
            await self.new_tenant(b, "acme")
            empty = await b.tenant_usage("acme")
            assert (empty.events, empty.streams, empty.storage_bytes, empty.events_today) == (0, 0, 0, 0)
            await b.append([AppendOp("acme", req(f"s{i % 3}", ev(), ev())) for i in range(6)])
            await b.add_usage("acme", 4)
            await b.add_usage("acme", 3)
            used = await b.tenant_usage("acme")
            assert (used.events, used.streams, used.events_this_hour, used.events_today) == (12, 3, 12, 12)
            assert used.queries_this_hour == 7
            assert used.storage_bytes > 12 * 64  # events, their index entries, stream heads
            # Another tenant's traffic changes none of it.
            await self.append_one(b, req("s0", ev()), tenant=T)
            assert await b.tenant_usage("acme") == used

        run(body)

    def test_deleting_a_tenant_removes_everything_and_the_id_starts_afresh(self, run: Any) -> None:
        async def body(b: StorageBackend) -> None:
            await self.new_tenant(b, "acme")
            first = await self.append_one(b, req("s", ev(), ev(), request_id="r"), tenant="acme")
            await b.put_record("acme", "users", "u1", b"x", None)
            keep = await self.append_one(b, req("s", ev()), tenant=T)
            with pytest.raises(AllSourceError) as err:
                await b.delete_tenant(T)
            assert err.value.reason == "DEFAULT_TENANT_PROTECTED"
            events, deleted = await b.delete_tenant("acme")
            assert events == 2 and deleted > 0
            with pytest.raises(AllSourceError) as err:
                await b.get_tenant("acme")
            assert err.value.reason == "TENANT_NOT_FOUND"
            result = await self.append_one(b, req("s", ev()), tenant="acme")
            assert isinstance(result, AllSourceError) and result.reason == "TENANT_NOT_FOUND"
            await self.new_tenant(b, "acme")
            usage = await b.tenant_usage("acme")
            assert (usage.events, usage.streams, usage.storage_bytes) == (0, 0, 0)
            assert (await b.list_records("acme", "users", "", 10))[0] == []
            with pytest.raises(AllSourceError):
                await b.get_event("acme", first.event_ids[0])
            again = await self.append_one(b, req("s", ev(), request_id="r"), tenant="acme")
            assert (again.first_position, again.first_version, again.deduplicated) == (1, 1, False)
            assert decode(await b.get_event(T, keep.event_ids[0])).tenant_id == T

        run(body)

    def test_a_subscription_ends_when_its_tenant_goes_even_while_paused(self, run: Any) -> None:
        """Deactivation, or deletion and re-creation of the id, while the reader is paused between
        messages still ends the subscription at once (not after the checkpoint interval)."""

        async def body(b: StorageBackend) -> None:
            for reason in ("TENANT_INACTIVE", "TENANT_NOT_FOUND"):
                tenant_id = f"acme-{reason.lower()[7:]}"
                await self.new_tenant(b, tenant_id)
                params = SubscriptionParams(tenant_id, 0, False, (), "", 1000, 600.0, 100)
                messages = follow(b, b, params, asyncio.Event())
                first = await messages.__anext__()  # paused at the caught-up marker
                assert first.WhichOneof("content") == "caught_up"
                if reason == "TENANT_INACTIVE":
                    inactive = model_pb2.TenantRecord(tenant_id=tenant_id, status=model_pb2.TENANT_STATUS_INACTIVE)
                    await b.put_tenant(inactive, 1)
                else:
                    await b.delete_tenant(tenant_id)
                    await self.new_tenant(b, tenant_id)  # the same id, another tenant
                started = time.monotonic()
                with pytest.raises(AllSourceError) as err:
                    await asyncio.wait_for(messages.__anext__(), 5)
                assert err.value.reason == reason and time.monotonic() - started < 1
            assert await asyncio.wait_for(b.wait_for_commit("acme-inactive", 0, 600.0), 1) is False

        run(body)

    def test_an_id_being_deleted_cannot_be_created_and_a_cancelled_delete_still_finishes(self, run: Any) -> None:
        async def body(b: StorageBackend) -> None:
            await self.new_tenant(b, "acme")
            await self.append_one(b, req("s", ev()), tenant="acme")
            deleting = asyncio.ensure_future(b.delete_tenant("acme"))
            await asyncio.sleep(0)  # the deletion has begun: the id is no longer usable
            with pytest.raises(AllSourceError) as err:
                await b.put_tenant(model_pb2.TenantRecord(tenant_id="acme"), 0)
            assert err.value.reason in ("TENANT_BEING_DELETED", "TENANT_ALREADY_EXISTS")
            deleting.cancel()  # the caller goes away: the purge goes on
            with pytest.raises(asyncio.CancelledError):
                await deleting
            deadline = time.monotonic() + 5
            while True:
                try:
                    await self.new_tenant(b, "acme")
                    break
                except AllSourceError as exc:
                    assert exc.reason == "TENANT_BEING_DELETED"
                    assert time.monotonic() < deadline, "the cancelled deletion never finished"
                    await asyncio.sleep(0.01)
            usage = await b.tenant_usage("acme")
            assert (usage.events, usage.storage_bytes) == (0, 0)

        run(body)

    # -- reads --------------------------------------------------------------------------------------

    def test_read_stream_directions_and_paging(self, run: Any) -> None:
        async def body(b: StorageBackend) -> None:
            await self.append_one(b, req("s", *[ev(payload=b'{"i": %d}' % i) for i in range(10)]))
            await self.append_one(b, req("t", ev()))
            fwd = await b.read_stream(T, "s", backward=False, from_version=0, limit=4)
            assert [decode(e).version for e in fwd.events] == [1, 2, 3, 4] and fwd.next_version == 5
            rest = await b.read_stream(T, "s", backward=False, from_version=fwd.next_version, limit=100)
            assert [decode(e).version for e in rest.events] == [5, 6, 7, 8, 9, 10] and rest.next_version == 0
            back = await b.read_stream(T, "s", backward=True, from_version=0, limit=3)
            assert [decode(e).version for e in back.events] == [10, 9, 8] and back.next_version == 7
            tail = await b.read_stream(T, "s", backward=True, from_version=2, limit=10)
            assert [decode(e).version for e in tail.events] == [2, 1] and tail.next_version == 0
            bounded = await b.read_stream(T, "s", backward=False, from_version=3, limit=100, to_version=5)
            assert [decode(e).version for e in bounded.events] == [3, 4, 5] and bounded.next_version == 0
            beyond = await b.read_stream(T, "s", backward=False, from_version=50, limit=10)
            assert beyond.events == [] and beyond.stream_version == 10
            with pytest.raises(AllSourceError) as err:
                await b.read_stream(T, "missing", backward=False, from_version=0, limit=10)
            assert err.value.reason == "STREAM_NOT_FOUND" and err.value.code.name == "NOT_FOUND"

        run(body)

    def test_read_events_filters(self, run: Any) -> None:
        async def body(b: StorageBackend) -> None:
            await self.append_one(b, req("order-1", ev("Placed"), ev("Paid")))
            await self.append_one(b, req("user-1", ev("Registered")))
            await self.append_one(b, req("order-2", ev("Placed")))
            middle = time.time_ns()
            await asyncio.sleep(0.01)
            await self.append_one(b, req("order-1", ev("Shipped")))
            await self.append_one(b, req("order-10", ev("Placed")))

            async def positions(**kw: Any) -> list[int]:
                run_ = await b.read_events(T, model_pb2.EventFilter(**kw), after_position=0, limit=100, max_scan=1000)
                assert run_.end_of_range
                return [decode(e).position for e in run_.events]

            assert await positions() == [1, 2, 3, 4, 5, 6]
            assert await positions(event_types=["Placed"]) == [1, 4, 6]
            assert await positions(event_types=["Placed", "Shipped"]) == [1, 4, 5, 6]
            assert await positions(stream_id_prefix="order-1") == [1, 2, 5, 6]
            assert await positions(stream_id="order-1") == [1, 2, 5]
            assert await positions(stream_id="order-1", event_types=["Shipped"]) == [5]
            assert await positions(stream_id_prefix="order-", event_types=["Placed"]) == [1, 4, 6]
            assert await positions(from_position=2, to_position=4) == [2, 3, 4]
            assert await positions(stream_id="order-1", from_position=2) == [2, 5]
            start = model_pb2.EventFilter()
            start.start_time.FromNanoseconds(middle)
            assert await positions(start_time=start.start_time) == [5, 6]
            assert await positions(end_time=start.start_time) == [1, 2, 3, 4]
            assert await positions(stream_id="nope") == []

        run(body)

    def test_time_windows_stay_right_across_erased_positions(self, run: Any) -> None:
        """The time bounds are found by a search over the log; erased events leave holes it must cross."""

        async def body(b: StorageBackend) -> None:
            bounds = []
            for n in range(1, 31):
                await self.append_one(b, req(f"u-{n}", ev("Profile" if n % 3 else "Gone")))
                if n in (10, 20):
                    await asyncio.sleep(0.01)
                    bounds.append(time.time_ns())
                    await asyncio.sleep(0.01)
            await b.delete_events(lifecycle_pb2.DeleteEventsRequest(tenant_id=T, event_types=["Gone"]))
            await b.delete_events(lifecycle_pb2.DeleteEventsRequest(tenant_id=T, stream_id_prefix="u-1"))  # 1, 10-19

            async def positions(start: int | None = None, end: int | None = None) -> list[int]:
                f = model_pb2.EventFilter()
                if start is not None:
                    f.start_time.FromNanoseconds(start)
                if end is not None:
                    f.end_time.FromNanoseconds(end)
                run_ = await b.read_events(T, f, after_position=0, limit=100, max_scan=1000)
                return [decode(e).position for e in run_.events]

            alive = [n for n in range(1, 31) if n % 3 and not str(n).startswith("1")]
            assert await positions() == alive
            assert await positions(start=bounds[0]) == [n for n in alive if n > 10]
            assert await positions(end=bounds[1]) == [n for n in alive if n <= 20]
            assert await positions(start=bounds[0], end=bounds[1]) == [n for n in alive if 10 < n <= 20]
            assert await positions(start=time.time_ns()) == []

        run(body)

    def test_read_events_bounded_scan_reports_progress(self, run: Any) -> None:
        async def body(b: StorageBackend) -> None:
            await self.append_one(b, req("s", *[ev("Common") for _ in range(50)]))
            await self.append_one(b, req("s", ev("Rare")))
            cursor, found, calls = 0, [], 0
            while True:
                run_ = await b.read_events(
                    T,
                    model_pb2.EventFilter(stream_id_prefix="s", event_types=["Rare"]),
                    after_position=cursor,
                    limit=10,
                    max_scan=7,
                )
                calls += 1
                found += [decode(e).position for e in run_.events]
                assert run_.scanned_to >= cursor
                cursor = run_.scanned_to
                if run_.end_of_range:
                    break
            assert found == [51]
            # a prefix filter without a type index scans the log in bounded steps
            cursor, found, calls = 0, [], 0
            while True:
                run_ = await b.read_events(
                    T, model_pb2.EventFilter(stream_id_prefix="s"), after_position=cursor, limit=1000, max_scan=20
                )
                calls += 1
                found += [decode(e).position for e in run_.events]
                cursor = run_.scanned_to
                if run_.end_of_range:
                    break
            assert found == list(range(1, 52)) and calls == 3

        run(body)

    def test_list_and_describe_streams(self, run: Any) -> None:
        async def body(b: StorageBackend) -> None:
            for name in ("b-2", "a-1", "b-1", "c-1", "b-10"):
                await self.append_one(b, req(name, ev()))
            t_mid = time.time_ns()
            await asyncio.sleep(0.01)
            await self.append_one(b, req("b-1", ev(), ev()))
            page, end = await b.list_streams(T, prefix="", after="", limit=2)
            assert [s.stream_id for s in page] == ["a-1", "b-1"] and not end
            page, end = await b.list_streams(T, prefix="", after="b-1", limit=10)
            assert [s.stream_id for s in page] == ["b-10", "b-2", "c-1"] and end
            page, end = await b.list_streams(T, prefix="b-", after="", limit=10)
            assert [s.stream_id for s in page] == ["b-1", "b-10", "b-2"] and end
            info, version = await b.get_stream(T, "b-1", None)
            assert (info.version, version, info.first_position, info.last_position) == (3, 3, 3, 7)
            _, then = await b.get_stream(T, "b-1", t_mid)
            assert then == 1
            _, before = await b.get_stream(T, "b-1", 1)
            assert before == 0

        run(body)

    def test_streams_with_max_age_or_max_count_are_volatile(self, run: Any) -> None:
        """What a read cache may keep: a stream whose visible events change with time or appends alone
        (max_age, max_count) says so, in its slices too; truncation alone does not make it volatile."""

        async def body(b: StorageBackend) -> None:
            for name in ("plain", "aged", "counted", "truncated"):
                await self.append_one(b, req(name, ev(), ev()))
            for name, metadata in (
                ("aged", lifecycle_pb2.StreamMetadata(max_age={"seconds": 3600})),
                ("counted", lifecycle_pb2.StreamMetadata(max_count=5)),
                ("truncated", lifecycle_pb2.StreamMetadata(truncate_before=2)),
            ):
                await b.set_stream_metadata(
                    lifecycle_pb2.SetStreamMetadataRequest(tenant_id=T, stream_id=name, metadata=metadata)
                )
            volatile = {name: await b.volatile(T, name) for name in ("plain", "aged", "counted", "truncated", "none")}
            assert volatile == {"plain": False, "aged": True, "counted": True, "truncated": False, "none": False}
            for name in ("plain", "counted"):
                piece = await b.read_stream(T, name, backward=False, from_version=0, limit=10)
                assert piece.volatile == volatile[name]

        run(body)

    def test_snapshots(self, run: Any) -> None:
        async def body(b: StorageBackend) -> None:
            await self.append_one(b, req("s", *[ev() for _ in range(10)]))
            assert await b.get_snapshot(T, "s", 10) is None
            await b.put_snapshot(T, "s", Snapshot(4, b'{"v": 4}', 111))
            await b.put_snapshot(T, "s", Snapshot(8, b'{"v": 8}', 222))
            assert (await b.get_snapshot(T, "s", 3)) is None
            assert (await b.get_snapshot(T, "s", 7)).state == b'{"v": 4}'
            got = await b.get_snapshot(T, "s", 100)
            assert (got.version, got.state, got.recorded_ns) == (8, b'{"v": 8}', 222)
            with pytest.raises(AllSourceError):
                await b.put_snapshot(T, "s", Snapshot(11, b"{}", 1))

        run(body)

    # -- live --------------------------------------------------------------------------------------

    def test_subscription_catches_up_goes_live_and_resumes_without_gap(self, run: Any) -> None:
        async def body(b: StorageBackend) -> None:
            await self.append_one(b, req("s", *[ev("A") for _ in range(5)]))
            closing = asyncio.Event()
            params = SubscriptionParams(T, 0, False, (), "", 1000, 0.2, 2)
            seen: list[int] = []
            kinds: list[str] = []

            async def consume(p: SubscriptionParams, stop_at: int) -> None:
                async for message in follow(b, b, p, closing):
                    kind = message.WhichOneof("content")
                    kinds.append(kind)
                    if kind == "events":
                        seen.extend(e.position for e in message.events.events)
                    if seen and seen[-1] >= stop_at:
                        return

            task = asyncio.ensure_future(consume(params, 8))
            await until(lambda: "caught_up" in kinds)  # live from here: the next events come as commits
            await self.append_one(b, req("s", ev("A"), ev("A"), ev("A")))
            await asyncio.wait_for(task, 5)
            assert seen == list(range(1, 9))
            assert "caught_up" in kinds and kinds.index("caught_up") < len(kinds) - 1
            # resume after position 6: exactly 7 and 8, then more live
            seen.clear()
            kinds.clear()
            resumed = SubscriptionParams(T, 6, False, (), "", 1000, 0.2, 100)
            task = asyncio.ensure_future(consume(resumed, 9))
            await until(lambda: "caught_up" in kinds)
            await self.append_one(b, req("s", ev("A")))
            await asyncio.wait_for(task, 5)
            assert seen == [7, 8, 9]

        run(body)

    def test_subscription_filters_and_checkpoints(self, run: Any) -> None:
        async def body(b: StorageBackend) -> None:
            await self.append_one(b, req("noise", *[ev("Noise") for _ in range(30)]))
            await self.append_one(b, req("keep-1", ev("Keep")))
            closing = asyncio.Event()
            params = SubscriptionParams(T, 0, False, ("Keep",), "keep-", 10, 0.15, 100)
            messages: list[Any] = []

            async def consume() -> None:
                async for message in follow(b, b, params, closing):
                    messages.append(message)
                    if len([m for m in messages if m.WhichOneof("content") == "checkpoint"]) >= 2 and any(
                        m.WhichOneof("content") == "caught_up" for m in messages
                    ):
                        return

            await asyncio.wait_for(consume(), 5)
            events = [e for m in messages if m.WhichOneof("content") == "events" for e in m.events.events]
            assert [(e.stream_id, e.event_type) for e in events] == [("keep-1", "Keep")]
            checkpoints = [m.checkpoint.position for m in messages if m.WhichOneof("content") == "checkpoint"]
            assert checkpoints == sorted(checkpoints) and checkpoints[-1] == 31

        run(body)

    def test_subscription_from_end_and_shutdown(self, run: Any) -> None:
        async def body(b: StorageBackend) -> None:
            await self.append_one(b, req("s", ev(), ev()))
            closing = asyncio.Event()
            params = SubscriptionParams(T, 0, True, (), "", 1000, 5.0, 100)
            got: list[int] = []
            kinds: list[str] = []

            async def consume() -> None:
                async for message in follow(b, b, params, closing):
                    kinds.append(message.WhichOneof("content"))
                    if message.WhichOneof("content") == "events":
                        got.extend(e.position for e in message.events.events)
                        closing.set()

            task = asyncio.ensure_future(consume())
            await until(lambda: "caught_up" in kinds)  # the subscription holds its place at the end
            await self.append_one(b, req("s", ev()))
            with pytest.raises(AllSourceError) as err:
                await asyncio.wait_for(task, 5)
            assert err.value.reason == "SHUTTING_DOWN"
            assert got == [3]

        run(body)

    # -- durability ---------------------------------------------------------------------------------

    # -- stream lifecycle: metadata, deletion, erasure, the ledger ------------------------------------

    @staticmethod
    async def set_meta(b: StorageBackend, stream: str, expected: int | None = None, **fields: Any) -> int:
        request = lifecycle_pb2.SetStreamMetadataRequest(
            tenant_id=T, stream_id=stream, metadata=lifecycle_pb2.StreamMetadata(**fields)
        )
        if expected is not None:
            request.expected_metadata_version = expected
        return await b.set_stream_metadata(request)

    @staticmethod
    async def delete(b: StorageBackend, stream: str, *, hard: bool = False, exact: int | None = None) -> Any:
        expected = model_pb2.ExpectedVersion(
            kind=K.EXPECTED_VERSION_KIND_ANY if exact is None else K.EXPECTED_VERSION_KIND_EXACT, version=exact or 0
        )
        return await b.delete_stream(
            lifecycle_pb2.DeleteStreamRequest(tenant_id=T, stream_id=stream, expected_version=expected, hard=hard)
        )

    @staticmethod
    async def versions(b: StorageBackend, stream: str) -> list[int]:
        found = await b.read_stream(T, stream, backward=False, from_version=0, limit=1000)
        return [decode(e).version for e in found.events]

    @staticmethod
    async def listed(b: StorageBackend, prefix: str = "") -> list[str]:
        page, _ = await b.list_streams(T, prefix=prefix, after="", limit=100)
        return [s.stream_id for s in page]

    def test_stream_metadata_hides_events_at_once_and_is_versioned(self, run: Any) -> None:
        async def body(b: StorageBackend) -> None:
            await self.append_one(b, req("s", *[ev() for _ in range(10)]))
            never = await b.get_stream_metadata(T, "s")
            assert (never.metadata_version, never.stream_version, never.deleted) == (0, 10, False)
            assert await self.set_meta(b, "s", expected=0, max_count=3, custom={"owner": "ops"}) == 1
            assert await self.versions(b, "s") == [8, 9, 10]
            run_ = await b.read_events(
                T, model_pb2.EventFilter(stream_id="s"), after_position=0, limit=100, max_scan=100
            )
            assert [decode(e).version for e in run_.events] == [8, 9, 10]
            got = await b.get_stream_metadata(T, "s")
            assert got.metadata.max_count == 3 and dict(got.metadata.custom) == {"owner": "ops"}
            with pytest.raises(AllSourceError) as err:
                await self.set_meta(b, "s", expected=0, max_count=1)
            assert err.value.reason == "WRONG_METADATA_VERSION" and err.value.code.name == "ABORTED"
            assert await self.set_meta(b, "s", expected=1, truncate_before=9) == 2
            assert await self.versions(b, "s") == [9, 10]
            assert await self.listed(b) == ["s"]

        run(body)

    def test_soft_delete_continues_versions_and_hard_delete_is_final(self, run: Any) -> None:
        async def body(b: StorageBackend) -> None:
            await self.append_one(b, req("a", ev(), ev()))
            with pytest.raises(AllSourceError) as err:
                await self.delete(b, "a", exact=1)
            assert err.value.reason == "WRONG_EXPECTED_VERSION"
            soft = await self.delete(b, "a", exact=2)
            assert (soft.stream_version, soft.events_deleted) == (2, 2)
            with pytest.raises(AllSourceError) as err:
                await b.read_stream(T, "a", backward=False, from_version=0, limit=10)
            assert err.value.reason == "STREAM_NOT_FOUND"
            assert await self.listed(b) == [] and (await b.get_stream_metadata(T, "a")).deleted
            again = await self.append_one(b, req("a", ev(), kind=K.EXPECTED_VERSION_KIND_NO_STREAM))
            assert again.first_version == 3 and await self.versions(b, "a") == [3]

            hard = await self.delete(b, "a", hard=True)
            assert hard.stream_version == 3 and (await b.get_stream_metadata(T, "a")).tombstoned
            refused = await self.append_one(b, req("a", ev()))
            assert isinstance(refused, AllSourceError) and refused.reason == "STREAM_DELETED"
            with pytest.raises(AllSourceError) as err:
                await self.set_meta(b, "a", max_count=1)
            assert err.value.reason == "STREAM_DELETED"
            with pytest.raises(AllSourceError) as err:
                await self.delete(b, "never")
            assert err.value.reason == "STREAM_NOT_FOUND" and err.value.code.name == "NOT_FOUND"

        run(body)

    def test_delete_events_dry_run_counts_what_the_erasure_erases(self, run: Any) -> None:
        async def body(b: StorageBackend) -> None:
            await self.append_one(b, req("u-1", ev("Profile", b'{"email": "a@x"}'), ev("Login")))
            await self.append_one(b, req("u-2", ev("Profile", b'{"email": "b@x"}')))
            await self.append_one(b, req("o-1", ev("Profile")))
            criteria = {"tenant_id": T, "stream_id_prefix": "u-", "event_types": ["Profile"]}
            counted = await b.delete_events(lifecycle_pb2.DeleteEventsRequest(**criteria, dry_run=True))
            assert (counted.events_deleted, counted.streams_affected, counted.dry_run) == (2, 2, True)
            assert counted.bytes_freed > 0 and await self.versions(b, "u-2") == [1]
            erased = await b.delete_events(lifecycle_pb2.DeleteEventsRequest(**criteria))
            assert (erased.events_deleted, erased.streams_affected, erased.bytes_freed) == (
                counted.events_deleted,
                counted.streams_affected,
                counted.bytes_freed,
            )
            left = await b.read_events(T, model_pb2.EventFilter(), after_position=0, limit=100, max_scan=100)
            assert [(decode(e).stream_id, decode(e).event_type) for e in left.events] == [
                ("u-1", "Login"),
                ("o-1", "Profile"),
            ]
            with pytest.raises(AllSourceError) as err:
                await b.delete_events(lifecycle_pb2.DeleteEventsRequest(tenant_id=T))
            assert err.value.reason == "INVALID_DELETE_CRITERIA"

        run(body)

    def test_every_deletion_is_in_the_ledger(self, run: Any) -> None:
        async def body(b: StorageBackend) -> None:
            await self.append_one(b, req("keep", ev(), ev(), ev()))
            await self.append_one(b, req("soft", ev(), ev()))
            await self.append_one(b, req("hard", ev()))
            await self.set_meta(b, "keep", truncate_before=2)
            await self.delete(b, "soft")
            await self.delete(b, "hard", hard=True)
            erase = lifecycle_pb2.DeleteEventsRequest(tenant_id=T, stream_id_prefix="ke", event_types=["Happened"])
            await b.delete_events(lifecycle_pb2.DeleteEventsRequest(tenant_id=T, stream_id_prefix="k", dry_run=True))
            await b.delete_events(erase)
            records, end = await b.list_records(T, LIFECYCLE_LEDGER_NS, "", 100)
            assert end
            entries = [lifecycle_pb2.LedgerEntry.FromString(r.value) for r in records]
            assert [(e.kind, e.stream_id) for e in entries] == [
                ("metadata", "keep"),
                ("delete-stream", "soft"),
                ("tombstone", "hard"),
                ("erase", ""),  # a dry run leaves no entry
            ]
            assert entries[0].metadata.truncate_before == 2
            assert (entries[1].through_version, entries[1].events) == (2, 2)
            assert (entries[2].through_version, entries[2].events) == (1, 1)
            assert entries[3].events == 2 and entries[3].criteria.stream_id_prefix == "ke"
            assert list(entries[3].criteria.event_types) == ["Happened"] and not entries[3].criteria.dry_run
            times = [from_timestamp(e.at) for e in entries]
            assert all(times) and times == sorted(times)

        run(body)

    def test_list_streams_omits_streams_with_nothing_visible(self, run: Any) -> None:
        async def body(b: StorageBackend) -> None:
            for stream in ("aged", "cut", "kept", "young"):
                await self.append_one(b, req(stream, ev(), ev()))
            await self.set_meta(b, "aged", max_age=duration_pb2.Duration(nanos=1_000_000))
            await self.set_meta(b, "young", max_age=duration_pb2.Duration(seconds=3600))
            await self.set_meta(b, "cut", truncate_before=3)
            await asyncio.sleep(0.01)  # every event of "aged" is past its max_age
            assert await self.versions(b, "aged") == [] and await self.versions(b, "cut") == []
            assert await self.listed(b) == ["kept", "young"]
            # Paging still ends where it should when hidden streams sit at a page's edge.
            page, end = await b.list_streams(T, prefix="", after="", limit=1)
            assert [s.stream_id for s in page] == ["kept"] and not end
            page, end = await b.list_streams(T, prefix="", after="kept", limit=5)
            assert [s.stream_id for s in page] == ["young"] and end
            # An event above the cut makes the stream visible, and listed, again.
            await self.append_one(b, req("cut", ev()))
            assert await self.versions(b, "cut") == [3] and await self.listed(b) == ["cut", "kept", "young"]

        run(body)

    def test_state_survives_reopen(self, tmp_path: Path) -> None:
        async def first() -> list[str]:
            b = self.new_backend(tmp_path)
            await b.start()
            r = await b.append([AppendOp(T, req("s", ev(), ev())), AppendOp(T, req("t", ev(), request_id="r"))])
            await b.close()
            return list(r[0].event_ids)

        async def second(ids: list[str]) -> None:
            b = self.new_backend(tmp_path)
            await b.start()
            try:
                assert await b.head_position(T) == 3
                assert decode(await b.get_event(T, ids[1])).version == 2
                replay = await self.append_one(b, req("t", ev(), request_id="r"))
                assert replay.deduplicated
                more = await self.append_one(b, req("s", ev(), kind=K.EXPECTED_VERSION_KIND_EXACT, version=2))
                assert (more.first_version, more.first_position) == (3, 4)
                stats = await b.stats()
                assert (stats.events, stats.streams, stats.tenants) == (4, 2, 1)
                assert stats.disk_bytes > 0
            finally:
                await b.close()

        ids = asyncio.run(first())
        asyncio.run(second(ids))
