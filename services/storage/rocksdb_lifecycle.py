"""Stream lifecycle on the RocksDB backend: metadata and deletion records, the deletion ledger, erasure
by criteria, and the background sweep that removes what the records hide.

Lifecycle records live in the records family (namespace keys.LIFECYCLE_STREAMS_NS) and are mirrored in
memory per tenant number, so reads and the writer consult a dict, and tenants without records pay
nothing. Removal deletes the event, type-index and id-index keys (and the stream-index keys below a
stream's cut) in batches, drops the stream's snapshots, lowers the tenant's stored bytes in the same
batch, then flushes and compacts the tenant's range so that the payloads leave the disk.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import TYPE_CHECKING

from allsource.storage.v1 import lifecycle_pb2, model_pb2
from rocksdict import ReadOptions, WriteBatch

from services.storage import codec, keys, lifecycle
from services.storage.threads import on_thread
from shared.core.errors import Aborted, InvalidArgument, ResourceExhausted
from shared.core.reasons import Reason
from shared.core.timestamps import from_timestamp, to_timestamp

if TYPE_CHECKING:
    from services.storage.rocksdb_backend import RocksBackend

log = logging.getLogger(__name__)

# A change of metadata or a deletion starts a sweep this much later (else the periodic one finds it).
WAKE_DELAY_S = 1.0
# Events removed per write batch (each batch waits for the writer to be idle). A batch's write holds the
# GIL throughout (rocksdict), about five keys an event: small enough that other calls wait little.
REMOVE_BATCH = 250
SLICE_S = 0.005  # the longest a sweep or erasure scans before letting other calls run
# Stream records (metadata, deletions, tombstones) one tenant may hold: each is kept in memory and walked
# by every sweep.
MAX_STREAM_RECORDS = 100_000
_EK = model_pb2.ExpectedVersionKind
# Families whose tenant range is compacted after a removal.
_COMPACTED = ("events", "stream_idx", "type_idx", "id_idx", "category_type_idx", "snapshots")


def _event_bytes(t: int, data: bytes, ev: model_pb2.StoredEvent, index_kept: bool, category_bytes: int) -> int:
    """Bytes the writer counted for one event (see writer._prepare), minus a stream-index entry kept."""
    sprefix = len(keys.stream_prefix(t, ev.stream_id))
    total = len(data) + len(keys.type_prefix(t, ev.event_type)) + 12 + sprefix + 16 + 8 + 28
    total += category_bytes  # its category/type entry, when it has one (written or backfilled)
    return total - (sprefix + 16 if index_kept else 0)


class RocksLifecycle:
    """Lifecycle records, erasure and the sweep of one RocksBackend."""

    def __init__(self, backend: RocksBackend) -> None:
        self.b = backend
        self.records: dict[int, dict[str, lifecycle.Rec]] = {}
        self._locks: dict[int, asyncio.Lock] = {}  # per tenant: one erasure or sweep at a time
        self._ledger_seq = itertools.count()
        self._sweeper: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self.removed_events = 0

    # -- state ---------------------------------------------------------------------------------------

    def load(self) -> None:
        """Read every tenant's lifecycle records (at open)."""
        self.records.clear()
        for cursor in self.b._tenants.values():
            self.load_tenant(cursor.number)

    def load_tenant(self, t: int) -> None:
        """Read one tenant's lifecycle records (after a restore)."""
        self.records.pop(t, None)
        prefix = keys.record_prefix(t, keys.LIFECYCLE_STREAMS_NS)
        for key, value in self.b._cf["records"].items(from_key=prefix):
            if not key.startswith(prefix):
                break
            self.records.setdefault(t, {})[key[len(prefix) :].decode()] = lifecycle.Rec.FromString(value[8:])
        if self.records.get(t):
            self._wake.set()  # the sweep removes what the restored records hide

    def get(self, t: int, stream_id: str) -> lifecycle.Rec | None:
        """A stream's record (what the writer asks before every append)."""
        found = self.records.get(t)
        return found.get(stream_id) if found else None

    def start(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.ensure_future(self._sweep_loop())

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._sweeper is not None:
            # Python 3.11's wait_for can swallow a cancellation that arrives as the wake-up does (the
            # loop then sleeps a whole sweep interval): cancel until the task is really done.
            while not self._sweeper.done():
                self._sweeper.cancel()
                await asyncio.wait([self._sweeper], timeout=0.1)
            if not self._sweeper.cancelled():
                self._sweeper.exception()  # retrieved: nothing to report at shutdown
            self._sweeper = None
        self._stopping = False

    def forget(self, t: int) -> None:
        self.records.pop(t, None)
        self._locks.pop(t, None)

    def _lock(self, t: int) -> asyncio.Lock:
        lock = self._locks.get(t)
        if lock is None:
            lock = self._locks[t] = asyncio.Lock()
        return lock

    def _room_for_record(self, t: int, stream_id: str) -> None:
        """Refuse a new stream record past MAX_STREAM_RECORDS for the tenant (QUOTA_EXCEEDED)."""
        recs = self.records.get(t, {})
        if stream_id not in recs and len(recs) >= MAX_STREAM_RECORDS:
            raise ResourceExhausted(
                f"a tenant keeps metadata or deletion records for at most {MAX_STREAM_RECORDS} streams",
                reason=Reason.QUOTA_EXCEEDED,
                metadata={"limit": "max_stream_records", "value": str(MAX_STREAM_RECORDS)},
            )

    # -- reads ---------------------------------------------------------------------------------------

    def visible(self, t: int, data: bytes, heads: dict[str, int], now: int) -> bool:
        """Whether a stored event is visible (heads caches stream versions for one call)."""
        return self._visible_event(t, codec.decode_event(data), heads, now)

    def filter(self, t: int, events: list[bytes]) -> list[bytes]:
        """The visible ones of a tenant's events (all of them when it has no lifecycle records)."""
        if not self.records.get(t) or not events:
            return events
        heads: dict[str, int] = {}
        now = time.time_ns()
        return [e for e in events if self.visible(t, e, heads, now)]

    # -- RPCs ----------------------------------------------------------------------------------------

    def _tenant(self, tenant_id: str) -> int:
        t = self.b._tenant_no(tenant_id)
        if t is None:
            raise self.b._tenant_missing(tenant_id)
        return t

    async def get_metadata(self, tenant_id: str, stream_id: str) -> lifecycle_pb2.GetStreamMetadataResponse:
        t = self._tenant(tenant_id)
        rec = self.get(t, stream_id)
        head = self.b._stream_head(t, stream_id)
        version = head.version if head else 0
        out = lifecycle_pb2.GetStreamMetadataResponse(stream_id=stream_id, stream_version=version)
        if rec is not None:
            out.metadata.CopyFrom(rec.metadata)
            out.metadata_version = rec.metadata_version
            out.tombstoned = rec.tombstoned
            out.deleted = lifecycle.deleted(rec, version) and not rec.tombstoned
        return out

    async def set_metadata(self, request: lifecycle_pb2.SetStreamMetadataRequest) -> int:
        t = self._tenant(request.tenant_id)
        self.b._disk.check()
        await self._quiesce()
        rec = lifecycle.Rec()
        old = self.get(t, request.stream_id)
        if old is not None:
            rec.CopyFrom(old)
        if rec.tombstoned:
            raise lifecycle.tombstone_refusal(request.stream_id)
        self._room_for_record(t, request.stream_id)
        if request.HasField("expected_metadata_version") and request.expected_metadata_version != rec.metadata_version:
            raise Aborted(
                f"the metadata of stream {request.stream_id!r} is at version {rec.metadata_version}",
                reason=Reason.WRONG_METADATA_VERSION,
                metadata={"stream_id": request.stream_id, "actual_version": str(rec.metadata_version)},
            )
        rec.metadata.CopyFrom(request.metadata)
        rec.metadata_version += 1
        entry = lifecycle_pb2.LedgerEntry(kind="metadata", stream_id=request.stream_id, metadata=request.metadata)
        self._write_record(t, request.stream_id, rec, entry)
        # A snapshot folded under the old metadata holds what it hid or lacks what it now hides.
        self._drop_snapshots(t, request.stream_id)
        self._wake.set()
        return rec.metadata_version

    async def delete_stream(self, request: lifecycle_pb2.DeleteStreamRequest) -> lifecycle_pb2.DeleteStreamResponse:
        t = self._tenant(request.tenant_id)
        stream_id = request.stream_id
        self.b._disk.check()
        await self._quiesce()  # no append of this stream is half-written while its head is read
        head = self.b._stream_head(t, stream_id)
        rec = lifecycle.Rec()
        old = self.get(t, stream_id)
        if old is not None:
            rec.CopyFrom(old)
        if rec.tombstoned:
            raise lifecycle.tombstone_refusal(stream_id)
        self._room_for_record(t, stream_id)
        version = head.version if head else 0
        gone = head is None or lifecycle.deleted(rec, version)
        if gone and not request.hard:
            raise self.b._not_found(stream_id)
        kind, expected = request.expected_version.kind, request.expected_version.version
        if (
            (kind == _EK.EXPECTED_VERSION_KIND_NO_STREAM and not gone)
            or (kind == _EK.EXPECTED_VERSION_KIND_STREAM_EXISTS and gone)
            or (kind == _EK.EXPECTED_VERSION_KIND_EXACT and expected != version)
        ):
            raise Aborted(
                f"stream {stream_id!r} is at version {version}, which does not satisfy the expected version",
                reason=Reason.WRONG_EXPECTED_VERSION,
                metadata={"stream_id": stream_id, "actual_version": str(version)},
            )
        hidden = 0 if gone else version - lifecycle.cut(rec, version) + 1
        rec.deleted_through = version
        rec.tombstoned = request.hard
        entry = lifecycle_pb2.LedgerEntry(
            kind="tombstone" if request.hard else "delete-stream",
            stream_id=stream_id,
            through_version=version,
            events=max(0, hidden),
        )
        self._write_record(t, stream_id, rec, entry)
        self._wake.set()
        log.info("stream deleted", extra={"stream_id": stream_id, "hard": request.hard, "version": version})
        return lifecycle_pb2.DeleteStreamResponse(stream_version=version, events_deleted=max(0, hidden))

    async def delete_events(self, request: lifecycle_pb2.DeleteEventsRequest) -> lifecycle_pb2.DeleteEventsResponse:
        t = self._tenant(request.tenant_id)
        if not (request.stream_id_prefix or request.event_types or request.HasField("start_time")) and not (
            request.HasField("end_time")
        ):
            raise InvalidArgument("DeleteEvents needs at least one criterion", reason=Reason.INVALID_DELETE_CRITERIA)
        if request.dry_run:
            return await self._delete_events(t, request)
        self.b._disk.check()
        # One erasure or sweep of a tenant at a time: each counts the bytes it removes from what it read,
        # and two at once counted the same events twice (the tenant's storage_bytes fell below its data).
        async with self._lock(t):
            return await self._delete_events(t, request)

    async def _delete_events(
        self, t: int, request: lifecycle_pb2.DeleteEventsRequest
    ) -> lifecycle_pb2.DeleteEventsResponse:
        types = frozenset(request.event_types)
        start = from_timestamp(request.start_time) if request.HasField("start_time") else None
        end = from_timestamp(request.end_time) if request.HasField("end_time") else None
        head = self.b._hub.head(t) if self.b._hub else 0
        lo = self.b._first_position_at_or_after(t, start, head) if start is not None and head else 1
        hi = self.b._first_position_at_or_after(t, end, head) - 1 if end is not None and head else head
        count, freed, streams = 0, 0, set()
        touched: set[str] = set()  # every stream an erased event was in (hidden ones too): their snapshots go
        # Erased a slice at a time as the scan finds them: memory and each write batch stay bounded
        # (REMOVE_BATCH events), and the loop yields between slices as it does every SLICE_S of scanning.
        # No iterator is kept across an await (the database may be reopened meanwhile, after a full disk):
        # each stretch of the scan seeks again from where the last one stopped.
        doomed: list[tuple[int, bytes, model_pb2.StoredEvent]] = []
        heads: dict[str, int] = {}
        now = time.time_ns()
        ro = ReadOptions()
        ro.set_iterate_upper_bound(keys.event_key(t, hi + 1))
        resume = lo
        ledger: tuple[bytes, lifecycle_pb2.LedgerEntry] | None = None
        while True:
            it = self.b._cf["events"].iter(ro)
            it.seek(keys.event_key(t, resume))
            slice_ends = time.perf_counter() + SLICE_S
            paused = False
            while it.valid():
                data = bytes(it.value())
                ev = codec.decode_event(data)
                pos = keys.event_key_position(it.key())
                resume = pos + 1
                if ev.stream_id.startswith(request.stream_id_prefix) and (not types or ev.event_type in types):
                    # Events a stream's lifecycle already hides are erased too (the sweep would remove them
                    # later) but not counted: the counts are of what the tenant could still read.
                    if self._visible_event(t, ev, heads, now):
                        count += 1
                        streams.add(ev.stream_id)
                    touched.add(ev.stream_id)
                    freed += _event_bytes(t, data, ev, True, self._category_bytes(t, pos, ev)[1])
                    if not request.dry_run:
                        doomed.append((pos, data, ev))
                it.next()
                if len(doomed) >= REMOVE_BATCH or time.perf_counter() > slice_ends:
                    paused = True
                    break
            del it
            if not paused:
                break
            if len(doomed) >= REMOVE_BATCH:
                ledger = ledger or self._begin_erasure(t, request)
                await self._erase(t, doomed)
                doomed = []
            else:
                await asyncio.sleep(0)
        if not request.dry_run and freed:
            ledger = ledger or self._begin_erasure(t, request)
            await self._erase(t, doomed)
            slice_ends = time.perf_counter() + SLICE_S
            for stream_id in touched:  # no snapshot keeps what was erased
                self._drop_snapshots(t, stream_id)
                if time.perf_counter() > slice_ends:
                    await asyncio.sleep(0)
                    slice_ends = time.perf_counter() + SLICE_S
            key, entry = ledger
            entry.events = count  # the entry written before the first slice, completed with the count
            batch = WriteBatch(raw_mode=True)
            self._ledger(batch, t, entry, key)
            self.b._db.write(batch, self.b._durable)
            await self._compact(t)
            log.info("events erased", extra={"events": count, "streams": len(streams)})
        return lifecycle_pb2.DeleteEventsResponse(
            events_deleted=count, streams_affected=len(streams), bytes_freed=freed, dry_run=request.dry_run
        )

    def _begin_erasure(
        self, t: int, request: lifecycle_pb2.DeleteEventsRequest
    ) -> tuple[bytes, lifecycle_pb2.LedgerEntry]:
        """Write the erasure's ledger entry before its first slice is removed (durably): an erasure cut
        short (a kill, a failed write) is in the ledger all the same, so a restore of an earlier backup
        applies it to what it brings back. Returns the key and entry, completed once the erasure ends."""
        criteria = lifecycle_pb2.DeleteEventsRequest()
        criteria.CopyFrom(request)
        entry = lifecycle_pb2.LedgerEntry(kind="erase", criteria=criteria)
        key = self._ledger_key(t)
        batch = WriteBatch(raw_mode=True)
        self._ledger(batch, t, entry, key)
        self.b._db.write(batch, self.b._durable)
        return key, entry

    def _visible_event(self, t: int, ev: model_pb2.StoredEvent, heads: dict[str, int], now: int) -> bool:
        rec = self.get(t, ev.stream_id)
        if rec is None:
            return True
        head = heads.get(ev.stream_id)
        if head is None:
            found = self.b._stream_head(t, ev.stream_id)
            head = heads[ev.stream_id] = found.version if found else 0
        return lifecycle.visible(rec, ev, head, now)

    async def _erase(self, t: int, doomed: list[tuple[int, bytes, model_pb2.StoredEvent]]) -> None:
        """Remove one slice of erased events, between two of the writer's batches, then let others run."""
        if not doomed:
            return
        await self._quiesce()
        self._remove(t, doomed, drop_index=False)
        await asyncio.sleep(0)

    # -- writing -------------------------------------------------------------------------------------

    async def _quiesce(self) -> None:
        if self.b._writer is not None:
            await self.b._writer.quiesce()

    def _ledger_key(self, t: int) -> bytes:
        """A new ledger entry's key (ledger entries sort by time)."""
        stamp = f"{time.time_ns():020d}-{next(self._ledger_seq) % 1000000:06d}"
        return keys.record_prefix(t, keys.LIFECYCLE_LEDGER_NS) + stamp.encode()

    def _ledger(self, batch: WriteBatch, t: int, entry: lifecycle_pb2.LedgerEntry, key: bytes = b"") -> int:
        """Put a ledger entry in a batch (under `key` to rewrite one); returns its bytes."""
        if not entry.HasField("at"):
            entry.at.CopyFrom(to_timestamp(time.time_ns()))
        key = key or self._ledger_key(t)
        value = keys.pack_u64(1) + entry.SerializeToString()
        batch.put(key, value, self.b._h["records"])
        return len(key) + len(value)

    def ledger_entry(self, batch: WriteBatch, t: int, entry: lifecycle_pb2.LedgerEntry) -> int:
        """Add a ledger entry to a batch (tenant number 0: the suite-wide ledger); returns its bytes."""
        return self._ledger(batch, t, entry)

    def _write_record(self, t: int, stream_id: str, rec: lifecycle.Rec, entry: lifecycle_pb2.LedgerEntry) -> None:
        """Store a stream's record and its ledger entry in one synced batch (no await: atomic on the loop)."""
        key = keys.record_prefix(t, keys.LIFECYCLE_STREAMS_NS) + stream_id.encode()
        old = self.b._cf["records"].get(key)
        value = keys.pack_u64(keys.unpack_u64(old) + 1 if old is not None else 1) + rec.SerializeToString()
        batch = WriteBatch(raw_mode=True)
        batch.put(key, value, self.b._h["records"])
        delta = len(key) + len(value) - (len(key) + len(old) if old is not None else 0)
        delta += self._ledger(batch, t, entry)
        counted = self.b._count_other(batch, t, delta)
        self.b._db.write(batch, self.b._durable)
        self.b._other_bytes.update(counted)
        self.records.setdefault(t, {})[stream_id] = rec

    def _remove(self, t: int, doomed: list[tuple[int, bytes, model_pb2.StoredEvent]], *, drop_index: bool) -> int:
        """Delete events' keys and lower the tenant's stored bytes, in one batch; returns the bytes freed."""
        cursor = next((c for c in self.b._tenants.values() if c.number == t), None)
        if cursor is None or not doomed:
            return 0
        h = self.b._h
        batch = WriteBatch(raw_mode=True)
        freed = 0
        for pos, data, ev in doomed:
            batch.delete(keys.event_key(t, pos), h["events"])
            batch.delete(keys.type_prefix(t, ev.event_type) + keys.pack_u64(pos), h["type_idx"])
            category_key, category_bytes = self._category_bytes(t, pos, ev)
            if category_key is not None:
                batch.delete(category_key, h["category_type_idx"])
            raw_id = codec.parse_uuid(ev.event_id)
            if raw_id is not None:
                batch.delete(keys.id_key(t, raw_id), h["id_idx"])
            if drop_index:
                batch.delete(keys.stream_prefix(t, ev.stream_id) + keys.pack_u64(ev.version), h["stream_idx"])
            freed += _event_bytes(t, data, ev, not drop_index, category_bytes)
        stored = max(0, cursor.stored_bytes - freed)
        batch.put(keys.META_USAGE_BYTES + keys.tenant_prefix(t), keys.pack_u64(stored), h["meta"])
        # The head as it stands: once the last events are gone the log's tail no longer says how far
        # positions went, and a restart must not give theirs out again.
        batch.put(keys.META_LAST_POSITION + keys.tenant_prefix(t), keys.pack_u64(cursor.last_position), h["meta"])
        self.b._db.write(batch, self.b._durable)
        cursor.stored_bytes = stored  # only once written: a failed write (disk full) lowers nothing
        self.removed_events += len(doomed)
        return freed

    def _category_bytes(self, t: int, pos: int, ev: model_pb2.StoredEvent) -> tuple[bytes | None, int]:
        """An event's category/type key (None: its stream has no category) and the bytes it counts for
        (0 while the backfill has not reached it yet)."""
        key = keys.category_type_key(t, ev.stream_id, ev.event_type, pos, self.b.category_separator)
        return key, len(key) if key is not None and self.b.category_indexed(t, pos) else 0

    def _drop_snapshots(self, t: int, stream_id: str) -> None:
        prefix = keys.stream_prefix(t, stream_id)
        ro = ReadOptions()
        ro.set_iterate_upper_bound(keys.next_key(prefix))
        it = self.b._cf["snapshots"].iter(ro)
        it.seek(prefix)
        size = 0
        while it.valid():
            size += len(it.key()) + len(it.value())
            it.next()
        del it
        if size:
            batch = WriteBatch(raw_mode=True)
            batch.delete_range(prefix, keys.next_key(prefix), self.b._h["snapshots"])
            counted = self.b._count_other(batch, t, -size)
            self.b._db.write(batch, self.b._durable)
            self.b._other_bytes.update(counted)

    async def _compact(self, t: int) -> None:
        """Flush every family (so no WAL file still holds removed payloads), then compact the tenant's range."""
        db = self.b._db
        lo, hi = keys.tenant_prefix(t), keys.tenant_upper(t)

        def work() -> None:
            for name in self.b._cf:
                self.b._cf[name].flush(True)
            db.flush_wal(True)
            for name in _COMPACTED:
                self.b._cf[name].compact_range(lo, hi)

        await on_thread(work)  # a stop waits for it: it would otherwise compact a closing database

    # -- the sweep -----------------------------------------------------------------------------------

    async def _sweep_loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.b.settings.lifecycle_sweep_interval_s)
            except TimeoutError:
                pass
            # Python 3.11's wait_for loses a cancellation that arrives as the wake fires (the sweep would
            # then go on until the next interval, and close() with it): the flag ends the loop anyway.
            if self._stopping:
                return
            self._wake.clear()
            await asyncio.sleep(WAKE_DELAY_S)
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the lifecycle sweep failed; it runs again later")

    async def sweep(self) -> int:
        """Remove every event the lifecycle records hide; returns how many were removed."""
        removed = 0
        for t, recs in list(self.records.items()):
            touched = False
            for stream_id, rec in list(recs.items()):
                n = await self._sweep_stream(t, stream_id, rec)
                if n:
                    removed += n
                    touched = True
                    self._drop_snapshots(t, stream_id)
            if touched:
                await self._compact(t)
        if removed:
            log.info("lifecycle sweep removed events", extra={"events": removed})
        return removed

    async def _sweep_stream(self, t: int, stream_id: str, rec: lifecycle.Rec) -> int:
        """Remove what the stream's record hides, a slice at a time (at most REMOVE_BATCH events, or
        SLICE_S of scanning), letting other calls run between slices: memory stays bounded and no tenant's
        sweep holds the loop however long its stream. The tenant's erasures wait meanwhile (one at a
        time per tenant, so that two never count the same removed bytes)."""
        head = self.b._stream_head(t, stream_id)
        if head is None:
            return 0
        first = lifecycle.cut(rec, head.version)
        age = lifecycle.max_age_ns(rec)
        oldest = time.time_ns() - age
        prefix = keys.stream_prefix(t, stream_id)
        removed = 0
        start = prefix
        async with self._lock(t):
            while True:
                doomed, index_only, start, done = self._sweep_slice(t, prefix, start, first, age, oldest)
                if doomed or index_only:
                    await self._quiesce()
                    if doomed:
                        self._remove(t, doomed, drop_index=True)
                        removed += len(doomed)
                    if index_only:
                        self._remove_index_entries(t, prefix, index_only)
                if done:
                    return removed
                await asyncio.sleep(0)

    def _sweep_slice(
        self, t: int, prefix: bytes, start: bytes, first: int, age: int, oldest: int
    ) -> tuple[list[tuple[int, bytes, model_pb2.StoredEvent]], list[bytes], bytes, bool]:
        """One slice of a stream's sweep from `start`: the events to remove, the index entries of events
        erased earlier, where the next slice starts, and whether the sweep of the stream is done."""
        ro = ReadOptions()
        ro.set_iterate_upper_bound(keys.next_key(prefix))
        it = self.b._cf["stream_idx"].iter(ro)
        it.seek(start)
        doomed: list[tuple[int, bytes, model_pb2.StoredEvent]] = []
        index_only: list[bytes] = []
        ends = time.perf_counter() + SLICE_S
        try:
            while it.valid():
                if len(doomed) >= REMOVE_BATCH or time.perf_counter() > ends:
                    return doomed, index_only, bytes(it.key()), False
                version = keys.unpack_u64(it.key(), len(prefix))
                pos = keys.unpack_u64(it.value())
                data = self.b._cf["events"].get(keys.event_key(t, pos))
                if data is None:  # erased by criteria earlier: its index entry goes once below the cut
                    if version < first:
                        index_only.append(bytes(it.key()))
                    it.next()
                    continue
                ev = codec.decode_event(data)
                if version >= first and not (age and from_timestamp(ev.recorded_at) < oldest):
                    return doomed, index_only, b"", True
                doomed.append((pos, bytes(data), ev))
                it.next()
            return doomed, index_only, b"", True
        finally:
            del it

    def _remove_index_entries(self, t: int, prefix: bytes, index_only: list[bytes]) -> None:
        """Delete stream index entries whose events were erased earlier, lowering the stored bytes."""
        batch = WriteBatch(raw_mode=True)
        for key in index_only:
            batch.delete(key, self.b._h["stream_idx"])
        cursor = next((c for c in self.b._tenants.values() if c.number == t), None)
        stored = 0
        if cursor is not None:
            stored = max(0, cursor.stored_bytes - len(index_only) * (len(prefix) + 16))
            batch.put(keys.META_USAGE_BYTES + keys.tenant_prefix(t), keys.pack_u64(stored), self.b._h["meta"])
        self.b._db.write(batch, self.b._durable)
        if cursor is not None:
            cursor.stored_bytes = stored
