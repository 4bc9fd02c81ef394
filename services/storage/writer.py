"""The group-commit writer: the only writer of events.

Appends queue up here. One writer task on the event loop takes everything queued (up to a batch size),
checks each append against the current stream heads and the id indexes (expected version, idempotency),
assigns versions, positions and recording time, and puts every event with all of its index entries into
one WriteBatch, written with one WAL sync: large batches on a dedicated I/O thread (rocksdict releases
the GIL while it writes, so the event loop keeps serving reads and queueing the next group meanwhile),
small ones inline, where the handoff to a thread would cost more CPU than the write. Only
then are the in-memory heads advanced, the callers released and the live subscribers notified. A failed
write releases every caller with an error and leaves the in-memory state untouched, so nothing that was
not durably written is ever acknowledged.

Why a task and not a writer thread: measured here, a writer thread doing the checks and the batch
building contended for the GIL with the event loop and cost ~95 us of CPU per small append, about twice
the work itself; now the only cross-thread step is one handoff per large batch.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from allsource.storage.v1 import model_pb2
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from rocksdict import WriteBatch, WriteOptions

from services.storage import append_rules as rules
from services.storage import codec, keys, lifecycle
from services.storage.backend import AppendResult
from services.storage.codec import StreamHead
from services.storage.disk import out_of_space
from services.storage.quotas import MINUTE_NS, StorageQuotas, Windows
from shared.core.errors import AllSourceError, NotFound, ResourceExhausted, Unavailable
from shared.core.reasons import Reason
from shared.core.timestamps import to_timestamp
from shared.limits.plans import exceeded
from shared.telemetry import tracing
from shared.telemetry.metrics import GROUP_COMMIT_APPENDS, GROUP_COMMIT_EVENTS, WAL_WRITE, WRITTEN_BYTES

log = logging.getLogger(__name__)

# Batches with fewer key writes than this are written on the event loop itself (see the module doc).
INLINE_WRITE_ENTRIES = 1000
# Keys an event puts: itself, its stream, type, id and (when its stream has a category) category/type entries.
KEYS_PER_EVENT = 5


# What one event can add beyond three times its own serialized size (its data, and its type again in the
# type index and in the category/type index): a generated id, the JSON content type, recorded_at, version
# and position in the value; the event, stream-index (and its value), type-index, id-index and
# category/type index keys (the latter's category at most the stream id). See `_size_bound`.
_PER_EVENT_EXTRA = (
    len(codec.EVENT_ID_FIELD_PREFIX) + 36 + len(codec.JSON_CONTENT_TYPE_FIELD) + 24 + 18 + 12 + 21 + 13 + 28 + 14
)


def _size_bound(req: model_pb2.AppendInput, sid_len: int, tenant_field_len: int, count: int) -> int:
    """At least the bytes an append adds to its tenant's figure (its exact size is known only once
    prepared): when this fits under the storage quota the append is prepared and written directly."""
    per_event = _PER_EVENT_EXTRA + tenant_field_len + 3 * sid_len + 8
    bound = 3 * req.ByteSize() + count * per_event + 8 + sid_len + codec.HEAD_BYTES
    if req.request_id:
        bound += 2 * len(req.request_id.encode()) + 160 + count * 40
    return bound


def write_options(sync: bool) -> WriteOptions:
    """RocksDB write options; `sync` fsyncs the WAL before the write returns (storage.sync_writes)."""
    options = WriteOptions()
    options.sync = sync
    return options


@dataclass(slots=True)
class TenantCursor:
    """The writer's view of one tenant's log."""

    tenant_id: str
    number: int
    last_position: int
    last_recorded_ns: int
    streams: int
    # Bytes of keys and values this writer has stored for the tenant (events, indexes, stream heads,
    # request results), and the events appended in the current UTC minute, hour and day: kept exact,
    # written with every batch (services.storage.keys.META_USAGE_BYTES / META_HOUR_EVENTS).
    stored_bytes: int = 0
    windows: Windows = field(default_factory=lambda: Windows(time.time_ns()))
    # The stored events' tenant_id field, encoded once.
    field: bytes = b""

    def __post_init__(self) -> None:
        self.field = codec.tenant_field(self.tenant_id)


@dataclass(slots=True)
class _Item:
    tenant_id: str
    request: model_pb2.AppendInput


@dataclass(slots=True)
class _Group:
    """Appends submitted together (one storage call); committed in the same batch, released together."""

    items: list[_Item]
    future: asyncio.Future[list[AppendResult]]
    entries: int
    span: Any = None  # the span context of the storage call it came in (for the group commit's links)


@dataclass
class _Overlay:
    """State changed by the batch being built; applied only after the batch is durable."""

    heads: dict[tuple[int, str], StreamHead] = field(default_factory=dict)
    cursors: dict[int, tuple[int, int, int]] = field(default_factory=dict)  # last pos, recorded ns, streams
    ids: dict[tuple[int, bytes], tuple[int, str, int, model_pb2.AppendInput, int]] = field(default_factory=dict)
    requests: dict[tuple[int, str], tuple[bytes, model_pb2.AppendResult]] = field(default_factory=dict)
    # tenant number -> (bytes stored, events appended) by this batch
    usage: dict[int, list[int]] = field(default_factory=dict)
    # expired request results this batch overwrites: their size, not to be counted twice
    replaced: dict[tuple[int, str], int] = field(default_factory=dict)
    # recorded ns -> (encoded recorded_at field, Timestamp), computed once per batch
    times: dict[int, tuple[bytes, Any]] = field(default_factory=dict)


class GroupCommitWriter:
    """Merges concurrent appends into durable write batches, one batch at a time."""

    def __init__(
        self,
        db: Any,
        handles: dict[str, Any],
        families: dict[str, Any],
        tenants: dict[str, TenantCursor],
        *,
        sync: bool,
        max_entries: int,
        stream_cache_size: int,
        request_id_ttl_ns: int,
        on_commit: Callable[[dict[int, int]], None],
        on_failure: Callable[[BaseException], None] = lambda exc: None,
        quotas: StorageQuotas | None = None,
        other_bytes: Callable[[int], int] = lambda tenant_no: 0,
        stream_lifecycle: Callable[[int, str], lifecycle.Rec | None] = lambda tenant_no, stream_id: None,
        category_separator: str = "-",
    ) -> None:
        self._separator = category_separator  # of the category/type index (fixed while open)
        self._lifecycle = stream_lifecycle  # a stream's deletion state (services.storage.lifecycle)
        self._on_failure = on_failure
        self.quotas = quotas or StorageQuotas()
        self._other_bytes = other_bytes  # a tenant's bytes outside the event log (snapshots, records)
        self._db = db
        self._h = handles
        self._cf = families
        self.tenants = tenants
        self._write_opt = write_options(sync)
        self._max_entries = max_entries
        self._cache_size = stream_cache_size
        self._request_ttl_ns = request_id_ttl_ns
        self._on_commit = on_commit
        self._heads: dict[tuple[int, str], StreamHead] = {}
        self._queue: deque[_Group] = deque()
        self._stopping = False
        self._ids = codec.UuidV7()
        self._io = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="wal-write")
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.appends_committed = 0
        self.write_batches = 0

    def configure(self, *, sync: bool, max_entries: int, stream_cache_size: int, request_id_ttl_ns: int) -> None:
        """Take reloaded settings; the next batch uses them."""
        self._write_opt = write_options(sync)
        self._max_entries = max_entries
        self._cache_size = stream_cache_size
        self._request_ttl_ns = request_id_ttl_ns

    # -- caller side (the event loop) ---------------------------------------------------------------

    def start(self) -> None:
        """Bind to the running event loop."""
        self._loop = asyncio.get_running_loop()

    def submit(self, appends: list[tuple[str, model_pb2.AppendInput]]) -> asyncio.Future[list[AppendResult]]:
        """Queue appends (tenant, request); the future resolves to their results once durable or rejected."""
        assert self._loop is not None, "start() first"
        future: asyncio.Future[list[AppendResult]] = self._loop.create_future()
        items = [_Item(tenant_id, request) for tenant_id, request in appends]
        if self._stopping:
            future.set_result([Unavailable("storage is shutting down", reason=Reason.SHUTTING_DOWN)] * len(items))
            return future
        entries = sum(KEYS_PER_EVENT * len(i.request.events) + 2 for i in items)
        self._queue.append(_Group(items, future, entries, trace.get_current_span().get_span_context()))
        if self._task is None:
            self._task = self._loop.create_task(self._run())
        return future

    async def stop(self) -> None:
        """Write everything queued so far, then release the I/O thread."""
        self._stopping = True
        if self._task is not None:
            await self._task
        self._io.shutdown(wait=True)

    # -- the writer task -----------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while self._queue:
                groups = [self._queue.popleft()]
                entries = groups[0].entries
                while self._queue and entries + self._queue[0].entries <= self._max_entries:
                    group = self._queue.popleft()
                    entries += group.entries
                    groups.append(group)
                await self._commit(groups)
        finally:
            self._task = None

    async def _commit(self, groups: list[_Group]) -> None:
        items = [item for group in groups for item in group.items]
        span = tracing.linked_span(
            "storage.group_commit",
            [group.span for group in groups if group.span is not None],
            {"allsource.appends": len(items)},
            SpanKind.INTERNAL,
        )
        try:
            await self._commit_traced(groups, items, span)
        finally:
            span.end()

    async def _commit_traced(self, groups: list[_Group], items: list[_Item], span: Any) -> None:
        batch = WriteBatch(raw_mode=True)
        overlay = _Overlay()
        now = time.time_ns()
        results: list[AppendResult] = []
        wrote = False
        try:
            slice_started = time.perf_counter()
            for item in items:
                result = self._prepare(item, batch, overlay, now)
                results.append(result)
                if isinstance(result, model_pb2.AppendResult) and not result.deduplicated:
                    wrote = True
                if time.perf_counter() - slice_started > 0.005:
                    await asyncio.sleep(0)  # a big batch must not stall reads; only this task writes
                    slice_started = time.perf_counter()
            for tenant_no, (_, _, streams) in overlay.cursors.items():
                batch.put(
                    keys.META_STREAM_COUNT + keys.tenant_prefix(tenant_no), keys.pack_u64(streams), self._h["meta"]
                )
            hour = now // keys.HOUR_NS
            cursors = {c.number: c for c in self.tenants.values()} if overlay.usage else {}
            for tenant_no, (stored, appended) in overlay.usage.items():
                cursor = cursors.get(tenant_no)
                if cursor is None:
                    continue  # deleted meanwhile; its range is purged after this batch
                tp = keys.tenant_prefix(tenant_no)
                batch.put(keys.META_USAGE_BYTES + tp, keys.pack_u64(cursor.stored_bytes + stored), self._h["meta"])
                in_minute, in_hour, _ = cursor.windows.counts(now)
                batch.put(keys.hour_events_key(tenant_no, hour), keys.pack_u64(in_hour + appended), self._h["meta"])
                minute = keys.pack_u64(now // MINUTE_NS) + keys.pack_u64(in_minute + appended)
                batch.put(keys.META_MINUTE_EVENTS + tp, minute, self._h["meta"])
            if wrote:
                written = batch.len()
                size = batch.size_in_bytes()
                write_started = time.perf_counter()
                if written < INLINE_WRITE_ENTRIES:
                    self._db.write(batch, self._write_opt)
                else:
                    assert self._loop is not None
                    await self._loop.run_in_executor(self._io, self._db.write, batch, self._write_opt)
                took = time.perf_counter() - write_started
                self.write_batches += 1
                events = sum(len(item.request.events) for item in items)
                WAL_WRITE.observe(took)
                GROUP_COMMIT_APPENDS.observe(len(items))
                GROUP_COMMIT_EVENTS.observe(events)
                if size:
                    WRITTEN_BYTES.inc(size)
                if span.is_recording():
                    span.set_attribute("allsource.events", events)
                    span.set_attribute("allsource.keys_written", written)
                    span.set_attribute("allsource.wal_sync", self._write_opt.sync)
                    span.set_attribute("allsource.write_seconds", took)
        except Exception as exc:  # rocksdict raises plain exceptions; nothing of this batch is acknowledged
            log.exception("group commit failed; %d appends rejected", len(items))
            self._on_failure(exc)
            failure: AllSourceError
            if isinstance(exc, AllSourceError):
                failure = exc
            elif out_of_space(exc):
                failure = ResourceExhausted(
                    "the storage volume is full; nothing of this append was stored. Writes resume by "
                    "themselves once space is freed",
                    reason=Reason.STORAGE_FULL,
                    retry_after=1.0,
                )
            else:
                failure = Unavailable(
                    "the storage engine failed to write; nothing of this append was stored",
                    reason=Reason.STORAGE_WRITE_FAILED,
                )
            for group in groups:
                if not group.future.done():  # a caller that went away has cancelled its future
                    group.future.set_result([failure] * len(group.items))
            return
        heads_changed = self._apply(overlay, now)
        if heads_changed:
            self._on_commit(heads_changed)
        self.appends_committed += sum(
            1 for r in results if isinstance(r, model_pb2.AppendResult) and not r.deduplicated
        )
        start = 0
        for group in groups:
            if not group.future.done():
                group.future.set_result(results[start : start + len(group.items)])
            start += len(group.items)

    def _apply(self, overlay: _Overlay, now: int) -> dict[int, int]:
        if len(self._heads) + len(overlay.heads) > self._cache_size:
            self._heads.clear()
        self._heads.update(overlay.heads)
        by_number = {c.number: c for c in self.tenants.values()}
        changed = {}
        for tenant_no, (last, recorded, streams) in overlay.cursors.items():
            cursor = by_number.get(tenant_no)
            if cursor is None:
                continue  # the tenant was deleted while this batch was written
            if last != cursor.last_position:
                changed[tenant_no] = last
            cursor.last_position, cursor.last_recorded_ns, cursor.streams = last, recorded, streams
        for tenant_no, (stored, appended) in overlay.usage.items():
            cursor = by_number.get(tenant_no)
            if cursor is not None:
                cursor.stored_bytes += stored
                cursor.windows.add(appended, now)
        return changed

    def forget_tenant(self, tenant_no: int) -> None:
        """Drop cached stream heads of a deleted tenant."""
        self._heads = {k: v for k, v in self._heads.items() if k[0] != tenant_no}

    @property
    def idle(self) -> bool:
        """No batch is being built or written, and none is queued."""
        return self._task is None and not self._queue

    async def quiesce(self, attempts: int = 50) -> None:
        """Return when no batch is being built or written, so that the caller's own write (made before its
        next await) cannot interleave with one; gives up waiting after `attempts` batches."""
        for _ in range(attempts):
            if self._task is None and not self._queue:
                return
            await self.barrier()

    async def barrier(self) -> None:
        """Return once everything queued before this call has been written (or rejected)."""
        if self._task is None and not self._queue:
            return
        await self.submit([])

    # -- one append ----------------------------------------------------------------------------------

    def _head(self, tenant_no: int, stream_id: str, overlay: _Overlay) -> StreamHead | None:
        key = (tenant_no, stream_id)
        head = overlay.heads.get(key) or self._heads.get(key)
        if head is None:
            raw = self._cf["streams"].get(keys.stream_key(tenant_no, stream_id))
            if raw is not None:
                head = StreamHead.decode(raw)
                self._heads[key] = head
        return head

    def _prepare(self, item: _Item, batch: WriteBatch, overlay: _Overlay, now: int) -> AppendResult:
        req = item.request
        cursor = self.tenants.get(item.tenant_id)
        if cursor is None:
            return NotFound(
                f"tenant {item.tenant_id!r} does not exist",
                reason=Reason.TENANT_NOT_FOUND,
                metadata={"tenant_id": item.tenant_id},
            )
        t = cursor.number
        stream_id = req.stream_id
        given = rules.given_ids(req)
        if isinstance(given, AllSourceError):
            return given
        # What the rules need: the stream head, an earlier append with this request id, stored events
        # under the given ids (pending in this batch first, then on disk).
        fingerprint = rules.fingerprint(req) if req.request_id else b""
        prior = self._previous_request(t, req.request_id, overlay, now) if req.request_id else None
        head = self._head(t, stream_id, overlay)
        current = head.version if head else 0
        state = self._lifecycle(t, stream_id)
        if state is not None and state.tombstoned:
            return lifecycle.tombstone_refusal(stream_id)
        last_pos, last_rec, streams = overlay.cursors.get(t) or (
            cursor.last_position,
            cursor.last_recorded_ns,
            cursor.streams,
        )
        decision = rules.decide(
            req,
            stream_version=current,
            last_position=last_pos,
            request_fingerprint=fingerprint,
            prior=prior,
            found=self._found(t, given, overlay) if given and prior is None else (),
            deleted=lifecycle.deleted(state, current),
        )
        if not isinstance(decision, rules.Accepted):
            return decision
        count = decision.count
        # Quotas: the event windows are checked now; storage bytes, when the append might cross them,
        # once its exact size is known and before anything of it joins the batch (see `collect` below).
        limits = self.quotas.limits(item.tenant_id, now)
        room: int | None = None
        if limits is not None:
            pending = overlay.usage.get(t)
            in_batch = pending[1] if pending else 0
            used = tuple(n + in_batch for n in cursor.windows.counts(now))
            refusal = self.quotas.window_refusal(item.tenant_id, limits, used, count, now)  # type: ignore[arg-type]
            if refusal is not None:
                return refusal
            if limits.storage_bytes is not None:
                stored_now = cursor.stored_bytes + self._other_bytes(t) + (pending[0] if pending else 0)
                room = limits.storage_bytes - stored_now
                if room >= _size_bound(req, len(stream_id.encode()), len(cursor.field), count):
                    room = None  # it fits whatever its exact size: write as usual

        # Accepted: from here on only puts (collected first when the storage quota is close).
        recorded = now if now > last_rec else last_rec
        first_pos = decision.first_position
        first_ver = decision.first_version
        encoded_time = overlay.times.get(recorded)
        if encoded_time is None:
            encoded_time = overlay.times[recorded] = (codec.recorded_field(recorded), to_timestamp(recorded))
        sid = stream_id.encode()
        common = cursor.field + codec.stream_field_bytes(sid) + encoded_time[0]
        # The loop below runs once per event on the bulk path: names are bound locally, constant
        # fragments are precomputed, and server-assigned ids (which cannot collide) are not tracked.
        tprefix = keys.tenant_prefix(t)
        sprefix = tprefix + sid + keys.SEP
        h_events, h_stream, h_type, h_id, h_cat = (
            self._h["events"],
            self._h["stream_idx"],
            self._h["type_idx"],
            self._h["id_idx"],
            self._h["category_type_idx"],
        )
        separator = self._separator
        categorized = keys.stream_category(stream_id, separator) is not None
        collected: list[tuple[bytes, bytes, Any]] = []
        put = batch.put if room is None else (lambda k, v, h: collected.append((k, v, h)))
        new_ids: dict[tuple[int, bytes], tuple[int, str, int, model_pb2.AppendInput, int]] = {}
        pack = keys.U64.pack
        version_position = codec.version_position
        id_prefix, json_field, sep = codec.EVENT_ID_FIELD_PREFIX, codec.JSON_CONTENT_TYPE_FIELD, keys.SEP
        generated = iter(self._ids.take_with_text(count - len(given)) if count > len(given) else ())
        given_map = dict(given)
        # Per event type: its type-index prefix and its category/type prefix (None: no category).
        type_prefixes: dict[str, tuple[bytes, bytes | None]] = {}
        event_ids: list[str] = []
        # Bytes written: the event value, the type-index and category/type keys vary per event; the rest is fixed.
        varying = 0
        for index, ev in enumerate(req.events):
            pos = first_pos + index
            version = first_ver + index
            pos8 = pack(pos)
            data = ev.SerializeToString()
            raw_id = given_map.get(index) if given_map else None
            if raw_id is None:
                raw_id, eid = next(generated)
                data += id_prefix + eid.encode()
            else:
                eid = ev.event_id
                new_ids[(t, raw_id)] = (pos, stream_id, version, req, index)
            if not ev.content_type:
                data += json_field
            event_ids.append(eid)
            event_type = ev.event_type
            prefixes = type_prefixes.get(event_type)
            if prefixes is None:
                prefixes = type_prefixes[event_type] = (
                    tprefix + event_type.encode() + sep,
                    keys.category_type_prefix(t, stream_id, event_type, separator) if categorized else None,
                )
            type_prefix, category_prefix = prefixes
            value = data + common + version_position(version, pos)
            varying += len(value) + len(type_prefix)
            put(tprefix + pos8, value, h_events)
            put(sprefix + pack(version), pos8, h_stream)
            put(type_prefix + pos8, b"", h_type)
            put(tprefix + raw_id, pos8, h_id)
            if category_prefix is not None:
                put(category_prefix + pos8, b"", h_cat)
                varying += len(category_prefix) + 8
        last = first_pos + count - 1
        # per event: event key 12; stream index key and value len(sprefix) + 16; type index position 8;
        # id index key and value 28. Per append: the stream head (key and value) when the stream is new.
        stored = varying + count * (12 + len(sprefix) + 16 + 8 + 28)
        if head is None:
            stored += len(tprefix) + len(sid) + codec.HEAD_BYTES
        new_head = StreamHead(
            current + count,
            head.first_position if head else first_pos,
            last,
            head.created_ns if head else recorded,
            recorded,
        )
        put(tprefix + sid, new_head.encode(), self._h["streams"])
        response = model_pb2.AppendResult(
            first_version=first_ver,
            last_version=current + count,
            first_position=first_pos,
            last_position=last,
            event_ids=event_ids,
            recorded_at=encoded_time[1],
        )
        if req.request_id:
            request_key = keys.request_key(t, req.request_id)
            request_value = fingerprint + keys.pack_u64(recorded) + response.SerializeToString()
            put(request_key, request_value, self._h["requests"])
            stored += len(request_key) + len(request_value) - overlay.replaced.get((t, req.request_id), 0)
        if room is not None:
            if stored > room:
                assert limits is not None and limits.storage_bytes is not None
                used_bytes = limits.storage_bytes - room
                return exceeded(
                    item.tenant_id,
                    "max_storage_bytes",
                    limits.storage_bytes,
                    used_bytes,
                    f"{used_bytes} of {limits.storage_bytes} bytes stored; this append needs {stored}",
                )
            for key, value, handle in collected:
                batch.put(key, value, handle)
        # Admitted: the overlay takes it.
        if new_ids:
            overlay.ids.update(new_ids)
        if req.request_id:
            overlay.replaced.pop((t, req.request_id), None)
            overlay.requests[(t, req.request_id)] = (fingerprint, response)
        overlay.heads[(t, stream_id)] = new_head
        overlay.cursors[t] = (last, recorded, streams + (0 if head else 1))
        usage = overlay.usage.get(t)
        if usage is None:
            overlay.usage[t] = [stored, count]
        else:
            usage[0] += stored
            usage[1] += count
        return response

    def _previous_request(self, t: int, request_id: str, overlay: _Overlay, now: int) -> rules.PriorRequest | None:
        pending = overlay.requests.get((t, request_id))
        if pending is not None:
            return rules.PriorRequest(*pending)
        request_key = keys.request_key(t, request_id)
        raw = self._cf["requests"].get(request_key)
        if raw is None:
            return None
        recorded = keys.unpack_u64(raw, keys.REQUEST_RECORDED.start)
        if now - recorded > self._request_ttl_ns:
            overlay.replaced[(t, request_id)] = len(request_key) + len(raw)  # overwritten: not counted twice
            return None
        return rules.PriorRequest(raw[:16], model_pb2.AppendResult.FromString(raw[24:]))

    def _found(self, t: int, given: list[tuple[int, bytes]], overlay: _Overlay) -> list[rules.FoundEvent]:
        """Events stored (or pending in this batch) under the given ids."""
        found: list[rules.FoundEvent] = []
        missing: list[tuple[int, bytes]] = []
        for index, raw in given:
            pending = overlay.ids.get((t, raw))
            if pending is not None:
                pos, sid, ver, other_req, other_index = pending
                found.append(rules.FoundEvent(index, pos, sid, ver, rules.as_stored(other_req.events[other_index])))
            else:
                missing.append((index, raw))
        if missing:
            positions = self._cf["id_idx"].get([keys.id_key(t, raw) for _, raw in missing])
            hits = [
                (index, keys.unpack_u64(p)) for (index, _), p in zip(missing, positions, strict=True) if p is not None
            ]
            if hits:
                stored = self._cf["events"].get([keys.event_key(t, p) for _, p in hits])
                for (index, pos), data in zip(hits, stored, strict=True):
                    ev = codec.decode_event(data)
                    found.append(rules.FoundEvent(index, pos, ev.stream_id, ev.version, ev))
        return found
