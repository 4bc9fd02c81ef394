"""Positions are never given out twice: once the last events of a tenant's log are erased or swept away,
a restart of storage still continues after the highest position it ever assigned."""

from __future__ import annotations

import asyncio
from pathlib import Path

from allsource.storage.v1 import lifecycle_pb2

from services.storage.backend import AppendOp
from services.storage.rocksdb_backend import RocksBackend
from shared.config.settings import StorageSettings
from tests.storage.contract import T, ev, req


def test_an_erased_tail_is_not_given_out_again_after_a_restart(tmp_path: Path) -> None:
    """keep-1 holds positions 1-3, gone-1 positions 4-5; DeleteEvents erases gone-1 and the storage
    process restarts: the next append gets position 6, and the head is 6. Before, the head was read back
    from the last event on disk (3), so the next append got position 4 again: a consumer checkpointed at
    5 skipped it, and a read waiting for position 5 took other events for it."""

    async def body() -> None:
        backend = RocksBackend(StorageSettings(data_dir=str(tmp_path)))
        await backend.start()
        try:
            await backend.append([AppendOp(T, req("keep-1", ev(), ev(), ev()))])
            await backend.append([AppendOp(T, req("gone-1", ev(), ev()))])
            await backend.delete_events(lifecycle_pb2.DeleteEventsRequest(tenant_id=T, stream_id_prefix="gone-"))
        finally:
            await backend.close()
        again = RocksBackend(StorageSettings(data_dir=str(tmp_path)))
        await again.start()
        try:
            assert await again.head_position(T) == 5
            [result] = await again.append([AppendOp(T, req("keep-1", ev()))])
            assert result.first_position == 6, result
        finally:
            await again.close()

    asyncio.run(body())


def test_a_swept_deleted_stream_at_the_tail_is_not_given_out_again_after_a_restart(tmp_path: Path) -> None:
    """The same through a soft DeleteStream and the lifecycle sweep (which removes the events' keys)."""

    async def body() -> None:
        backend = RocksBackend(StorageSettings(data_dir=str(tmp_path)))
        await backend.start()
        try:
            await backend.append([AppendOp(T, req("a-1", ev(), ev()))])
            await backend.append([AppendOp(T, req("b-1", ev(), ev(), ev()))])
            await backend.delete_stream(lifecycle_pb2.DeleteStreamRequest(tenant_id=T, stream_id="b-1"))
            await backend.lifecycle.sweep()
        finally:
            await backend.close()
        again = RocksBackend(StorageSettings(data_dir=str(tmp_path)))
        await again.start()
        try:
            [result] = await again.append([AppendOp(T, req("a-1", ev()))])
            assert result.first_position == 6, result
        finally:
            await again.close()

    asyncio.run(body())
