"""A backup's checkpoint does not hold the storage event loop: RocksDB flushes the memtables first in
its own threads (rocksdict holds the GIL for a whole create_checkpoint, flush included)."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

from allsource.storage.v1 import model_pb2
from rocksdict import Checkpoint

from services.storage.backend import AppendOp
from services.storage.rocksdb_backend import RocksBackend
from shared.config.settings import StorageSettings


async def _fill(backend: RocksBackend, appends: int) -> None:
    for i in range(appends):
        events = [
            model_pb2.EventInput(event_type="Filled", payload=b'{"n": %d, "pad": "%s"}' % (j, b"x" * 200))
            for j in range(1000)
        ]
        await backend.append([AppendOp("default", model_pb2.AppendInput(stream_id=f"s-{i % 10}", events=events))])


async def _largest_gap(work: asyncio.Future[None]) -> float:
    """The longest the event loop went without running a 1 ms ticker while `work` ran."""
    largest, last = 0.0, time.perf_counter()
    while not work.done():
        await asyncio.sleep(0.001)
        now = time.perf_counter()
        largest, last = max(largest, now - last), now
    await work
    return largest


def test_a_checkpoint_leaves_the_event_loop_running(tmp_path: Path) -> None:
    async def run() -> tuple[float, float]:
        # Large memtables with no shared bound, so that a checkpoint has much to flush.
        backend = RocksBackend(
            StorageSettings(
                data_dir=str(tmp_path / "data"), write_buffer_bytes=256 * 1024 * 1024, db_write_buffer_bytes=0
            )
        )
        await backend.start()
        try:
            # Baseline, same run: a plain create_checkpoint over the same amount of unflushed data.
            await _fill(backend, 120)
            started = time.perf_counter()
            Checkpoint(backend._db).create_checkpoint(str(tmp_path / "plain"))
            blocking = time.perf_counter() - started
            shutil.rmtree(tmp_path / "plain")
            await _fill(backend, 120)
            gap = await _largest_gap(asyncio.ensure_future(backend.checkpoint(tmp_path / "ours")))
            assert (tmp_path / "ours" / "CURRENT").exists()
            return blocking, gap
        finally:
            await backend.close()

    blocking, gap = asyncio.run(run())
    assert blocking > 0.05, f"the baseline flushed too little to tell ({blocking:.3f} s)"
    assert gap < blocking / 2, f"the loop stalled {gap:.3f} s; a blocking checkpoint took {blocking:.3f} s"
