"""The (stream category, event type) index of the RocksDB backend: written with every event, chosen for a
filter whose stream prefix is a whole category, erased with its events, purged with its tenant, rebuilt
in the background (resumably) for events from before it or after a separator change, and kept in the
tenant's exact byte count throughout."""

from __future__ import annotations

import asyncio
from pathlib import Path

from allsource.storage.v1 import lifecycle_pb2, model_pb2
from rocksdict import Options, Rdict

from services.storage import keys
from services.storage.backend import AppendOp
from services.storage.rocksdb_backend import FAMILIES, RocksBackend
from shared.config.settings import StorageSettings
from tests.storage.contract import T, decode, ev, req, until


def backend(path: Path, **settings: object) -> RocksBackend:
    return RocksBackend(StorageSettings(data_dir=str(path), **settings))  # type: ignore[arg-type]


async def fill(b: RocksBackend) -> None:
    """order-1 and order-2 with types A and B, orderx-1 (another category), order (no category), user-1."""
    ops = [
        AppendOp(T, req("order-1", ev("A"), ev("B"), ev("A"))),
        AppendOp(T, req("orderx-1", ev("A"))),
        AppendOp(T, req("order", ev("A"))),
        AppendOp(T, req("user-1", ev("A"), ev("B"))),
        AppendOp(T, req("order-2", ev("B"), ev("A"))),
    ]
    for op in ops:  # one at a time: positions in this order
        (result,) = await b.append([op])
        assert isinstance(result, model_pb2.AppendResult), result


async def plan(b: RocksBackend, **filter_: object) -> tuple[str, int, list[tuple[str, str]]]:
    run = await b.read_events(T, model_pb2.EventFilter(**filter_), after_position=0, limit=1000, max_scan=1000)  # type: ignore[arg-type]
    return run.index, run.examined, [(decode(d).stream_id, decode(d).event_type) for d in run.events]


def category_keys(b: RocksBackend) -> list[bytes]:
    return list(b._cf["category_type_idx"].keys())


def exact_bytes(b: RocksBackend) -> tuple[int, int]:
    """(bytes the tenant's usage says, bytes measured over its families)."""
    cursor = b._tenants[T]
    return cursor.stored_bytes, b._measure_tenant(cursor.number)[0]


def test_a_whole_category_with_types_walks_the_category_type_index(tmp_path: Path) -> None:
    async def body() -> None:
        b = backend(tmp_path)
        await b.start()
        try:
            await fill(b)
            index, examined, found = await plan(b, stream_id_prefix="order-", event_types=["A"])
            assert (index, found) == ("category_type", [("order-1", "A"), ("order-1", "A"), ("order-2", "A")])
            assert examined == 3  # only the entries of (order, A)
            index, examined, found = await plan(b, stream_id_prefix="order-", event_types=["A", "B"])
            assert (index, examined) == ("category_type", 5)
            assert [s for s, _ in found] == ["order-1"] * 3 + ["order-2"] * 2
            # A prefix that is not a whole category walks the type index and checks the streams.
            index, examined, found = await plan(b, stream_id_prefix="order", event_types=["A"])
            assert index == "event_type" and examined == 6
            assert found == [("order-1", "A"), ("order-1", "A"), ("orderx-1", "A"), ("order", "A"), ("order-2", "A")]
            index, _, found = await plan(b, stream_id_prefix="order-")
            assert index == "log" and len(found) == 5
            # one entry per event of a stream with a category; none for "order"
            assert len(category_keys(b)) == 8
            assert exact_bytes(b)[0] == exact_bytes(b)[1]
        finally:
            await b.close()

    asyncio.run(body())


def test_erasure_and_tenant_purge_remove_the_entries(tmp_path: Path) -> None:
    async def body() -> None:
        b = backend(tmp_path)
        await b.start()
        try:
            await fill(b)
            erased = await b.delete_events(lifecycle_pb2.DeleteEventsRequest(tenant_id=T, stream_id_prefix="order-1"))
            assert erased.events_deleted == 3
            assert len(category_keys(b)) == 5
            assert (await plan(b, stream_id_prefix="order-", event_types=["A", "B"]))[2] == [
                ("order-2", "B"),
                ("order-2", "A"),
            ]
            assert exact_bytes(b)[0] == exact_bytes(b)[1]
            number = b._tenants[T].number
            b._purge(T, number)
            assert category_keys(b) == []
        finally:
            await b.close()

    asyncio.run(body())


def forget_the_index(path: Path) -> None:
    """Make the database look like one written before the index existed: no entries, no separator, and
    the default tenant's (number 1) usage without them."""
    families = {n: Options(raw_mode=True) for n in FAMILIES}
    db = Rdict(str(path / "rocksdb"), Options(raw_mode=True), column_families=families)
    index, meta = db.get_column_family("category_type_idx"), db.get_column_family("meta")
    entries = sum(len(k) for k in index.keys())
    usage = keys.META_USAGE_BYTES + keys.tenant_prefix(1)
    meta[usage] = keys.pack_u64(keys.unpack_u64(meta[usage]) - entries)
    index.delete_range(keys.tenant_prefix(0), b"\xff" * 5)
    meta.delete(keys.META_CATEGORY_SEPARATOR)
    db.close()


def test_events_from_before_the_index_are_backfilled_resumably(tmp_path: Path) -> None:
    """The backfill writes its entries and its progress together; reopened halfway it goes on from there,
    and until it is done the combined filter walks the event-type index."""

    async def write() -> None:
        b = backend(tmp_path)
        await b.start()
        try:
            await fill(b)
            for i in range(20):
                await b.append([AppendOp(T, req(f"order-{i % 3}", *(ev("A") for _ in range(10))))])
        finally:
            await b.close()

    async def halfway() -> None:
        b = backend(tmp_path, index_backfill_batch=50, index_backfill_pause_ms=1000)
        await b.start()
        try:
            await until(lambda: b.backfill_progress(b._tenants[T].number) not in (None, (209, 1)))
            assert b.backfill_progress(b._tenants[T].number) == (209, 51)
            assert (await plan(b, stream_id_prefix="order-", event_types=["A"]))[0] == "event_type"
            # an append meanwhile gets its entry from the writer
            await b.append([AppendOp(T, req("order-9", ev("A")))])
        finally:
            await b.close()

    async def resume() -> None:
        b = backend(tmp_path, index_backfill_batch=50, index_backfill_pause_ms=0)
        assert b.backfill_progress(1) is None
        await b.start()
        try:
            assert b.backfill_progress(b._tenants[T].number) in ((209, 51), (209, 101), (209, 151), (209, 201), None)
            await until(lambda: b.backfill_progress(b._tenants[T].number) is None)
            index, examined, found = await plan(b, stream_id_prefix="order-", event_types=["A"])
            assert index == "category_type" and len(found) == 204 == examined
            assert len(category_keys(b)) == 8 + 200 + 1
            assert exact_bytes(b)[0] == exact_bytes(b)[1]
        finally:
            await b.close()

    asyncio.run(write())
    forget_the_index(tmp_path)
    asyncio.run(halfway())
    asyncio.run(resume())


def test_a_separator_change_rebuilds_the_index(tmp_path: Path) -> None:
    async def body(separator: str, streams: list[str]) -> tuple[str, int]:
        b = backend(tmp_path, category_separator=separator)
        await b.start()
        try:
            for s in streams:
                await b.append([AppendOp(T, req(s, ev("A")))])
            await until(lambda: b.backfill_progress(b._tenants[T].number) is None)
            assert exact_bytes(b)[0] == exact_bytes(b)[1]
            index, _, found = await plan(b, stream_id_prefix="a_", event_types=["A"])
            return index, len(found)
        finally:
            await b.close()

    # with "-", "a_1-x" is of category "a_1" and "a_" is no category; with "_" both are of category "a"
    assert asyncio.run(body("-", ["a_1-x", "a_2"])) == ("event_type", 2)
    assert asyncio.run(body("_", [])) == ("category_type", 2)
