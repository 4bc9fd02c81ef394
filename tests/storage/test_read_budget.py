"""Reads hold about their byte budget, not what the count they ask for would weigh, and a filtered read of
a stream whose events the lifecycle sweep removed is an empty, finished page (not an engine error)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from allsource.storage.v1 import lifecycle_pb2, model_pb2

from services.storage.backend import AppendOp
from services.storage.rocksdb_backend import RocksBackend
from shared.config.settings import StorageSettings
from tests.storage.contract import T, ev, req

BUDGET = 1 << 20
PAYLOAD = 256 * 1024


class Counting:
    """An events family that counts the bytes its reads return."""

    def __init__(self, family: Any) -> None:
        self.family, self.returned = family, 0

    def get(self, key: Any, *args: Any) -> Any:
        found = self.family.get(key, *args)
        for value in found if isinstance(key, list) else [found]:
            self.returned += len(value or b"")
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self.family, name)


def test_reads_of_big_events_hold_about_their_byte_budget(tmp_path: Path) -> None:
    """Forty events of 256 KB in one stream (10 MB); a read of up to 1,000 of them with a budget of 1 MiB
    returns a few and reads from the engine at most the budget and the few events of its last read, by
    each read path (a stream, a filter naming the stream, a filter by event type). Before, every path
    read all forty into memory and trimmed afterwards."""

    async def body() -> None:
        backend = RocksBackend(StorageSettings(data_dir=str(tmp_path), max_read_bytes=BUDGET))
        await backend.start()
        try:
            payload = b'{"x": "' + b"x" * PAYLOAD + b'"}'
            for _ in range(4):
                await backend.append([AppendOp(T, req("big", *[ev("Big", payload) for _ in range(10)]))])
            counting = Counting(backend._cf["events"])
            backend._cf["events"] = counting  # type: ignore[assignment]
            reads = {
                "stream": lambda: backend.read_stream(T, "big", backward=False, from_version=1, limit=1000),
                "filter by stream": lambda: backend.read_events(
                    T, model_pb2.EventFilter(stream_id="big"), after_position=0, limit=1000, max_scan=5000
                ),
                "filter by type": lambda: backend.read_events(
                    T, model_pb2.EventFilter(event_types=["Big"]), after_position=0, limit=1000, max_scan=5000
                ),
            }
            for name, read in reads.items():
                counting.returned = 0
                answer = await read()
                assert 1 <= len(answer.events) <= 4, (name, len(answer.events))
                assert counting.returned <= BUDGET + 3 * len(payload), (name, counting.returned)
            # The next page goes on from where the budget stopped this one, and a whole walk sees all 40.
            seen, after = 0, 0
            for _ in range(40):
                run = await backend.read_events(
                    T, model_pb2.EventFilter(stream_id="big"), after_position=after, limit=1000, max_scan=5000
                )
                seen += len(run.events)
                after = run.scanned_to
                if run.end_of_range:
                    break
            assert seen == 40
        finally:
            await backend.close()

    asyncio.run(body())


def test_a_filtered_read_of_a_swept_stream_is_an_empty_finished_page(tmp_path: Path) -> None:
    """A soft-deleted stream, once the sweep has removed its events, reads as an empty, finished page
    through a filter naming it (it raised IndexError, an engine error to the client, before)."""

    async def body() -> None:
        backend = RocksBackend(StorageSettings(data_dir=str(tmp_path)))
        await backend.start()
        try:
            await backend.append([AppendOp(T, req("other", ev()))])
            await backend.append([AppendOp(T, req("gone", ev(), ev(), ev()))])
            await backend.append([AppendOp(T, req("other", ev()))])
            await backend.delete_stream(lifecycle_pb2.DeleteStreamRequest(tenant_id=T, stream_id="gone"))
            await backend.lifecycle.sweep()
            run = await backend.read_events(
                T, model_pb2.EventFilter(stream_id="gone"), after_position=0, limit=100, max_scan=5000
            )
            assert run.events == [] and run.end_of_range
        finally:
            await backend.close()

    asyncio.run(body())
