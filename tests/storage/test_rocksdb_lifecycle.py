"""RocksDB-specific behaviour of the stream lifecycle: erasure by criteria works in bounded slices, and
closing the backend does not wait for the sweep's interval."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from allsource.storage.v1 import lifecycle_pb2, model_pb2

from services.storage import codec, rocksdb_lifecycle
from services.storage.rocksdb_backend import RocksBackend
from services.storage.rocksdb_lifecycle import RocksLifecycle
from shared.config.settings import StorageSettings
from tests.storage.contract import StorageContract, T, ev, req

SLICE = 10


def test_delete_events_erases_in_bounded_slices_as_it_scans(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rocksdb_lifecycle, "REMOVE_BATCH", SLICE)
    decoded = [0]
    real_decode = codec.decode_event

    def counting_decode(data: bytes) -> Any:
        decoded[0] += 1
        return real_decode(data)

    slices: list[tuple[int, int]] = []  # (events in the slice, events decoded when it was removed)
    real_remove = RocksLifecycle._remove

    def recording_remove(self: RocksLifecycle, t: int, doomed: list[Any], *, drop_index: bool) -> int:
        slices.append((len(doomed), decoded[0]))
        return real_remove(self, t, doomed, drop_index=drop_index)

    async def body() -> None:
        b = RocksBackend(StorageSettings(data_dir=str(tmp_path)))
        await b.start()
        try:
            for i in range(10):
                await StorageContract.append_one(b, req(f"gdpr-{i}", *[ev("Profile") for _ in range(10)]))
            await StorageContract.append_one(b, req("other", ev("Profile")))
            monkeypatch.setattr(codec, "decode_event", counting_decode)
            monkeypatch.setattr(RocksLifecycle, "_remove", recording_remove)
            reply = await b.delete_events(lifecycle_pb2.DeleteEventsRequest(tenant_id=T, stream_id_prefix="gdpr-"))
            assert reply.events_deleted == 100 and reply.streams_affected == 10
            # Ten slices of at most SLICE events, each removed as soon as the scan had found it, not after
            # the whole scan held every erased event in memory.
            assert [n for n, _ in slices] == [SLICE] * 10
            assert [at for _, at in slices] == [SLICE * (i + 1) for i in range(10)]
            left = await b.read_events(T, model_pb2.EventFilter(), after_position=0, limit=1000, max_scan=1000)
            assert [codec.decode_event(e).stream_id for e in left.events] == ["other"]
        finally:
            await b.close()

    asyncio.run(body())


def test_close_right_after_a_metadata_change_does_not_wait_for_the_sweep(tmp_path: Path) -> None:
    async def body() -> float:
        b = RocksBackend(StorageSettings(data_dir=str(tmp_path), lifecycle_sweep_interval_s=30))
        await b.start()
        await StorageContract.append_one(b, req("s", ev(), ev()))
        await StorageContract.set_meta(b, "s", max_count=1)  # wakes the sweep...
        started = time.monotonic()
        await b.close()  # ...which must not keep close() waiting for its next interval
        return time.monotonic() - started

    assert asyncio.run(asyncio.wait_for(body(), 20)) < 5
