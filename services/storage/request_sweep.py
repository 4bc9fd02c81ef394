"""The sweep of stored append results (idempotency records).

An append made with a request id stores its result, so that a retry with the same id gets it again.
Past storage.request_id_ttl_s the writer treats the id as new and no longer reads that result; without
this sweep it stayed on disk for good (about 100 bytes for every such append, counted in the tenant's
stored bytes). Every storage.request_id_sweep_interval_s the sweep reads the whole `requests` family a
page at a time on a thread (never a long loop on the event loop), and removes the results recorded
before now - TTL, a bounded batch at a time, with the bytes they held taken off their tenant's stored
bytes in the same write.

A removal is written only while the writer is idle (no batch being built or written: a batch may have
read the result to overwrite it, and counts its bytes as replaced), and only if the result is still the
one the scan read (a retry after the TTL may have written a new one since). Under a writer that never
pauses, a page's removals wait for the next sweep.

Incremental backups take the stored results written since their parent by recording time and do not
carry removals (services/storage/backup/format.py): a chain restored brings back results this sweep had
removed. They are past the TTL, so they answer no retry, and the next sweep removes them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import operator
import time
from typing import TYPE_CHECKING

from rocksdict import WriteBatch

from services.storage import keys
from services.storage.threads import on_thread

if TYPE_CHECKING:
    from services.storage.rocksdb_backend import RocksBackend

log = logging.getLogger(__name__)

# Records read per call on the thread (a few tens of milliseconds), and removed per write.
SCAN_PAGE = 50_000
SCAN_BLOCK = 1024
REMOVE_BATCH = 1_000
# Tries to find the writer idle for one batch of removals before the page is left to the next sweep.
IDLE_TRIES = 20


class RequestSweep:
    """The periodic removal of expired append results of one RocksBackend."""

    def __init__(self, backend: RocksBackend) -> None:
        self.b = backend
        self._task: asyncio.Task[None] | None = None
        self.removed = 0  # since the process started (a metric)
        self.skipped = 0  # expired results left for a later sweep (the writer was busy)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            interval = self.b.settings.request_id_sweep_interval_s
            # Off (0): looked at again a minute later, for a reload that turns it on.
            await asyncio.sleep(interval if interval > 0 else 60.0)
            if self.b.settings.request_id_sweep_interval_s <= 0:
                continue
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the sweep of stored append results failed; it runs again later")

    async def sweep(self, now_ns: int = 0) -> int:
        """Remove every stored append result recorded more than request_id_ttl_s before `now_ns` (default:
        now); returns how many were removed."""
        cutoff = (now_ns or time.time_ns()) - self.b.settings.request_id_ttl_s * 1_000_000_000
        if cutoff <= 0:
            return 0
        mark = keys.pack_u64(cutoff)
        removed = 0
        start: bytes | None = b""
        while start is not None:
            release = await self.b.begin_reading()  # a reopen of the database waits for the page
            try:
                found, start = await on_thread(self._expired, start, mark)
            finally:
                release()
            for i in range(0, len(found), REMOVE_BATCH):
                removed += await self._remove(found[i : i + REMOVE_BATCH])
        self.removed += removed
        if removed:
            log.info("expired append results removed", extra={"results": removed})
        return removed

    def _expired(self, start: bytes, mark: bytes) -> tuple[list[tuple[bytes, bytes]], bytes | None]:
        """(key, value) of the results from `start` on recorded before `mark`, over at most SCAN_PAGE
        records, and where the next page starts (None at the end). On a thread; C-level calls per block."""
        rows = self.b._cf["requests"].items(from_key=start)
        recorded = operator.itemgetter(keys.REQUEST_RECORDED)
        found: list[tuple[bytes, bytes]] = []
        scanned = 0
        while scanned < SCAN_PAGE:
            block = list(itertools.islice(rows, SCAN_BLOCK))
            if not block:
                return found, None
            values = map(operator.itemgetter(1), block)
            found += itertools.compress(block, map(operator.lt, map(recorded, values), itertools.repeat(mark)))
            scanned += len(block)
        return found, block[-1][0] + b"\x00"

    async def _remove(self, found: list[tuple[bytes, bytes]]) -> int:
        """Remove a batch of expired results that are still as read, while the writer is idle."""
        writer = self.b._writer
        for _ in range(IDLE_TRIES):
            if writer is not None:
                await writer.quiesce()
            if self.b._db is None or self.b._writer is not writer:
                return 0  # closed or reopened meanwhile: the next sweep reads again
            if writer is None or writer.idle:
                break
            await asyncio.sleep(0.01)
        else:
            self.skipped += len(found)
            return 0
        # From here to the write, no await: nothing else runs on the event loop.
        family, h = self.b._cf["requests"], self.b._h
        going = set(self.b._deleting.values())
        cursors = {c.number: c for c in self.b._tenants.values() if c.number not in going}
        freed: dict[int, int] = {}
        batch = WriteBatch(raw_mode=True)
        n = 0
        for key, value in found:
            t = keys.TENANT.unpack_from(key)[0]
            # A tenant being deleted goes with its keys; a result rewritten since the scan is kept.
            if t not in cursors or family.get(key) != value:
                continue
            batch.delete(key, h["requests"])
            freed[t] = freed.get(t, 0) + len(key) + len(value)
            n += 1
        if not n:
            return 0
        lowered = {t: max(0, cursors[t].stored_bytes - size) for t, size in freed.items()}
        for t, stored in lowered.items():
            batch.put(keys.META_USAGE_BYTES + keys.tenant_prefix(t), keys.pack_u64(stored), h["meta"])
        self.b._db.write(batch, self.b._durable)
        for t, stored in lowered.items():  # only once written: a failed write (disk full) lowers nothing
            cursors[t].stored_bytes = stored
        return n
