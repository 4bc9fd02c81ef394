"""The embedded backend: one RocksDB database (via rocksdict) with a column family per concern.

Column families: events (the log), stream_idx, type_idx, id_idx (idempotency and GetEvent),
category_type_idx (stream category and event type, F13), requests (request-id results), streams (heads),
snapshots, meta and records. Writes go through the group-commit writer;
reads run on the event loop against the database directly (a WriteBatch becomes visible atomically, and
the writer's batch is written on its I/O thread while reads go on). Every rocksdict exception is
converted here.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import heapq
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from allsource.storage.v1 import lifecycle_pb2, model_pb2
from rocksdict import (
    BlockBasedOptions,
    Cache,
    Checkpoint,
    IngestExternalFileOptions,
    Options,
    Rdict,
    ReadOptions,
    WriteBatch,
)

from services.storage import codec, keys, lifecycle
from services.storage.backend import (
    AppendOp,
    AppendResult,
    EngineFigures,
    EventRun,
    IndexFigures,
    Record,
    Snapshot,
    StorageBackend,
    StorageOpenError,
    StreamSlice,
    TenantFigures,
    TenantUsage,
)
from services.storage.backup.dump import VIEW_RUNS
from services.storage.codec import StreamHead
from services.storage.disk import DiskGuard, out_of_space
from services.storage.hub import CommitHub
from services.storage.quotas import MINUTE_NS, StorageQuotas, Windows
from services.storage.request_sweep import RequestSweep
from services.storage.rocksdb_lifecycle import RocksLifecycle
from services.storage.writer import GroupCommitWriter, TenantCursor, write_options
from shared.config.settings import StorageSettings
from shared.core.errors import (
    Aborted,
    AllSourceError,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from shared.core.reasons import Reason
from shared.core.shares import Turns
from shared.core.tenant_ids import DEFAULT_TENANT
from shared.core.timestamps import from_timestamp, to_timestamp
from shared.limits.plans import NS_QUOTA_OVERRIDES

log = logging.getLogger(__name__)

FAMILIES = (
    "events",
    "stream_idx",
    "type_idx",
    "id_idx",
    "requests",
    "streams",
    "snapshots",
    "meta",
    "records",
    "category_type_idx",
)
# The indexes GetIndexStats reports (family -> the name QueryPlan uses), each a family whose keys start
# with the tenant number.
INDEXES = {"stream_idx": "stream", "type_idx": "event_type", "id_idx": "event_id", "category_type_idx": "category_type"}
# Families whose every key starts with a tenant number.
DATA_FAMILIES = tuple(n for n in FAMILIES if n != "meta")
# A scan gives the event loop back after this long, so one call's scan cannot hold up another's append.
SCAN_SLICE_S = 0.001
SHED_BLOCK_CACHE_BYTES = 1 << 20  # the block cache's capacity under memory pressure
# Point-lookup families get bloom filters: an id-index miss drops from ~2.5 us to ~0.5 us here.
_BLOOM = {"id_idx", "requests", "streams"}


@contextmanager
def engine_errors(action: str) -> Iterator[None]:
    """Convert anything the engine raises into a typed error; our own errors pass through."""
    try:
        yield
    except AllSourceError:
        raise
    except Exception as exc:
        log.exception("storage engine error while %s", action)
        raise Unavailable(f"the storage engine failed while {action}", reason=Reason.STORAGE_ENGINE_ERROR) from exc


def _family_options(name: str, write_buffer_bytes: int = 0, block_cache: Cache | None = None) -> Options:
    opt = Options(raw_mode=True)
    if write_buffer_bytes:
        opt.set_write_buffer_size(write_buffer_bytes)
    if name in _BLOOM or block_cache is not None:
        table = BlockBasedOptions()
        if block_cache is not None:
            table.set_block_cache(block_cache)
        if name in _BLOOM:
            table.set_bloom_filter(10, False)
            opt.set_memtable_prefix_bloom_ratio(0.1)
            opt.set_memtable_whole_key_filtering(True)
        opt.set_block_based_table_factory(table)
    return opt


class RocksBackend(StorageBackend):
    """StorageBackend on an embedded RocksDB database."""

    name = "rocksdb"

    def __init__(self, settings: StorageSettings) -> None:
        self.settings = settings
        self.path = Path(settings.data_dir).resolve() / "rocksdb"
        self._db: Any = None
        self._cf: dict[str, Any] = {}
        self._h: dict[str, Any] = {}
        self._tenants: dict[str, TenantCursor] = {}
        self._tenant_records: dict[str, tuple[model_pb2.TenantRecord, int]] = {}
        self._inactive: set[str] = set()
        # Tenants whose purge has begun and not finished: id -> number. The id cannot be created again
        # until the purge is done (its registry keys are deleted with the range).
        self._deleting: dict[str, int] = {}
        self._tenant_seq = 1
        # Bytes of snapshots and control-plane records per tenant number (see keys.META_OTHER_BYTES).
        self._other_bytes: dict[int, int] = {}
        self._writer: GroupCommitWriter | None = None
        self._hub: CommitHub | None = None
        self._block_cache: Cache | None = None
        self._cache_shed = False  # the block cache is shrunk for memory pressure
        # The quotas the writer enforces (plans from tenant records, overrides from their records).
        self.quotas = StorageQuotas()
        self._disk = DiskGuard(self.path, settings.min_free_bytes)
        self._space_watch: asyncio.Future[None] | None = None
        # Scans in progress (they hold iterators across awaits), and whether new ones may start (not while
        # the database is being reopened).
        self._scans = 0
        self._no_scans = asyncio.Event()
        self._no_scans.set()
        self._readers_may_start = asyncio.Event()
        self._readers_may_start.set()
        # Watchers of a namespace's records (WatchRecords): set, and replaced, when a record is written.
        self._record_watchers: dict[tuple[int, str], asyncio.Event] = {}
        # Every write that is acknowledged as stored syncs the WAL when storage.sync_writes says so.
        # Snapshots and query counts are written without a sync of their own: a snapshot only saves
        # work (the events rebuild it) and query counts are lost anyway if the counting process dies;
        # the next synced write makes them durable (the WAL is one file, synced whole).
        self._durable = write_options(settings.sync_writes)
        self._best_effort = write_options(False)
        # Stream metadata, deletions, erasure and the sweep (services.storage.rocksdb_lifecycle).
        self.lifecycle = RocksLifecycle(self)
        self._scan_turns = Turns(SCANS_PER_TENANT)
        # Removes stored append results past storage.request_id_ttl_s (services.storage.request_sweep).
        self.request_sweep = RequestSweep(self)
        # The category/type index: its separator (fixed while open; a change rebuilds it at start) and
        # the tenants whose backfill is not done: number -> [last position to cover, next position].
        self.category_separator = settings.category_separator
        self._backfill: dict[int, list[int]] = {}
        self._backfill_task: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        self._hub = CommitHub(asyncio.get_running_loop())
        self.path.mkdir(parents=True, exist_ok=True)
        self._disk = DiskGuard(self.path, self.settings.min_free_bytes)
        try:
            self._open()
        except Exception as exc:
            raise StorageOpenError(f"cannot open the database at {self.path}: {exc}") from exc
        self._space_watch = asyncio.ensure_future(self._watch_space())
        self.lifecycle.start()
        self.request_sweep.start()
        self._backfill_task = asyncio.ensure_future(self._run_backfill())
        log.info(
            "storage opened",
            extra={"path": str(self.path), "tenants": len(self._tenants), "sync_writes": self.settings.sync_writes},
        )

    def _open(self) -> None:
        """Open the database, load the tenants' state from it, and start a writer on it."""
        assert self._hub is not None
        opt = Options(raw_mode=True)
        opt.create_if_missing(True)
        opt.create_missing_column_families(True)
        opt.set_max_background_jobs(self.settings.background_jobs)
        opt.set_keep_log_file_num(3)
        if self.settings.db_write_buffer_bytes:
            opt.set_db_write_buffer_size(self.settings.db_write_buffer_bytes)
        # One block cache for every family (RocksDB would otherwise give each family a cache of its own),
        # the default family included, so the database's own block-cache properties describe it too.
        self._block_cache = Cache(self.settings.block_cache_bytes)
        self._cache_shed = False
        table = BlockBasedOptions()
        table.set_block_cache(self._block_cache)
        opt.set_block_based_table_factory(table)
        families = {n: _family_options(n, self.settings.write_buffer_bytes, self._block_cache) for n in FAMILIES}
        self._db = Rdict(str(self.path), opt, column_families=families)
        self._cf = {n: self._db.get_column_family(n) for n in FAMILIES}
        self._h = {n: self._db.get_column_family_handle(n) for n in FAMILIES}
        self._load_tenants()
        self._load_backfill()
        self.lifecycle.load()
        for tenant_id, number in list(self._deleting.items()):
            log.info("resuming an interrupted tenant deletion", extra={"tenant": tenant_id})
            self._purge(tenant_id, number)
            del self._deleting[tenant_id]
        # On a reopen after a failed write, what that write left durable becomes visible (heads only rise).
        self._hub.publish({cursor.number: cursor.last_position for cursor in self._tenants.values()})
        self._writer = GroupCommitWriter(
            self._db,
            self._h,
            self._cf,
            self._tenants,
            sync=self.settings.sync_writes,
            max_entries=self.settings.group_commit_max_entries,
            stream_cache_size=self.settings.stream_cache_size,
            request_id_ttl_ns=self.settings.request_id_ttl_s * 1_000_000_000,
            on_commit=self._hub.publish,
            on_failure=self._write_failed,
            quotas=self.quotas,
            other_bytes=lambda tenant_no: self._other_bytes.get(tenant_no, 0),
            stream_lifecycle=self.lifecycle.get,
            category_separator=self.category_separator,
        )
        self._writer.start()

    def _write_failed(self, exc: BaseException) -> None:
        if out_of_space(exc):
            log.error("the storage volume is full: writes are refused until space is freed")
            self._disk.full = True

    async def _watch_space(self) -> None:
        """Once a write has failed for lack of space, reopen the database when space is back."""
        while True:
            await asyncio.sleep(1.0)
            if self._disk.full and self._disk.room_again():
                try:
                    await self._reopen()
                except Exception:
                    log.exception("could not reopen the database after the volume filled up")
                else:
                    log.info("space is back: the database is reopened and takes writes again")

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[None]:
        """While iterators of the database are held across awaits: a reopen after a failed write waits for
        them, and they are not made while one is under way."""
        release = await self.begin_reading()
        try:
            yield
        finally:
            release()

    async def begin_reading(self) -> Callable[[], None]:
        """As `reading`, for iterators that another thread holds: returns the release (call it on the
        event loop's thread; once is enough, more are ignored)."""
        await self._readers_may_start.wait()
        self._scans += 1
        self._no_scans.clear()
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._scans -= 1
                if not self._scans:
                    self._no_scans.set()

        return release

    async def _reopen(self) -> None:
        """Close and open the database in this process: RocksDB takes no writes after a failed one."""
        self._readers_may_start.clear()
        await self._no_scans.wait()  # scans hold iterators across awaits; let them finish
        try:
            if self._writer is not None:
                await self._writer.stop()
                self._writer = None
            try:
                self._db.close()
            except Exception as exc:
                log.warning("closing the database after a failed write", extra={"detail": str(exc)})
            # The database's lock is released only once nothing refers to it any more.
            self._db, self._cf, self._h = None, {}, {}
            gc.collect()
            self._tenants.clear()
            self._tenant_records.clear()
            self._deleting.clear()
            self._other_bytes.clear()
            self._open()
            self._disk.full = False
        finally:
            self._readers_may_start.set()

    async def close(self) -> None:
        await self.lifecycle.stop()
        await self.request_sweep.stop()
        if self._backfill_task is not None:
            self._backfill_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._backfill_task
            self._backfill_task = None
        if self._space_watch is not None:
            self._space_watch.cancel()
            self._space_watch = None
        if self._writer is not None:
            await self._writer.stop()
            self._writer = None
        if self._db is not None:
            with engine_errors("closing"):
                self._db.close()
            # Nothing may keep the database (its lock goes with the last reference): the lifecycle refers
            # back to this backend, so the families are dropped here rather than left to the collector.
            self._db, self._cf, self._h = None, {}, {}

    def _load_tenants(self) -> None:
        meta = self._cf["meta"]
        for tenant_id, value in self._meta_under(keys.META_TENANT_DELETING):
            self._deleting[tenant_id] = keys.TENANT.unpack(value)[0]
        registered: dict[str, int] = {}
        for tenant_id, value in self._meta_under(keys.META_TENANT):
            if tenant_id not in self._deleting:
                registered[tenant_id] = keys.TENANT.unpack(value)[0]
        if DEFAULT_TENANT not in registered:
            meta.put(keys.META_TENANT + DEFAULT_TENANT.encode(), keys.tenant_prefix(1), self._durable)
            registered[DEFAULT_TENANT] = 1
        for _, value in self._meta_under(keys.META_TENANT_RECORD):
            tenant = model_pb2.TenantRecord.FromString(value[8:])
            if tenant.tenant_id not in self._deleting:
                self._tenant_records[tenant.tenant_id] = (tenant, keys.unpack_u64(value))
        raw_seq = meta.get(keys.META_TENANT_SEQ)
        self._tenant_seq = max([keys.unpack_u64(raw_seq) if raw_seq else 0, *registered.values()])
        now = time.time_ns()
        hour = now // keys.HOUR_NS
        for tenant_id, number in registered.items():
            last_position, last_recorded = 0, 0
            it = self._cf["events"].iter()
            it.seek_for_prev(keys.event_key(number, (1 << 64) - 1))
            if it.valid() and it.key()[:4] == keys.tenant_prefix(number):
                last_position = keys.event_key_position(it.key())
                last_recorded = from_timestamp(codec.decode_event(it.value()).recorded_at)
            del it
            tp = keys.tenant_prefix(number)
            # Positions are never given out twice: events removed from the tail left the head behind.
            last_position = max(last_position, self._meta_u64(keys.META_LAST_POSITION + tp))
            streams = self._meta_u64(keys.META_STREAM_COUNT + tp)
            stored = meta.get(keys.META_USAGE_BYTES + tp)
            other = meta.get(keys.META_OTHER_BYTES + tp)
            if stored is None or other is None:  # data from before usage was counted: measure it once
                stored_bytes, other_bytes = self._measure_tenant(number)
                meta.put(keys.META_USAGE_BYTES + tp, keys.pack_u64(stored_bytes), self._durable)
                meta.put(keys.META_OTHER_BYTES + tp, keys.pack_u64(other_bytes), self._durable)
            else:
                stored_bytes, other_bytes = keys.unpack_u64(stored), keys.unpack_u64(other)
            self._other_bytes[number] = other_bytes
            self._tenants[tenant_id] = TenantCursor(
                tenant_id,
                number,
                last_position,
                last_recorded,
                streams,
                stored_bytes=stored_bytes,
                windows=Windows(
                    now,
                    hour_events=self._meta_u64(keys.hour_events_key(number, hour)),
                    day_events=self._events_today(number, hour),
                    minute_events=self._events_this_minute(tp, now),
                ),
            )
        if DEFAULT_TENANT not in self._tenant_records:
            # The default tenant exists from the first start; data written before tenants belongs to it.
            # (The admin service fills in the fields storage does not read: its name, its quotas.)
            tenant = model_pb2.TenantRecord(
                tenant_id=DEFAULT_TENANT, status=model_pb2.TENANT_STATUS_ACTIVE, created_at=to_timestamp(time.time_ns())
            )
            record = keys.pack_u64(1) + tenant.SerializeToString()
            meta.put(keys.META_TENANT_RECORD + DEFAULT_TENANT.encode(), record, self._durable)
            self._tenant_records[DEFAULT_TENANT] = (tenant, 1)
        self._inactive = {
            tid for tid, (t, _) in self._tenant_records.items() if t.status == model_pb2.TENANT_STATUS_INACTIVE
        }
        for tenant_id, (kept, _) in self._tenant_records.items():
            self.quotas.set_plan(tenant_id, kept.quotas if kept.HasField("quotas") else None)
        prefix = keys.record_prefix(0, NS_QUOTA_OVERRIDES)
        for key, value in self._cf["records"].items(from_key=prefix):
            if not key.startswith(prefix):
                break
            self.quotas.put_override(key[len(prefix) :].decode(), value[8:])

    # -- the category/type index's backfill -----------------------------------------------------------

    def _load_backfill(self) -> None:
        """Start (after an upgrade or a separator change) or resume the category/type index's backfill.

        Events appended from now on get their entries from the writer; those up to each tenant's current
        last position are backfilled in the background, the progress kept in a meta key written in the
        same batch as the entries (so a killed process resumes where the last batch ended)."""
        meta, h = self._cf["meta"], self._h["meta"]
        wanted = self.category_separator.encode()
        built_with = meta.get(keys.META_CATEGORY_SEPARATOR)
        if built_with != wanted:
            batch = WriteBatch(raw_mode=True)
            h_cat, scheduled = self._h["category_type_idx"], 0
            for cursor in self._tenants.values():
                tp = keys.tenant_prefix(cursor.number)
                if built_with is not None:  # built with another separator: its entries go, uncounted
                    old = self._family_bytes("category_type_idx", cursor.number)
                    cursor.stored_bytes = max(0, cursor.stored_bytes - old)
                    batch.put(keys.META_USAGE_BYTES + tp, keys.pack_u64(cursor.stored_bytes), h)
                if cursor.last_position:
                    progress = keys.pack_u64(cursor.last_position) + keys.pack_u64(1)
                    batch.put(keys.META_CATEGORY_BACKFILL + tp, progress, h)
                    scheduled += 1
            if built_with is not None:
                batch.delete_range(keys.tenant_prefix(0), b"\xff" * 5, h_cat)
            batch.put(keys.META_CATEGORY_SEPARATOR, wanted, h)
            self._db.write(batch, self._durable)
            if scheduled or built_with is not None:
                log.info(
                    "category/type index: backfill scheduled",
                    extra={"separator": self.category_separator, "rebuilt": built_with is not None, "n": scheduled},
                )
        numbers = {c.number for c in self._tenants.values()}
        self._backfill.clear()
        for key, value in meta.items(from_key=keys.META_CATEGORY_BACKFILL):
            if not key.startswith(keys.META_CATEGORY_BACKFILL):
                break
            t = keys.TENANT.unpack_from(key, len(keys.META_CATEGORY_BACKFILL))[0]
            if t in numbers:
                self._backfill[t] = [keys.unpack_u64(value), keys.unpack_u64(value, 8)]

    def category_indexed(self, t: int, position: int) -> bool:
        """Whether an event's category/type entry has been written (by the writer or the backfill)."""
        pending = self._backfill.get(t)
        return pending is None or position < pending[1] or position > pending[0]

    def backfill_progress(self, t: int) -> tuple[int, int] | None:
        """(last position to cover, next position) of a tenant's unfinished backfill, or None when done."""
        pending = self._backfill.get(t)
        return (pending[0], pending[1]) if pending else None

    async def _run_backfill(self) -> None:
        """Backfill every pending tenant, a batch at a time, between the writer's batches."""
        while self._backfill:
            await self._readers_may_start.wait()  # not while the database is being reopened
            if self._disk.full:  # writes are refused until space is back (and the database reopened)
                await asyncio.sleep(1.0)
                continue
            if self._writer is not None:
                await self._writer.quiesce()
            t = next(iter(self._backfill))
            try:
                self._backfill_batch(t, self.settings.index_backfill_batch)
            except Exception:
                log.exception("category/type index backfill failed; retrying", extra={"tenant_no": t})
                await asyncio.sleep(1.0)
            await asyncio.sleep(self.settings.index_backfill_pause_ms / 1000)
        log.info("category/type index: backfill complete")

    def _backfill_batch(self, t: int, size: int) -> None:
        """One batch of a tenant's backfill: the entries of up to `size` events and the progress, written
        together. Runs on the event loop without awaiting, so an erasure cannot come in between the read
        and the write (it would otherwise find no entry to remove, and this would add one)."""
        pending = self._backfill[t]
        cursor = next((c for c in self._tenants.values() if c.number == t), None)
        if cursor is None:  # deleted or replaced by a restore: its range (and progress key) are purged
            del self._backfill[t]
            return
        target, start = pending
        end = min(target, start + size - 1)
        ro = ReadOptions()
        ro.set_iterate_upper_bound(keys.event_key(t, end + 1))
        it = self._cf["events"].iter(ro)
        it.seek(keys.event_key(t, start))
        batch = WriteBatch(raw_mode=True)
        h_cat, sep, added = self._h["category_type_idx"], self.category_separator, 0
        while it.valid():
            ev = codec.decode_event(it.value())
            key = keys.category_type_key(t, ev.stream_id, ev.event_type, keys.event_key_position(it.key()), sep)
            if key is not None:
                batch.put(key, b"", h_cat)
                added += len(key)
            it.next()
        del it
        tp = keys.tenant_prefix(t)
        if end >= target:
            batch.delete(keys.META_CATEGORY_BACKFILL + tp, self._h["meta"])
        else:
            batch.put(keys.META_CATEGORY_BACKFILL + tp, keys.pack_u64(target) + keys.pack_u64(end + 1), self._h["meta"])
        stored = cursor.stored_bytes + added
        batch.put(keys.META_USAGE_BYTES + tp, keys.pack_u64(stored), self._h["meta"])
        self._db.write(batch, self._durable)
        cursor.stored_bytes = stored
        if end >= target:
            del self._backfill[t]
            log.info("category/type index: tenant backfilled", extra={"tenant": cursor.tenant_id, "events": target})
        else:
            pending[1] = end + 1

    def _family_bytes(self, name: str, number: int) -> int:
        """Bytes of a tenant's keys and values in one family."""
        total = 0
        ro = ReadOptions()
        ro.set_iterate_upper_bound(keys.tenant_upper(number))
        it = self._cf[name].iter(ro)
        it.seek(keys.tenant_prefix(number))
        while it.valid():
            total += len(it.key()) + len(it.value())
            it.next()
        del it
        return total

    def _events_this_minute(self, tp: bytes, now: int) -> int:
        """Events appended in the current UTC minute (kept with every batch, so a restart keeps it)."""
        raw = self._cf["meta"].get(keys.META_MINUTE_EVENTS + tp)
        if raw is None or keys.unpack_u64(raw) != now // MINUTE_NS:
            return 0
        return keys.unpack_u64(raw, 8)

    def _events_today(self, tenant_no: int, hour: int) -> int:
        """Events appended since 00:00 UTC, from the per-hour counts."""
        ro = ReadOptions()
        ro.set_iterate_upper_bound(keys.hour_events_key(tenant_no, hour + 1))
        it = self._cf["meta"].iter(ro)
        it.seek(keys.hour_events_key(tenant_no, hour - hour % 24))
        total = 0
        while it.valid():
            total += keys.unpack_u64(it.value())
            it.next()
        del it
        return total

    def _meta_under(self, prefix: bytes) -> Iterator[tuple[str, bytes]]:
        """(the rest of the key as text, value) for every meta key under a prefix."""
        for key, value in self._cf["meta"].items(from_key=prefix):
            if not key.startswith(prefix):
                return
            yield key[len(prefix) :].decode(), value

    def _meta_u64(self, key: bytes) -> int:
        raw = self._cf["meta"].get(key)
        return keys.unpack_u64(raw) if raw is not None else 0

    def _measure_tenant(self, number: int) -> tuple[int, int]:
        """Bytes of a tenant's keys and values: (event writer families, snapshots and records)."""
        sums = {name: self._family_bytes(name, number) for name in DATA_FAMILIES}
        other = sums["snapshots"] + sums["records"]
        return sum(sums.values()) - other, other

    # -- writes --------------------------------------------------------------------------------------

    async def append(self, ops: Sequence[AppendOp]) -> list[AppendResult]:
        self._disk.check()
        writer = self._writer
        if writer is None:
            raise Unavailable("storage is not open", reason=Reason.STORAGE_CLOSED)
        return await writer.submit([(op.tenant_id, op.request) for op in ops])

    # -- reads ---------------------------------------------------------------------------------------

    def _tenant_no(self, tenant_id: str) -> int | None:
        cursor = self._tenants.get(tenant_id)
        return cursor.number if cursor else None

    async def head_position(self, tenant_id: str) -> int:
        t = self._tenant_no(tenant_id)
        return self._hub.head(t) if t is not None and self._hub else 0

    async def wait_for_commit(self, tenant_id: str, after_position: int, timeout: float) -> bool:
        if self._hub is None:
            await asyncio.sleep(timeout)
            return False
        t = self._tenant_no(tenant_id)
        if t is None or tenant_id in self._inactive:
            return False  # the reader re-checks the tenant and ends (the hub's wake came before this wait)
        return await self._hub.wait(t, after_position, timeout)

    def present(self, tenant_id: str, positions: list[int]) -> list[bool]:
        t = self._tenant_no(tenant_id)
        if t is None:
            return [False] * len(positions)
        events, now = self._cf["events"], time.time_ns()
        heads: dict[str, int] = {}
        restricted = bool(self.lifecycle.records.get(t))
        out = []
        with engine_errors("reading events"):
            for position in positions:
                data = events.get(keys.event_key(t, position))
                out.append(data is not None and (not restricted or self.lifecycle.visible(t, data, heads, now)))
        return out

    async def get_event(self, tenant_id: str, event_id: str) -> bytes:
        t = self._tenant_no(tenant_id)
        raw = codec.parse_uuid(event_id)
        with engine_errors("reading an event"):
            pos = self._cf["id_idx"].get(keys.id_key(t, raw)) if t is not None and raw is not None else None
            data = self._cf["events"].get(keys.tenant_prefix(t) + pos) if pos is not None and t is not None else None
        if data is not None and t is not None and not self.lifecycle.filter(t, [data]):
            data = None
        if data is None:
            raise NotFound(
                f"event {event_id} not found", reason=Reason.EVENT_NOT_FOUND, metadata={"event_id": event_id}
            )
        return bytes(data)

    def _stream_head(self, t: int | None, stream_id: str) -> StreamHead | None:
        if t is None:
            return None
        raw = self._cf["streams"].get(keys.stream_key(t, stream_id))
        return StreamHead.decode(raw) if raw is not None else None

    def _not_found(self, stream_id: str) -> NotFound:
        return NotFound(
            f"stream {stream_id!r} not found", reason=Reason.STREAM_NOT_FOUND, metadata={"stream_id": stream_id}
        )

    async def read_stream(
        self,
        tenant_id: str,
        stream_id: str,
        *,
        backward: bool,
        from_version: int,
        limit: int,
        to_version: int = 0,
        max_bytes: int = 0,
    ) -> StreamSlice:
        t = self._tenant_no(tenant_id)
        with engine_errors("reading a stream"):
            head = self._stream_head(t, stream_id)
            rec = self.lifecycle.get(t, stream_id) if t is not None else None
            if head is None or t is None or lifecycle.deleted(rec, head.version):
                raise self._not_found(stream_id)
            first = lifecycle.cut(rec, head.version) if rec is not None else 1
            limit = max(1, limit)
            if backward:
                start = min(from_version or head.version, head.version)
                stop = max(first, start - limit + 1)
                versions = list(range(start, stop - 1, -1))
                next_version = stop - 1 if stop > first else 0
            else:
                last = min(head.version, to_version) if to_version else head.version
                start = max(first, from_version)
                stop = min(last, start + limit - 1)
                versions = list(range(start, stop + 1))
                next_version = stop + 1 if stop < last else 0
            budget = min(max_bytes, self.settings.max_read_bytes) if max_bytes else self.settings.max_read_bytes
            events = self._events_for_versions(t, stream_id, versions, budget)
            if rec is not None:
                events = self.lifecycle.filter(t, events)
        trimmed = _trim_bytes(events, budget)
        if len(trimmed) < len(events):
            next_version = versions[len(trimmed)]
        return StreamSlice(trimmed, head.version, next_version, lifecycle.volatile(rec))

    def _events_for_versions(self, t: int, stream_id: str, versions: list[int], budget: int) -> list[bytes]:
        """The stored events of these versions, read no further than `budget` bytes (the first always)."""
        if not versions:
            return []
        prefix = keys.stream_prefix(t, stream_id)
        positions = [p for p in self._cf["stream_idx"].get([prefix + keys.pack_u64(v) for v in versions]) if p]
        tp = keys.tenant_prefix(t)
        events = _read_within(self._cf["events"], [tp + p for p in positions], budget) if positions else []
        return [e for e in events if e is not None]

    def _recorded_ns(self, t: int, position: int, head: int) -> int:
        """When the event at `position` was recorded; for a position no longer in the log (erased, swept,
        purged), when the next event still there was, or after everything when none is: the times stay
        non-decreasing in position order, so the search below stays right across the holes."""
        events = self._cf["events"]
        data = events.get(keys.event_key(t, position))
        if data is None:
            ro = ReadOptions()
            ro.set_iterate_upper_bound(keys.event_key(t, head + 1))
            it = events.iter(ro)
            it.seek(keys.event_key(t, position))
            if not it.valid():
                return 1 << 127
            data = it.value()
        return from_timestamp(codec.decode_event(data).recorded_at)

    def _first_position_at_or_after(self, t: int, ns: int, head: int) -> int:
        """Binary search over the tenant log: recorded_at is non-decreasing in position order."""
        lo, hi = 1, head + 1
        while lo < hi:
            mid = (lo + hi) // 2
            if self._recorded_ns(t, mid, head) >= ns:
                hi = mid
            else:
                lo = mid + 1
        return lo

    async def read_events(
        self,
        tenant_id: str,
        event_filter: model_pb2.EventFilter,
        *,
        after_position: int,
        limit: int,
        max_scan: int,
        max_bytes: int = 0,
    ) -> EventRun:
        t = self._tenant_no(tenant_id)
        budget = min(max_bytes, self.settings.max_read_bytes) if max_bytes else self.settings.max_read_bytes
        if t is None or self._hub is None:
            return EventRun([], after_position, True)
        head = self._hub.head(t)
        f = event_filter
        # The narrowest index: one stream's versions; the category/type entries when the stream prefix is
        # a whole category ("order-") and types are named (once the tenant's backfill is done); the
        # event-type index; the log.
        categories = self._category_prefixes(t, f) if f.event_types and not f.stream_id else None
        if f.stream_id:
            index = "stream"
        elif categories is not None:
            index = "category_type"
        else:
            index = "event_type" if f.event_types else "log"
        probes = 0
        with engine_errors("reading events"):
            lo = max(after_position + 1, f.from_position or 1)
            hi = min(head, f.to_position) if f.to_position else head
            # A time window becomes a position range by binary search over the log (recorded_at rises
            # with position): the sparse time -> position map costs no index of its own.
            if f.HasField("start_time"):
                lo = max(lo, self._first_position_at_or_after(t, from_timestamp(f.start_time), head))
                probes += head.bit_length()
            if f.HasField("end_time"):
                hi = min(hi, self._first_position_at_or_after(t, from_timestamp(f.end_time), head) - 1)
                probes += head.bit_length()
            if probes:
                index += "+time"
            if lo > hi:
                return EventRun([], max(after_position, min(hi, head)), True, index=index, examined=probes)
            limit, max_scan = max(1, limit), max(1, max_scan)
            match = _Match(f.stream_id_prefix, frozenset(f.event_types))
            # Scans run on this event loop a slice at a time: a tenant has at most SCANS_PER_TENANT of
            # them going at once (its subscriptions, exports, listings and consumer groups take turns), so
            # however many it starts, other tenants' calls wait for a few slices, not for all of them.
            async with self._scan_turns.hold(t), self.reading():
                if f.stream_id:
                    run = await self._scan_stream(t, f.stream_id, match, lo, hi, limit, max_scan, budget)
                elif categories is not None:  # the index chose the streams and the types: nothing to check
                    family = "category_type_idx"
                    run = await self._scan_index(family, t, categories, None, lo, hi, limit, max_scan, budget)
                elif f.event_types:
                    prefixes = [keys.type_prefix(t, et) for et in sorted(match.types)]
                    run = await self._scan_index("type_idx", t, prefixes, match, lo, hi, limit, max_scan, budget)
                else:
                    run = await self._scan_log(t, match, lo, hi, limit, max_scan, budget)
                # Events hidden by stream metadata or deletion are passed over like non-matching ones: the
                # run still reaches scanned_to, so subscriptions checkpoint over them.
                visible = self.lifecycle.filter(t, run.events)
                if visible is not run.events:
                    run.events, run.positions = visible, None
                run.index, run.examined = index, run.examined + probes
                return run

    async def _scan_log(
        self, t: int, match: _Match, lo: int, hi: int, limit: int, max_scan: int, budget: int
    ) -> EventRun:
        ro = ReadOptions()
        ro.set_iterate_upper_bound(keys.event_key(t, hi + 1))
        it = self._cf["events"].iter(ro)
        it.seek(keys.event_key(t, lo))
        out: list[bytes] = []
        positions: list[int] = []
        used, scanned, last = 0, 0, lo - 1
        accept, slice_ends = match.accept, time.perf_counter() + SCAN_SLICE_S
        while it.valid() and scanned < max_scan and len(out) < limit:
            data = it.value()
            if out and used + len(data) > budget:
                break
            last = keys.event_key_position(it.key())
            scanned += 1
            if accept(data):
                out.append(data)
                positions.append(last)
                used += len(data)
            it.next()
            if scanned % 64 == 0 and time.perf_counter() > slice_ends:
                await asyncio.sleep(0)  # the iterator keeps its view; other calls get the loop meanwhile
                slice_ends = time.perf_counter() + SCAN_SLICE_S
        if not it.valid():
            last = hi  # the log is gapless up to the head, so the range is done
        return EventRun(out, last, last >= hi, positions, examined=scanned)

    def _category_prefixes(self, t: int, f: model_pb2.EventFilter) -> list[bytes] | None:
        """The category/type index prefixes that answer a filter exactly, or None when it cannot: the
        stream prefix must be a whole category (its category and the separator, nothing more) and the
        tenant's backfill done."""
        prefix, sep = f.stream_id_prefix, self.category_separator
        category = keys.stream_category(prefix, sep)
        if category is None or prefix != category + sep or t in self._backfill:
            return None
        found = [keys.category_type_prefix(t, prefix, et, sep) for et in sorted(set(f.event_types))]
        return [p for p in found if p is not None]

    async def _scan_index(
        self,
        family: str,
        t: int,
        prefixes: list[bytes],
        match: _Match | None,
        lo: int,
        hi: int,
        limit: int,
        max_scan: int,
        budget: int,
    ) -> EventRun:
        """Walk index entries `prefix + position` (type_idx, category_type_idx) of several prefixes in
        position order; `match` checks the stream prefix of what the index did not choose."""

        def positions(prefix: bytes) -> Iterator[int]:
            ro = ReadOptions()
            ro.set_iterate_upper_bound(prefix + keys.pack_u64(hi + 1))
            it = self._cf[family].iter(ro)
            it.seek(prefix + keys.pack_u64(lo))
            cut = len(prefix)
            while it.valid():
                yield keys.unpack_u64(it.key(), cut)
                it.next()

        merged = heapq.merge(*(positions(p) for p in prefixes))
        tp = keys.tenant_prefix(t)
        out: list[bytes] = []
        used, scanned, last = 0, 0, lo - 1
        exhausted = True
        chunk: list[int] = []
        slice_ends = time.perf_counter() + SCAN_SLICE_S
        for pos in merged:
            if scanned >= max_scan or len(chunk) >= limit:
                exhausted = False
                break
            chunk.append(pos)
            scanned += 1
            if scanned % 256 == 0 and time.perf_counter() > slice_ends:
                await asyncio.sleep(0)
                slice_ends = time.perf_counter() + SCAN_SLICE_S
        if chunk:
            datas = _read_within(self._cf["events"], [tp + keys.pack_u64(p) for p in chunk], budget)
            if len(datas) < len(chunk):  # the byte budget is spent: the rest is for the next page
                exhausted = False
            accept = match.accept_stream if match is not None else None  # the index chose the types already
            for pos, data in zip(chunk, datas, strict=False):
                if data is None:
                    continue
                if out and used + len(data) > budget:
                    exhausted = False
                    break
                last = pos
                if accept is None or accept(data):
                    out.append(data)
                    used += len(data)
        if exhausted:
            last = hi
        return EventRun(out, last, last >= hi, examined=scanned)

    async def _scan_stream(
        self, t: int, stream_id: str, match: _Match, lo: int, hi: int, limit: int, max_scan: int, budget: int
    ) -> EventRun:
        head = self._stream_head(t, stream_id)
        if head is None or head.last_position < lo or head.first_position > hi:
            return EventRun([], hi, True)
        prefix = keys.stream_prefix(t, stream_id)
        idx = self._cf["stream_idx"]
        # First version whose position is >= lo: versions and positions rise together.
        a, b = 1, head.version + 1
        while a < b:
            mid = (a + b) // 2
            if keys.unpack_u64(idx.get(prefix + keys.pack_u64(mid)) or bytes(8)) >= lo:
                b = mid
            else:
                a = mid + 1
        versions = range(a, min(head.version, a + min(limit, max_scan) - 1) + 1)
        # Entries below a lifecycle cut are gone (read as position 0): they come first, so the search holds.
        positions = [keys.unpack_u64(p or bytes(8)) for p in idx.get([prefix + keys.pack_u64(v) for v in versions])]
        positions = [p for p in positions if p >= lo]
        in_range = [p for p in positions if p <= hi]
        tp = keys.tenant_prefix(t)
        datas = _read_within(self._cf["events"], [tp + keys.pack_u64(p) for p in in_range], budget)
        out: list[bytes] = []
        # The byte budget spent before the range was read: the rest is for the next page.
        used, last, stopped = 0, lo - 1, len(datas) < len(in_range)
        accept = match.accept_type  # the stream is chosen: only the types remain to check
        for pos, data in zip(in_range, datas, strict=False):
            if data is None:  # erased
                last = pos
                continue
            if out and used + len(data) > budget:
                stopped = True
                break
            last = pos
            if accept(data):
                out.append(data)
                used += len(data)
        if not stopped and (len(in_range) < len(positions) or not versions or versions[-1] == head.version):
            last = hi  # every event of the stream inside [lo, hi] has been examined
        return EventRun(out, last, last >= hi, examined=head.version.bit_length() + len(versions))

    async def list_streams(
        self, tenant_id: str, *, prefix: str, after: str, limit: int
    ) -> tuple[list[model_pb2.StreamInfo], bool]:
        t = self._tenant_no(tenant_id)
        if t is None:
            return [], True
        tp = keys.tenant_prefix(t)
        lower = tp + prefix.encode()
        if after and after >= prefix:
            lower = max(lower, tp + after.encode() + keys.SEP)
        upper = keys.next_key(tp + prefix.encode()) if prefix else keys.tenant_upper(t)
        out: list[model_pb2.StreamInfo] = []
        with engine_errors("listing streams"):
            ro = ReadOptions()
            ro.set_iterate_upper_bound(upper)
            it = self._cf["streams"].iter(ro)
            it.seek(lower)
            recs = self.lifecycle.records.get(t)
            now = time.time_ns()
            while it.valid() and len(out) < limit:
                stream_id, head = it.key()[4:].decode(), StreamHead.decode(it.value())
                if not recs or not lifecycle.nothing_visible(recs.get(stream_id), head.version, head.updated_ns, now):
                    out.append(_stream_info(stream_id, head))
                it.next()
            end = not it.valid()
        return out, end

    async def volatile(self, tenant_id: str, stream_id: str) -> bool:
        t = self._tenant_no(tenant_id)
        return t is not None and lifecycle.volatile(self.lifecycle.get(t, stream_id))

    async def get_stream(
        self, tenant_id: str, stream_id: str, as_of_ns: int | None
    ) -> tuple[model_pb2.StreamInfo, int]:
        t = self._tenant_no(tenant_id)
        with engine_errors("reading a stream head"):
            head = self._stream_head(t, stream_id)
            if head is None or t is None or lifecycle.deleted(self.lifecycle.get(t, stream_id), head.version):
                raise self._not_found(stream_id)
            version = head.version
            if as_of_ns is not None and as_of_ns < head.updated_ns:
                # Last tenant position recorded at or before as_of, then the stream's last version up to it.
                limit_pos = self._first_position_at_or_after(t, as_of_ns + 1, head.last_position) - 1
                prefix = keys.stream_prefix(t, stream_id)
                idx = self._cf["stream_idx"]
                a, b = 0, head.version
                while a < b:
                    mid = (a + b + 1) // 2
                    if keys.unpack_u64(idx.get(prefix + keys.pack_u64(mid)) or bytes(8)) <= limit_pos:
                        a = mid
                    else:
                        b = mid - 1
                version = a
        return _stream_info(stream_id, head), version

    # -- snapshots -----------------------------------------------------------------------------------

    async def get_snapshot(self, tenant_id: str, stream_id: str, max_version: int) -> Snapshot | None:
        t = self._tenant_no(tenant_id)
        if t is None or lifecycle.restricts(self.lifecycle.get(t, stream_id)):
            return None  # a snapshot folds events the stream's lifecycle may now hide
        prefix = keys.stream_prefix(t, stream_id)
        with engine_errors("reading a snapshot"):
            it = self._cf["snapshots"].iter()
            it.seek_for_prev(prefix + keys.pack_u64(max_version))
            if not it.valid() or not it.key().startswith(prefix) or len(it.key()) != len(prefix) + 8:
                return None
            value = it.value()
            return Snapshot(keys.unpack_u64(it.key(), len(prefix)), value[8:], keys.unpack_u64(value))

    async def put_snapshot(self, tenant_id: str, stream_id: str, snapshot: Snapshot) -> None:
        self._disk.check()
        t = self._tenant_no(tenant_id)
        if t is None:
            raise NotFound(f"tenant {tenant_id!r} does not exist", reason=Reason.TENANT_NOT_FOUND)
        with engine_errors("reading a stream head"):
            head = self._stream_head(t, stream_id)
        if head is None or snapshot.version < 1 or snapshot.version > head.version:
            raise InvalidArgument(
                "a snapshot must be at an existing version of an existing stream",
                reason=Reason.INVALID_SNAPSHOT,
                violations=[("version", f"must be between 1 and the stream version ({head.version if head else 0})")],
            )
        key = keys.snapshot_key(t, stream_id, snapshot.version)
        value = keys.pack_u64(snapshot.recorded_ns) + snapshot.state
        with engine_errors("writing a snapshot"):
            old = self._cf["snapshots"].get(key)
            batch = WriteBatch(raw_mode=True)
            batch.put(key, value, self._h["snapshots"])
            counted = self._count_other(batch, t, len(value) + (len(key) if old is None else -len(old)))
            self._db.write(batch, self._best_effort)
            self._other_bytes.update(counted)

    def shed_caches(self) -> None:
        """Memory pressure (shared.limits.memory): shrink the block cache to SHED_BLOCK_CACHE_BYTES; RocksDB
        frees what is not pinned at once. Runs at every check under pressure; logged once per episode."""
        if self._block_cache is None:
            return
        before = self._block_cache.get_usage()
        self._block_cache.set_capacity(SHED_BLOCK_CACHE_BYTES)
        if not self._cache_shed:
            self._cache_shed = True
            log.warning(
                "memory pressure: block cache shrunk",
                extra={
                    "capacity_bytes": SHED_BLOCK_CACHE_BYTES,
                    "usage_before_bytes": before,
                    "usage_bytes": self._block_cache.get_usage(),
                },
            )

    def restore_caches(self) -> None:
        """The pressure is over: the block cache may grow to storage.block_cache_bytes again."""
        if self._block_cache is None:
            return
        self._block_cache.set_capacity(self.settings.block_cache_bytes)
        if self._cache_shed:
            self._cache_shed = False
            log.info("block cache capacity restored", extra={"capacity_bytes": self.settings.block_cache_bytes})

    def apply_settings(self, settings: StorageSettings) -> None:
        self.settings = settings
        self._disk.min_free_bytes = settings.min_free_bytes
        self._durable = write_options(settings.sync_writes)
        if self._writer is not None:
            self._writer.configure(
                sync=settings.sync_writes,
                max_entries=settings.group_commit_max_entries,
                stream_cache_size=settings.stream_cache_size,
                request_id_ttl_ns=settings.request_id_ttl_s * 1_000_000_000,
            )

    # -- control-plane records ------------------------------------------------------------------------
    # Written directly (not through the event writer) with the durable write options. The event loop runs one
    # coroutine at a time and nothing awaits between the revision check and the write, so
    # compare-and-set is atomic.

    def _record_tenant(self, tenant_id: str) -> int:
        if not tenant_id:
            return 0
        t = self._tenant_no(tenant_id)
        if t is None:
            raise NotFound(f"tenant {tenant_id!r} does not exist", reason=Reason.TENANT_NOT_FOUND)
        return t

    def _revision_mismatch(self, namespace: str, key: str, expected: int, actual: int) -> Aborted:
        return Aborted(
            f"record {namespace}/{key} is at revision {actual}, not {expected}",
            reason=Reason.RECORD_REVISION_MISMATCH,
            metadata={"expected_revision": str(expected), "actual_revision": str(actual)},
        )

    async def put_record(
        self, tenant_id: str, namespace: str, key: str, value: bytes, expected_revision: int | None
    ) -> Record:
        self._disk.check()
        tenant_no = self._record_tenant(tenant_id)
        full = keys.record_prefix(tenant_no, namespace) + key.encode()
        with engine_errors("writing a record"):
            old = self._cf["records"].get(full)
            revision = keys.unpack_u64(old) if old is not None else 0
            if expected_revision is not None and expected_revision != revision:
                raise self._revision_mismatch(namespace, key, expected_revision, revision)
            batch = WriteBatch(raw_mode=True)
            stored = keys.pack_u64(revision + 1) + value
            batch.put(full, stored, self._h["records"])
            counted = self._count_other(batch, tenant_no, len(stored) + (len(full) if old is None else -len(old)))
            self._db.write(batch, self._durable)
            self._other_bytes.update(counted)
        if tenant_no == 0 and namespace == NS_QUOTA_OVERRIDES:
            self.quotas.put_override(key, value)
        watchers = self._record_watchers.pop((tenant_no, namespace), None)
        if watchers is not None:
            watchers.set()
        return Record(namespace, key, value, revision + 1)

    async def wait_for_records(self, tenant_id: str, namespace: str, timeout: float) -> bool:
        key = (self._record_tenant(tenant_id), namespace)
        written = self._record_watchers.get(key)
        if written is None:
            written = self._record_watchers[key] = asyncio.Event()
        try:
            await asyncio.wait_for(written.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def get_record(self, tenant_id: str, namespace: str, key: str) -> Record:
        full = keys.record_prefix(self._record_tenant(tenant_id), namespace) + key.encode()
        with engine_errors("reading a record"):
            raw = self._cf["records"].get(full)
        if raw is None:
            raise NotFound(
                f"no record {namespace}/{key}", reason=Reason.RECORD_NOT_FOUND, metadata={"namespace": namespace}
            )
        return Record(namespace, key, raw[8:], keys.unpack_u64(raw))

    async def list_records(self, tenant_id: str, namespace: str, after: str, limit: int) -> tuple[list[Record], bool]:
        prefix = keys.record_prefix(self._record_tenant(tenant_id), namespace)
        out: list[Record] = []
        with engine_errors("listing records"):
            ro = ReadOptions()
            ro.set_iterate_upper_bound(keys.next_key(prefix))
            it = self._cf["records"].iter(ro)
            it.seek(prefix + after.encode() + keys.SEP if after else prefix)
            while it.valid() and len(out) < limit:
                raw = it.value()
                out.append(Record(namespace, it.key()[len(prefix) :].decode(), raw[8:], keys.unpack_u64(raw)))
                it.next()
            end = not it.valid()
        return out, end

    async def delete_record(self, tenant_id: str, namespace: str, key: str, expected_revision: int | None) -> bool:
        self._disk.check()
        tenant_no = self._record_tenant(tenant_id)
        full = keys.record_prefix(tenant_no, namespace) + key.encode()
        with engine_errors("deleting a record"):
            old = self._cf["records"].get(full)
            revision = keys.unpack_u64(old) if old is not None else 0
            if expected_revision is not None and expected_revision != revision:
                raise self._revision_mismatch(namespace, key, expected_revision, revision)
            if old is None:
                return False
            batch = WriteBatch(raw_mode=True)
            batch.delete(full, self._h["records"])
            counted = self._count_other(batch, tenant_no, -(len(full) + len(old)))
            self._db.write(batch, self._durable)
            self._other_bytes.update(counted)
        if tenant_no == 0 and namespace == NS_QUOTA_OVERRIDES:
            self.quotas.delete_override(key)
        return True

    def _count_other(self, batch: WriteBatch, tenant_no: int, delta: int) -> dict[int, int]:
        """Put a tenant's new snapshot and record bytes into the batch that makes the change; returns the
        update to apply once the batch is written (no await separates the read of the counter from the
        write, so the event loop makes it atomic)."""
        if tenant_no == 0 or delta == 0:
            return {}  # suite-wide records belong to no tenant
        total = max(0, self._other_bytes.get(tenant_no, 0) + delta)
        batch.put(keys.META_OTHER_BYTES + keys.tenant_prefix(tenant_no), keys.pack_u64(total), self._h["meta"])
        return {tenant_no: total}

    # -- tenants -------------------------------------------------------------------------------------

    async def check_tenant_usable(self, tenant_id: str) -> None:
        if tenant_id not in self._tenants:
            raise self._tenant_missing(tenant_id)
        if tenant_id in self._inactive:
            raise FailedPrecondition(
                f"tenant {tenant_id!r} is inactive", reason=Reason.TENANT_INACTIVE, metadata={"tenant_id": tenant_id}
            )

    async def tenant_incarnation(self, tenant_id: str) -> int:
        return self._tenant_no(tenant_id) or 0  # tenant numbers are never reused

    def _tenant_missing(self, tenant_id: str) -> NotFound:
        return NotFound(f"tenant {tenant_id!r} does not exist", reason=Reason.TENANT_NOT_FOUND)

    async def put_tenant(self, tenant: model_pb2.TenantRecord, expected_revision: int) -> int:
        self._disk.check()
        tenant_id = tenant.tenant_id
        if not tenant_id or keys.SEP.decode() in tenant_id:
            raise InvalidArgument("a tenant needs an id", violations=[("tenant.tenant_id", "required")])
        current = self._tenant_records.get(tenant_id)
        meta, h = self._cf["meta"], self._h["meta"]
        batch = WriteBatch(raw_mode=True)
        number = 0
        if expected_revision == 0:
            if tenant_id in self._deleting:
                raise FailedPrecondition(
                    f"tenant {tenant_id!r} is still being deleted; create it again once that has finished",
                    reason=Reason.TENANT_BEING_DELETED,
                    metadata={"tenant_id": tenant_id},
                )
            if current is not None or tenant_id in self._tenants:
                raise AlreadyExists(
                    f"tenant {tenant_id!r} already exists",
                    reason=Reason.TENANT_ALREADY_EXISTS,
                    metadata={"tenant_id": tenant_id},
                )
            number = self._tenant_seq + 1  # numbers are never reused, so no stale key can ever match
            if number > keys.MAX_TENANT - 1:
                raise FailedPrecondition("no tenant numbers are left", reason=Reason.TENANT_NUMBERS_EXHAUSTED)
            batch.put(keys.META_TENANT + tenant_id.encode(), keys.tenant_prefix(number), h)
            batch.put(keys.META_TENANT_SEQ, keys.pack_u64(number), h)
            tp = keys.tenant_prefix(number)
            batch.put(keys.META_USAGE_BYTES + tp, keys.pack_u64(0), h)
            batch.put(keys.META_OTHER_BYTES + tp, keys.pack_u64(0), h)
            revision = 1
        else:
            if current is None:
                raise self._tenant_missing(tenant_id)
            if current[1] != expected_revision:
                raise self._revision_mismatch("tenants", tenant_id, expected_revision, current[1])
            revision = current[1] + 1
        stored = model_pb2.TenantRecord()
        stored.CopyFrom(tenant)
        batch.put(keys.META_TENANT_RECORD + tenant_id.encode(), keys.pack_u64(revision) + stored.SerializeToString(), h)
        with engine_errors("writing a tenant"):
            self._db.write(batch, self._durable)
        del meta
        if number:
            self._tenant_seq = number
            self._tenants[tenant_id] = TenantCursor(tenant_id, number, 0, 0, 0)
            self._other_bytes[number] = 0
            if self._hub is not None:
                self._hub.set_head(number, 0)
        self._tenant_records[tenant_id] = (stored, revision)
        self.quotas.set_plan(tenant_id, stored.quotas if stored.HasField("quotas") else None)
        if stored.status == model_pb2.TENANT_STATUS_INACTIVE:
            self._inactive.add(tenant_id)
            cursor = self._tenants.get(tenant_id)
            if cursor is not None and self._hub is not None:
                self._hub.wake(cursor.number)  # live subscriptions look again, and end
        else:
            self._inactive.discard(tenant_id)
        return revision

    async def get_tenant(self, tenant_id: str) -> tuple[model_pb2.TenantRecord, int]:
        found = self._tenant_records.get(tenant_id)
        if found is None:
            raise self._tenant_missing(tenant_id)
        copy = model_pb2.TenantRecord()
        copy.CopyFrom(found[0])
        return copy, found[1]

    async def list_tenants(self, after: str, limit: int) -> tuple[list[model_pb2.TenantRecord], bool]:
        ids = sorted(t for t in self._tenant_records if t > after)
        out = []
        for tenant_id in ids[:limit]:
            copy = model_pb2.TenantRecord()
            copy.CopyFrom(self._tenant_records[tenant_id][0])
            out.append(copy)
        return out, len(ids) <= limit

    async def delete_tenant(self, tenant_id: str) -> tuple[int, int]:
        if tenant_id == DEFAULT_TENANT:
            raise FailedPrecondition("the default tenant cannot be deleted", reason=Reason.DEFAULT_TENANT_PROTECTED)
        number = self._deleting.get(tenant_id)
        events = 0
        if number is None:
            cursor = self._tenants.get(tenant_id)
            if cursor is None:
                raise self._tenant_missing(tenant_id)
            number, events = cursor.number, cursor.last_position
            # The deletion is recorded first, so that it finishes even if this process stops halfway
            # (start() resumes it) and the id cannot be created again until the range is gone.
            with engine_errors("deleting a tenant"):
                batch = WriteBatch(raw_mode=True)
                batch.put(keys.META_TENANT_DELETING + tenant_id.encode(), keys.tenant_prefix(number), self._h["meta"])
                # The suite-wide ledger remembers it: a restore of an older backup does not revive its keys.
                self.lifecycle.ledger_entry(
                    batch, 0, lifecycle_pb2.LedgerEntry(kind="delete-tenant", tenant_id=tenant_id)
                )
                self._db.write(batch, self._durable)
            self._deleting[tenant_id] = number
            # From here on the tenant is unknown: new calls fail with TENANT_NOT_FOUND and the writer
            # refuses its appends.
            del self._tenants[tenant_id]
            self._tenant_records.pop(tenant_id, None)
            self.quotas.set_plan(tenant_id, None)
            self._inactive.discard(tenant_id)
            self.lifecycle.forget(number)
            if self._hub is not None:
                self._hub.wake(number)
        # The purge runs to its end even if the caller goes away (a retry of a failed purge resumes it).
        deleted = await asyncio.shield(self._finish_delete(tenant_id, number))
        log.info("tenant deleted", extra={"tenant": tenant_id, "events": events, "keys": deleted})
        return events, deleted

    async def _finish_delete(self, tenant_id: str, number: int) -> int:
        # Appends already in a batch being written are written first (the barrier), then the whole
        # key range goes.
        if self._writer is not None:
            await self._writer.barrier()
            self._writer.forget_tenant(number)
        loop = asyncio.get_running_loop()
        with engine_errors("deleting a tenant"):
            deleted = await loop.run_in_executor(None, self._purge, tenant_id, number)
        self._other_bytes.pop(number, None)
        self._deleting.pop(tenant_id, None)
        return deleted

    def _purge(self, tenant_id: str, number: int) -> int:
        """Delete every key of a tenant, in one synced batch of range deletions; returns how many there were."""
        lo, hi = keys.tenant_prefix(number), keys.tenant_upper(number)
        ranges = [(name, lo, hi) for name in DATA_FAMILIES]
        ranges += [("meta", prefix + lo, prefix + hi) for prefix in keys.META_TENANT_PREFIXES]
        counted = 0
        batch = WriteBatch(raw_mode=True)
        for name, begin, end in ranges:
            ro = ReadOptions()
            ro.set_iterate_upper_bound(end)
            it = self._cf[name].iter(ro)
            it.seek(begin)
            while it.valid():
                counted += 1
                it.next()
            del it
            batch.delete_range(begin, end, self._h[name])
        for key in (keys.META_TENANT + tenant_id.encode(), keys.META_TENANT_RECORD + tenant_id.encode()):
            if self._cf["meta"].get(key) is not None:
                counted += 1
            batch.delete(key, self._h["meta"])
        batch.delete(keys.META_TENANT_DELETING + tenant_id.encode(), self._h["meta"])
        self._db.write(batch, self._durable)
        for name, begin, end in ranges:  # give the space back now rather than at some later compaction
            self._cf[name].compact_range(begin, end)
        return counted

    # -- backups (services.storage.backup) -----------------------------------------------------------

    async def checkpoint(self, path: Path) -> None:
        """A consistent copy of the whole database at `path` (hard links to the SST files), taken while
        writes go on.

        RocksDB flushes the memtables when it makes a checkpoint, and rocksdict holds the GIL for the whole
        call (measured: 0.5-1.7 s after a million events, every other call of every tenant stalled). So
        the memtables are flushed first in RocksDB's background threads (flush without waiting, then
        polled from the event loop), and the checkpoint only flushes what was written meanwhile."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with engine_errors("flushing before a checkpoint"):
            for name in FAMILIES:
                self._cf[name].flush(False)
        deadline = time.monotonic() + 120.0
        while time.monotonic() < deadline:
            with engine_errors("flushing before a checkpoint"):
                pending = any(
                    self._cf[name].property_int_value("rocksdb.num-immutable-mem-table")
                    or self._cf[name].property_int_value("rocksdb.mem-table-flush-pending")
                    for name in FAMILIES
                )
            if not pending:
                break
            await asyncio.sleep(0.01)
        with engine_errors("taking a checkpoint"):
            Checkpoint(self._db).create_checkpoint(str(path))

    def consistent_view(self, names: Iterable[str], events_after: Mapping[str, int] | None = None) -> dict[str, Any]:
        """An iterator over each named family, all reading the database as of one instant, while writes go
        on (a small backup reads through these instead of a checkpoint: no flush, no files).

        `events_after` (tenant id -> position) also makes, at the same instant, a run of each of those
        tenants' event values past the position (under VIEW_RUNS, keyed by the first event key, with the
        read options that bound it, which must live as long as it does): rocksdict
        reads a run in C, where stepping an iterator costs several Python calls per event.

        A RocksDB iterator reads as of the sequence number it was made at, and every write publishes its
        whole batch at once; so when no write was published between making the first iterator and the
        last (the database's latest sequence number is unchanged), they all see the same state. Writes
        published meanwhile (from the writer's I/O thread) make it try again."""
        wanted = list(names)
        runs: list[tuple[bytes, ReadOptions]] = []
        for tenant_id, position in (events_after or {}).items():
            if (cursor := self._tenants.get(tenant_id)) is not None:
                bounded = ReadOptions()
                bounded.set_iterate_upper_bound(keys.tenant_upper(cursor.number))
                runs.append((keys.event_key(cursor.number, position + 1), bounded))
        events = self._cf["events"]
        with engine_errors("opening a consistent view"):
            for _ in range(1000):
                before = self._db.latest_sequence_number()
                view: dict[str, Any] = {name: self._cf[name].iter() for name in wanted}
                # rocksdict's values() makes its RocksDB iterator when called: it reads as of now. Each run
                # is kept with its read options: the iterator's upper bound lives in them, and once they
                # were collected a run ended early now and then (after one value of five, say).
                view[VIEW_RUNS] = {lo: (events.values(from_key=lo, read_opt=bounded), bounded) for lo, bounded in runs}
                if self._db.latest_sequence_number() == before:
                    return view
                del view
        raise Unavailable("writes never paused long enough to open a consistent view", reason=Reason.BACKUP_BUSY)

    def tenant_ids(self) -> list[str]:
        """The tenants the storage service knows, in no order."""
        return list(self._tenants)

    def tenant_heads(self) -> dict[str, tuple[int, int]]:
        """Each tenant's internal number and last position."""
        return {t: (cursor.number, cursor.last_position) for t, cursor in self._tenants.items()}

    def events_after(self, positions: dict[str, int], tenant_ids: list[str]) -> int:
        """How many positions the tenants (all when none named) have past the given ones (a backup's size)."""
        chosen = tenant_ids or list(self._tenants)
        return sum(
            max(0, cursor.last_position - positions.get(t, 0))
            for t in chosen
            if (cursor := self._tenants.get(t)) is not None
        )

    def check_restore_target(self, tenant_id: str) -> None:
        """Refuse a restore into a tenant that has data (DECISIONS: only into an absent, deleted or empty one)."""
        if tenant_id in self._deleting:
            raise FailedPrecondition(
                f"tenant {tenant_id!r} is still being deleted; restore it once that has finished",
                reason=Reason.TENANT_BEING_DELETED,
                metadata={"tenant_id": tenant_id},
            )
        cursor = self._tenants.get(tenant_id)
        if cursor is not None and (cursor.last_position or cursor.streams):
            raise FailedPrecondition(
                f"tenant {tenant_id!r} has data; restore only into an absent, deleted or empty tenant",
                reason=Reason.RESTORE_TARGET_NOT_EMPTY,
                metadata={"tenant_id": tenant_id},
            )

    def reserve_tenant_number(self) -> int:
        """A fresh internal tenant number for a restore to fill (numbers are never reused)."""
        number = self._tenant_seq + 1
        if number > keys.MAX_TENANT - 1:
            raise FailedPrecondition("no tenant numbers are left", reason=Reason.TENANT_NUMBERS_EXHAUSTED)
        with engine_errors("reserving a tenant number"):
            self._cf["meta"].put(keys.META_TENANT_SEQ, keys.pack_u64(number), self._durable)
        self._tenant_seq = number
        return number

    def _ingest(self, files: dict[str, str]) -> None:
        opts = IngestExternalFileOptions()
        opts.set_move_files(True)
        for family, path in files.items():
            self._cf[family].ingest_external_file([path], opts)

    async def install_restore(self, suite_files: dict[str, str] | None, tenants: list[dict[str, Any]]) -> None:
        """Make a restore's tenants (and suite records) live, all or none: with no append being written,
        every target is checked again (FAILED_PRECONDITION if one has data by now: nothing installed),
        then each is installed, with nothing else running in between (no await from the check on)."""
        if self._writer is not None:
            await self._writer.quiesce()
            if not self._writer.idle:  # appends kept coming: a batch for a target could be half-written
                raise Unavailable(
                    "storage is too busy writing to install a restore now; nothing was restored, try again",
                    reason=Reason.OVERLOADED,
                    retry_after=1.0,
                )
        for tenant in tenants:
            self.check_restore_target(tenant["tenant_id"])
        if suite_files:
            self._install_suite_records(suite_files)
        for tenant in tenants:
            self._install_tenant(tenant)

    def _install_suite_records(self, files: dict[str, str]) -> None:
        """Suite-wide records from a restore (into an empty data directory)."""
        with engine_errors("restoring suite records"):
            self._ingest(files)
        prefix = keys.record_prefix(0, NS_QUOTA_OVERRIDES)
        for key, value in self._cf["records"].items(from_key=prefix):
            if not key.startswith(prefix):
                break
            self.quotas.put_override(key[len(prefix) :].decode(), value[8:])

    def _install_tenant(self, summary: dict[str, Any]) -> None:
        """Make a tenant restored into SST files (services.storage.backup.load) live: ingest them under its
        new number, then switch the tenant's id to that number in one synced batch. An empty tenant of
        that id is replaced (its old range purged); the restored records and API keys come with it."""
        self.check_restore_target(summary["tenant_id"])
        tenant_id, t = summary["tenant_id"], summary["number"]
        tp = keys.tenant_prefix(t)
        h = self._h["meta"]
        record = model_pb2.TenantRecord.FromString(bytes.fromhex(summary["record_hex"]))
        record.tenant_id = tenant_id
        revision = max(1, summary["record_revision"])
        old = self._tenants.get(tenant_id)
        with engine_errors("restoring a tenant"):
            self._ingest(summary["files"])
            batch = WriteBatch(raw_mode=True)
            if old is not None:
                lo, hi = keys.tenant_prefix(old.number), keys.tenant_upper(old.number)
                for name in DATA_FAMILIES:
                    batch.delete_range(lo, hi, self._h[name])
                for prefix in keys.META_TENANT_PREFIXES:
                    batch.delete_range(prefix + lo, prefix + hi, h)
            batch.put(keys.META_TENANT + tenant_id.encode(), tp, h)
            batch.put(
                keys.META_TENANT_RECORD + tenant_id.encode(), keys.pack_u64(revision) + record.SerializeToString(), h
            )
            batch.put(keys.META_STREAM_COUNT + tp, keys.pack_u64(summary["streams"]), h)
            batch.put(keys.META_USAGE_BYTES + tp, keys.pack_u64(summary["stored_bytes"]), h)
            batch.put(keys.META_OTHER_BYTES + tp, keys.pack_u64(summary["other_bytes"]), h)
            deleted_after = self._tenant_deleted_since(tenant_id, summary["backup_created_ns"])
            for key_id, value in ({} if deleted_after else summary["api_keys"]).items():
                key = keys.record_prefix(0, "api_keys") + key_id.encode()
                if self._cf["records"].get(key) is None:
                    batch.put(key, bytes.fromhex(value), self._h["records"])
            self._db.write(batch, self._durable)
        if old is not None:
            if self._writer is not None:
                self._writer.forget_tenant(old.number)
            self.lifecycle.forget(old.number)
            self._other_bytes.pop(old.number, None)
        self._tenants[tenant_id] = TenantCursor(
            tenant_id,
            t,
            summary["last_position"],
            summary["last_recorded_ns"],
            summary["streams"],
            stored_bytes=summary["stored_bytes"],
            windows=Windows(time.time_ns()),
        )
        self._other_bytes[t] = summary["other_bytes"]
        self._tenant_records[tenant_id] = (record, revision)
        self.quotas.set_plan(tenant_id, record.quotas if record.HasField("quotas") else None)
        if record.status == model_pb2.TENANT_STATUS_INACTIVE:
            self._inactive.add(tenant_id)
        else:
            self._inactive.discard(tenant_id)
        self.lifecycle.load_tenant(t)
        if self._hub is not None:
            self._hub.set_head(t, summary["last_position"])
        log.info(
            "tenant restored",
            extra={"tenant": tenant_id, "events": summary["events"], "last_position": summary["last_position"]},
        )

    def _tenant_deleted_since(self, tenant_id: str, since_ns: int) -> bool:
        """Whether the suite's ledger records a deletion of this tenant after a time (then its API keys are
        not revived by a restore: DECISIONS, erasure and backups)."""
        prefix = keys.record_prefix(0, keys.LIFECYCLE_LEDGER_NS)
        start = prefix + f"{since_ns:020d}".encode()
        for key, value in self._cf["records"].items(from_key=start):
            if not key.startswith(prefix):
                break
            entry = lifecycle_pb2.LedgerEntry.FromString(value[8:])
            if entry.kind == "delete-tenant" and entry.tenant_id == tenant_id:
                return True
        return False

    async def tenant_usage(self, tenant_id: str) -> TenantUsage:
        cursor = self._tenants.get(tenant_id)
        if cursor is None:
            raise self._tenant_missing(tenant_id)
        now = time.time_ns()
        minute, hour, day = cursor.windows.counts(now)  # exact: the writer keeps them with every batch
        with engine_errors("reading usage"):
            queries = self._meta_u64(keys.hour_queries_key(cursor.number, now // keys.HOUR_NS))
        return TenantUsage(
            events=cursor.last_position,
            streams=cursor.streams,
            storage_bytes=cursor.stored_bytes + self._other_bytes.get(cursor.number, 0),
            events_this_hour=hour,
            events_today=day,
            queries_this_hour=queries,
            events_this_minute=minute,
        )

    async def index_stats(self, tenant_id: str) -> list[IndexFigures]:
        t = self._tenant_no(tenant_id)
        if t is None:
            raise self._tenant_missing(tenant_id)
        bound = self.settings.index_stats_max_keys
        out: list[IndexFigures] = []
        async with self.reading():
            with engine_errors("counting index entries"):
                for family, name in INDEXES.items():
                    ro = ReadOptions()
                    ro.set_iterate_upper_bound(keys.tenant_upper(t))
                    it = self._cf[family].iter(ro)
                    it.seek(keys.tenant_prefix(t))
                    entries, size = 0, 0
                    slice_ends = time.perf_counter() + SCAN_SLICE_S
                    while it.valid() and entries < bound:
                        entries += 1
                        size += len(it.key()) + len(it.value())
                        it.next()
                        if entries % 256 == 0 and time.perf_counter() > slice_ends:
                            await asyncio.sleep(0)  # a big tenant's count must not hold up other calls
                            slice_ends = time.perf_counter() + SCAN_SLICE_S
                    figures = IndexFigures(name, entries, size, partial=it.valid())
                    del it
                    if family == "category_type_idx":
                        figures.backfill_target, figures.backfill_next = self.backfill_progress(t) or (0, 0)
                    out.append(figures)
        return out

    async def add_usage(self, tenant_id: str, queries: int) -> int:
        self._disk.check()
        cursor = self._tenants.get(tenant_id)
        if cursor is None:
            return 0
        key = keys.hour_queries_key(cursor.number, time.time_ns() // keys.HOUR_NS)
        with engine_errors("counting usage"):
            total = self._meta_u64(key) + max(0, queries)  # no await in between: atomic on the event loop
            if queries > 0:
                self._cf["meta"].put(key, keys.pack_u64(total), self._best_effort)
        return total

    async def quota_warning(self, tenant_id: str, soft_ratio: float) -> str:
        cursor = self._tenants.get(tenant_id)
        if cursor is None:
            return ""
        now = time.time_ns()
        limits = self.quotas.limits(tenant_id, now)
        if limits is None:
            return ""
        stored = cursor.stored_bytes + self._other_bytes.get(cursor.number, 0)
        return self.quotas.warning(limits, cursor.windows.counts(now), stored, now, soft_ratio)

    # -- stream lifecycle ----------------------------------------------------------------------------

    async def get_stream_metadata(self, tenant_id: str, stream_id: str) -> lifecycle_pb2.GetStreamMetadataResponse:
        with engine_errors("reading stream metadata"):
            return await self.lifecycle.get_metadata(tenant_id, stream_id)

    async def set_stream_metadata(self, request: lifecycle_pb2.SetStreamMetadataRequest) -> int:
        with engine_errors("writing stream metadata"):
            return await self.lifecycle.set_metadata(request)

    async def delete_stream(self, request: lifecycle_pb2.DeleteStreamRequest) -> lifecycle_pb2.DeleteStreamResponse:
        with engine_errors("deleting a stream"):
            return await self.lifecycle.delete_stream(request)

    async def delete_events(self, request: lifecycle_pb2.DeleteEventsRequest) -> lifecycle_pb2.DeleteEventsResponse:
        with engine_errors("erasing events"):
            return await self.lifecycle.delete_events(request)

    # -- statistics ----------------------------------------------------------------------------------

    def head_of(self, tenant_id: str) -> int:
        cursor = self._tenants.get(tenant_id)
        return cursor.last_position if cursor is not None else 0

    def figures(self, top_tenants: int) -> EngineFigures | None:
        if self._db is None:
            return None

        def prop(name: str) -> int:
            return sum(int(self._cf[n].property_int_value(name) or 0) for n in FAMILIES)

        stat = os.statvfs(self.path)
        now = time.time_ns()
        tenants = []
        for cursor in heapq.nlargest(top_tenants, self._tenants.values(), key=lambda c: c.last_position):
            stored = cursor.stored_bytes + self._other_bytes.get(cursor.number, 0)
            used: dict[str, float] = {}
            limits = self.quotas.limits(cursor.tenant_id, now)
            if limits is not None:
                if limits.storage_bytes:
                    used["max_storage_bytes"] = stored / limits.storage_bytes
                counts = cursor.windows.counts(now)
                names = ("max_events_per_minute", "max_events_per_hour", "max_events_per_day")
                for name, count, limit in zip(names, counts, limits.per_window, strict=True):
                    if limit:
                        used[name] = count / limit
            tenants.append(TenantFigures(cursor.tenant_id, cursor.last_position, cursor.streams, stored, used))
        return EngineFigures(
            live_sst_bytes=prop("rocksdb.live-sst-files-size"),
            memtable_bytes=prop("rocksdb.cur-size-all-mem-tables"),
            pending_compaction_bytes=prop("rocksdb.estimate-pending-compaction-bytes"),
            # The shared cache's figures (any family's properties read the same cache).
            block_cache_bytes=int(self._cf["events"].property_int_value("rocksdb.block-cache-usage") or 0),
            block_cache_capacity_bytes=int(self._cf["events"].property_int_value("rocksdb.block-cache-capacity") or 0),
            volume_free_bytes=stat.f_bavail * stat.f_frsize,
            volume_size_bytes=stat.f_blocks * stat.f_frsize,
            tenants=tenants,
        )

    async def stats(self) -> model_pb2.StorageStats:
        writer = self._writer
        with engine_errors("measuring"):
            live = sum(int(self._cf[n].property_int_value("rocksdb.estimate-live-data-size") or 0) for n in FAMILIES)
        disk = 0
        for root, _, files in os.walk(self.path):
            for name in files:
                try:
                    disk += os.stat(os.path.join(root, name)).st_size
                except FileNotFoundError:  # compaction removed it meanwhile
                    pass
        return model_pb2.StorageStats(
            backend=self.name,
            events=sum(c.last_position for c in list(self._tenants.values())),
            streams=sum(c.streams for c in self._tenants.values()),
            tenants=len(self._tenants),
            disk_bytes=disk,
            live_data_bytes=live,
            appends_committed=writer.appends_committed if writer else 0,
            write_batches=writer.write_batches if writer else 0,
            data_dir=str(self.path),
        )


class _Match:
    """A filter's stream prefix and event types, read once per scan (not once per event)."""

    __slots__ = ("prefix", "types")

    def __init__(self, prefix: str, types: frozenset[str]) -> None:
        self.prefix = prefix
        self.types = types

    def accept(self, data: bytes) -> bool:
        if not (self.prefix or self.types):
            return True
        ev = codec.decode_event(data)
        return ev.stream_id.startswith(self.prefix) and (not self.types or ev.event_type in self.types)

    def accept_stream(self, data: bytes) -> bool:
        return not self.prefix or codec.decode_event(data).stream_id.startswith(self.prefix)

    def accept_type(self, data: bytes) -> bool:
        return not self.types or codec.decode_event(data).event_type in self.types


def _stream_info(stream_id: str, head: StreamHead) -> model_pb2.StreamInfo:
    return model_pb2.StreamInfo(
        stream_id=stream_id,
        version=head.version,
        first_position=head.first_position,
        last_position=head.last_position,
        created_at=to_timestamp(head.created_ns),
        updated_at=to_timestamp(head.updated_ns),
    )


__all__ = ["RocksBackend"]


# Filtered scans of the log (read_events) one tenant has going at once; more wait their turn.
SCANS_PER_TENANT = 2


def _read_within(family: Rdict, wanted: list[bytes], budget: int) -> list[bytes | None]:
    """The values of `wanted` in order, read a few keys at a time and no further once `budget` bytes have
    been read (the list is shorter then): a read holds about its byte budget in memory, not whatever a
    thousand events of up to a megabyte each would take. The first read is small; the next ones are
    sized by the values seen so far."""
    out: list[bytes | None] = []
    used = found = 0
    step = 2
    while len(out) < len(wanted) and used < budget:
        values: list[bytes | None] = family.get(wanted[len(out) : len(out) + step])  # type: ignore[arg-type, assignment]
        out.extend(values)
        for value in values:
            if value is not None:
                used += len(value)
                found += 1
        average = used // found if found else 64
        step = max(1, min(256, (budget - used) // max(1, average) + 1))
    return out


def _trim_bytes(events: list[bytes], budget: int) -> list[bytes]:
    """The leading events that fit in `budget` bytes (the first always goes)."""
    total = 0
    for i, e in enumerate(events):
        total += len(e) + 6
        if total > budget and i > 0:
            return events[:i]
    return events
