"""RocksDB's memory settings reach the engine: one block cache of storage.block_cache_bytes shared by
every column family, and a bound on all memtables together; memory pressure shrinks that cache."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from allsource.storage.v1 import model_pb2

from services.storage.backend import AppendOp
from services.storage.rocksdb_backend import FAMILIES, SHED_BLOCK_CACHE_BYTES, RocksBackend
from shared.config.settings import MemorySettings, StorageSettings
from shared.limits import memory
from shared.limits.memory import MemoryMonitor
from tests.storage.contract import T, ev, req


def test_one_block_cache_of_the_configured_size_serves_every_family(tmp_path: Path) -> None:
    async def body() -> None:
        backend = RocksBackend(
            StorageSettings(data_dir=str(tmp_path), block_cache_bytes=12 << 20, db_write_buffer_bytes=32 << 20)
        )
        await backend.start()
        try:
            await backend.append([AppendOp(T, req("s", *[ev() for _ in range(50)]))])
            capacities = {
                name: backend._cf[name].property_int_value("rocksdb.block-cache-capacity") for name in FAMILIES
            }
            assert set(capacities.values()) == {12 << 20}, capacities
            assert backend._block_cache is not None and backend._block_cache.get_usage() >= 0
        finally:
            await backend.close()

    asyncio.run(body())


def test_memory_pressure_shrinks_the_block_cache_and_recovery_restores_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Under pressure the shared block cache's capacity falls to SHED_BLOCK_CACHE_BYTES and what it held
    is freed (the figures the metrics serve show both); after it, the capacity is back and reads fill it."""
    rss = [0]
    monkeypatch.setattr(memory, "resident_bytes", lambda: rss[0])

    async def body() -> None:
        backend = RocksBackend(StorageSettings(data_dir=str(tmp_path), block_cache_bytes=64 << 20))
        monitor = MemoryMonitor(
            MemorySettings(limit_bytes=1000, high_water=0.9, low_water=0.8),
            backend.shed_caches,
            backend.restore_caches,
            service="storage",
        )
        await backend.start()
        try:
            for s in range(8):  # 8,000 events of about 1 KB, flushed to SST files (memtables bypass the cache)
                events = [ev(payload=b'{"x": "' + b"x" * 1000 + b'"}') for _ in range(1000)]
                await backend.append([AppendOp(T, req(f"s-{s}", *events))])
            for name in FAMILIES:
                backend._cf[name].flush()

            async def read_all() -> None:
                cursor = 0
                while True:
                    run = await backend.read_events(
                        T, model_pb2.EventFilter(), after_position=cursor, limit=1000, max_scan=10_000
                    )
                    cursor = run.scanned_to
                    if run.end_of_range:
                        return

            def figures() -> tuple[int, int]:
                f = backend.figures(0)
                assert f is not None
                return f.block_cache_bytes, f.block_cache_capacity_bytes

            await read_all()
            used, capacity = figures()
            assert capacity == 64 << 20 and used > 4 * SHED_BLOCK_CACHE_BYTES, (used, capacity)

            rss[0] = 950  # past high water
            with caplog.at_level(logging.INFO, logger="services.storage.rocksdb_backend"):
                monitor.check()
                assert monitor.pressured
                used, capacity = figures()
                assert capacity == SHED_BLOCK_CACHE_BYTES and used <= SHED_BLOCK_CACHE_BYTES, (used, capacity)
                await read_all()  # reads go on, within the shrunk cache
                monitor.check()  # still under pressure: shed again, logged once
                assert figures()[0] <= SHED_BLOCK_CACHE_BYTES
                assert [r.getMessage() for r in caplog.records].count("memory pressure: block cache shrunk") == 1

                rss[0] = 700  # below low water
                monitor.check()
                assert not monitor.pressured
                assert "block cache capacity restored" in caplog.text
            await read_all()
            used, capacity = figures()
            assert capacity == 64 << 20 and used > 4 * SHED_BLOCK_CACHE_BYTES, (used, capacity)
        finally:
            await backend.close()

    asyncio.run(body())
