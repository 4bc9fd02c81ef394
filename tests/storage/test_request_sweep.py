"""The sweep of stored append results: results past storage.request_id_ttl_s are removed, their bytes
leave the tenant's stored bytes (durably), results still within it and results rewritten since the scan
are kept, nothing is removed while the writer is busy, and the running backend sweeps on its own."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from services.storage import keys, request_sweep
from services.storage.request_sweep import RequestSweep
from services.storage.rocksdb_backend import RocksBackend
from shared.config.settings import StorageSettings
from tests.storage.contract import StorageContract, T, ev, req, until

TTL_S = 60


def settings(tmp_path: Path, **kw: float) -> StorageSettings:
    fields: dict[str, Any] = {
        "data_dir": str(tmp_path),
        "request_id_ttl_s": TTL_S,
        "request_id_sweep_interval_s": 0,
        **kw,
    }
    return StorageSettings(**fields)


def run(tmp_path: Path, body: Callable[[RocksBackend], Awaitable[None]], **kw: float) -> None:
    async def main() -> None:
        b = RocksBackend(settings(tmp_path, **kw))
        await b.start()
        try:
            await body(b)
        finally:
            await b.close()

    asyncio.run(main())


def stored(b: RocksBackend, tenant: str = T) -> dict[str, bytes]:
    """The tenant's stored append results: request id -> value."""
    t = b._tenant_no(tenant)
    assert t is not None
    prefix = keys.tenant_prefix(t)
    return {
        bytes(k[4:]).decode(): bytes(v)
        for k, v in b._cf["requests"].items(from_key=prefix)
        if bytes(k).startswith(prefix)
    }


async def append_with_ids(b: RocksBackend, *ids: str, tenant: str = T) -> None:
    for request_id in ids:
        await StorageContract.append_one(b, req(f"s-{request_id}", ev(), request_id=request_id), tenant=tenant)


def test_results_past_the_ttl_go_with_their_bytes_and_the_rest_stay(tmp_path: Path) -> None:
    async def body(b: RocksBackend) -> None:
        await StorageContract.new_tenant(b, "acme")
        await append_with_ids(b, "old-1", "old-2", "old-3")
        await append_with_ids(b, "acme-old", tenant="acme")
        await asyncio.sleep(0.01)
        middle = time.time_ns()
        await asyncio.sleep(0.01)
        await append_with_ids(b, "new-1", "new-2")
        before = stored(b)
        usage, acme_usage = (await b.tenant_usage(T)).storage_bytes, (await b.tenant_usage("acme")).storage_bytes
        t = b._tenant_no(T)
        assert t is not None
        old_bytes = sum(len(keys.request_key(t, r)) + len(before[r]) for r in ("old-1", "old-2", "old-3"))

        # As if it were TTL_S after `middle`: what was recorded before it has expired, the rest has not.
        assert await b.request_sweep.sweep(now_ns=middle + TTL_S * 1_000_000_000) == 4
        assert set(stored(b)) == {"new-1", "new-2"}
        assert stored(b, "acme") == {}
        assert (await b.tenant_usage(T)).storage_bytes == usage - old_bytes
        assert (await b.tenant_usage("acme")).storage_bytes < acme_usage
        assert b.request_sweep.removed == 4
        # A result still within the TTL still answers its retry.
        retry = await StorageContract.append_one(b, req("s-new-1", ev(), request_id="new-1"))
        assert retry.deduplicated
        # Sweeping again finds nothing more.
        assert await b.request_sweep.sweep(now_ns=middle + TTL_S * 1_000_000_000) == 0
        lowered[:] = [(await b.tenant_usage(T)).storage_bytes]

    lowered: list[int] = []
    run(tmp_path, body)

    async def reopened(b: RocksBackend) -> None:  # the lowered figure was written with the removals
        assert (await b.tenant_usage(T)).storage_bytes == lowered[0]
        assert set(stored(b)) == {"new-1", "new-2"}

    run(tmp_path, reopened)


def test_the_sweep_reads_page_by_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(request_sweep, "SCAN_BLOCK", 2)
    monkeypatch.setattr(request_sweep, "SCAN_PAGE", 2)
    monkeypatch.setattr(request_sweep, "REMOVE_BATCH", 3)
    pages: list[int] = []
    real = RequestSweep._expired

    def counted(self: RequestSweep, start: bytes, mark: bytes) -> tuple[list[tuple[bytes, bytes]], bytes | None]:
        found, after = real(self, start, mark)
        pages.append(len(found))
        return found, after

    monkeypatch.setattr(RequestSweep, "_expired", counted)

    async def body(b: RocksBackend) -> None:
        ids = [f"r{i}" for i in range(7)]
        await append_with_ids(b, *ids)
        assert await b.request_sweep.sweep(now_ns=time.time_ns() + TTL_S * 1_000_000_000) == 7
        assert stored(b) == {}

    run(tmp_path, body)
    assert pages == [2, 2, 2, 1]


def test_a_result_rewritten_after_the_scan_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_remove = RequestSweep._remove

    async def body(b: RocksBackend) -> None:
        await append_with_ids(b, "again", "gone")
        first = stored(b)["again"]

        async def rewrite_then_remove(self: RequestSweep, found: list[tuple[bytes, bytes]]) -> int:
            # Between the scan and the removal, a retry after the TTL appends anew under the same id.
            assert b._writer is not None
            b._writer._request_ttl_ns = 0
            reply = await StorageContract.append_one(b, req("s-again", ev(), request_id="again"))
            assert not reply.deduplicated
            return await real_remove(self, found)

        monkeypatch.setattr(RequestSweep, "_remove", rewrite_then_remove)
        assert await b.request_sweep.sweep(now_ns=time.time_ns() + TTL_S * 1_000_000_000) == 1
        kept = stored(b)
        assert set(kept) == {"again"} and kept["again"] != first

    run(tmp_path, body)


def test_nothing_is_removed_while_the_writer_is_busy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(request_sweep, "IDLE_TRIES", 2)

    async def body(b: RocksBackend) -> None:
        await append_with_ids(b, "a", "b")
        assert b._writer is not None
        monkeypatch.setattr(type(b._writer), "idle", property(lambda self: False))
        assert await b.request_sweep.sweep(now_ns=time.time_ns() + TTL_S * 1_000_000_000) == 0
        assert set(stored(b)) == {"a", "b"} and b.request_sweep.skipped == 2
        monkeypatch.undo()
        assert await b.request_sweep.sweep(now_ns=time.time_ns() + TTL_S * 1_000_000_000) == 2

    run(tmp_path, body)


def test_the_running_backend_sweeps_on_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the storage service runs: RocksBackend.start starts the sweep every
    request_id_sweep_interval_s (here as if TTL_S had passed)."""
    real_sweep = RequestSweep.sweep

    async def later(self: RequestSweep, now_ns: int = 0) -> int:
        return await real_sweep(self, now_ns=time.time_ns() + (TTL_S + 1) * 1_000_000_000)

    monkeypatch.setattr(RequestSweep, "sweep", later)

    async def body(b: RocksBackend) -> None:
        await append_with_ids(b, "x", "y")
        await until(lambda: not stored(b), timeout=10)
        assert stored(b) == {} and b.request_sweep.removed == 2

    run(tmp_path, body, request_id_sweep_interval_s=0.1)


def test_stopping_waits_for_the_page_being_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page is read on a thread: a stop (the backend closing) waits for it rather than close the
    database under its iterator."""
    real = RequestSweep._expired
    entered = threading.Event()
    finished: list[float] = []

    def slow(self: RequestSweep, start: bytes, mark: bytes) -> tuple[list[tuple[bytes, bytes]], bytes | None]:
        entered.set()
        time.sleep(0.3)
        out = real(self, start, mark)
        finished.append(time.monotonic())
        return out

    monkeypatch.setattr(RequestSweep, "_expired", slow)

    async def body(b: RocksBackend) -> None:
        await append_with_ids(b, "a")
        sweep = b.request_sweep
        await sweep.stop()  # the periodic task; this test runs one sweep as that task instead
        sweep._task = asyncio.ensure_future(sweep.sweep(now_ns=time.time_ns() + TTL_S * 1_000_000_000))
        assert await asyncio.to_thread(entered.wait, 5)
        await sweep.stop()
        assert finished and finished[0] <= time.monotonic()

    run(tmp_path, body)
