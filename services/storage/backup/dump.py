"""The dump worker: writes a backup from one consistent view of the database.

Run by the storage service (services.storage.backup.jobs) as `python -m services.storage.backup.dump`
with the job as JSON on standard input, for a large backup: it opens a RocksDB checkpoint read-only, so
the serving database is never touched, and the storage process's event loop never runs this CPU-heavy
loop. A small backup (an incremental one, typically) runs on a thread of the storage process instead,
reading the live database through iterators made at one instant (`RocksBackend.consistent_view`): no
checkpoint to flush, link, open and remove. Either way, reading keys goes on while a second thread
compresses, hashes and uploads the previous chunk (zstandard, hashlib and the destinations release the
GIL). It reports progress as JSON lines (on standard output when a process) and ends with the manifest.
"""

from __future__ import annotations

import concurrent.futures
import functools
import itertools
import json
import operator
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
from rocksdict import AccessType, Options, Rdict, ReadOptions

from services.storage import codec, keys
from services.storage.backup import format as fmt
from services.storage.backup.destinations import Destination, open_destination, read_sound
from shared.core.timestamps import from_timestamp

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
# A backup of at most this many events writes its events in chunks of an eighth of CHUNK_RAW_BYTES.
SMALL_CHUNKS_UP_TO = 100_000
# What a dump reads (the indexes are rebuilt from the events by a restore).
LIVE_FAMILIES = ("meta", "events", *fmt.KV_FAMILIES)
# A live view reads the events of at most this many tenants as runs of values (one RocksDB iterator
# each, all pinned while the backup reads); with more, it steps its one iterator of the family.
MAX_RUNS = 64
# Where RocksBackend.consistent_view puts those runs.
VIEW_RUNS = "events.runs"
# Left out with backup.include_signing_keys off: the sealed private keys, and the pointer to the current
# one (so that the admin service makes a new key after a restore).
SIGNING_KEYS_PREFIXES = (b"signing_keys" + keys.SEP, b"auth_meta" + keys.SEP + b"current_kid")


def open_checkpoint(path: str) -> tuple[Any, dict[str, Any]]:
    """A checkpoint (or any database of ours) opened read-only, with its families (a checkpoint taken
    before a family existed, such as category_type_idx, opens without it)."""
    opt = Options(raw_mode=True)
    present = set(Rdict.list_cf(path, Options(raw_mode=True)))
    names = [n for n in FAMILIES if n in present]
    db = Rdict(
        path,
        opt,
        column_families={n: Options(raw_mode=True) for n in names},
        access_type=AccessType.read_only(),
    )
    return db, {n: db.get_column_family(n) for n in names}


def scan(family: Any, lo: bytes, hi: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Keys and values in [lo, hi) (items() costs a third less than stepping an iterator by hand). A
    generator, so that the read options (which hold the upper bound the iterator points at) live as long
    as the iteration: rocksdict does not keep them alive itself."""
    ro = ReadOptions()
    ro.set_iterate_upper_bound(hi)
    yield from family.items(from_key=lo, read_opt=ro)


class CheckpointFamily:
    """A family of an opened checkpoint (nothing writes to it: each read may make its own iterator)."""

    def __init__(self, family: Any) -> None:
        self.family = family

    def scan(self, lo: bytes, hi: bytes) -> Iterator[tuple[bytes, bytes]]:
        return scan(self.family, lo, hi)

    def blocks(self, lo: bytes, hi: bytes, size: int) -> Iterator[tuple[tuple[bytes, ...], tuple[bytes, ...]]]:
        """The keys and values in [lo, hi), a block of up to `size` of each at a time. Blocks are taken
        from the iterator and split into columns by C-level calls (islice, zip): a Python statement per
        record costs more than reading it (docs/PERFORMANCE.md)."""
        rows = self.scan(lo, hi)
        while block := list(itertools.islice(rows, size)):
            keys_, values = zip(*block, strict=True)
            yield keys_, values

    def last_at_or_before(self, key: bytes) -> bytes | None:
        it = self.family.iter()
        it.seek_for_prev(key)
        return it.key() if it.valid() else None

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self.family.get(key)
        return value


class LiveFamily:
    """A family of the live database read through one iterator, made with the others of its view: every
    read sees the database as of that instant, whatever is written since. One read at a time."""

    def __init__(self, iterator: Any, runs: dict[bytes, tuple[Any, Any]] | None = None) -> None:
        self.it = iterator
        self.runs = runs or {}
        self._bounds: list[Any] = []  # the read options of the runs handed out, kept while they are read

    def run(self, lo: bytes) -> Any:
        """The values from `lo` to the end of its tenant as of the view (an iterator that reads in C), if
        the view made that run; once."""
        found = self.runs.pop(lo, None)
        if found is None:
            return None
        values, bound = found
        self._bounds.append(bound)  # rocksdict does not keep the iterator's upper bound alive
        return values

    def scan(self, lo: bytes, hi: bytes) -> Iterator[tuple[bytes, bytes]]:
        for keys_, values in self.blocks(lo, hi, 256):
            yield from zip(keys_, values, strict=True)

    def blocks(self, lo: bytes, hi: bytes, size: int) -> Iterator[tuple[list[bytes], list[bytes]]]:
        """As CheckpointFamily.blocks, stepping the view's iterator (rocksdict reads ranges in C only
        through iterators of its own making, which would not be the view's)."""
        it = self.it
        it.seek(lo)
        valid, key, value, step = it.valid, it.key, it.value, it.next
        while True:
            keys_: list[bytes] = []
            values: list[bytes] = []
            add_key, add_value = keys_.append, values.append
            for _ in range(size):
                if not valid():
                    break
                k = key()
                if k >= hi:
                    break
                add_key(k)
                add_value(value())
                step()
            if keys_:
                yield keys_, values
            if len(keys_) < size:
                return

    def last_at_or_before(self, key: bytes) -> bytes | None:
        self.it.seek_for_prev(key)
        return self.it.key() if self.it.valid() else None

    def get(self, key: bytes) -> bytes | None:
        self.it.seek(key)
        if self.it.valid() and self.it.key() == key:
            value: bytes = self.it.value()
            return value
        return None


def print_message(message: dict[str, Any]) -> None:
    """How a worker process reports: one JSON line on standard output (the manifest as its fields)."""
    sys.stdout.buffer.write(orjson.dumps(message, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS))
    sys.stdout.flush()


def tenants_of(meta: CheckpointFamily | LiveFamily, wanted: list[str]) -> list[dict[str, Any]]:
    """The tenants registered in the view (all, or those wanted), with their records."""
    deleting = {
        k[len(keys.META_TENANT_DELETING) :]
        for k, _ in meta.scan(keys.META_TENANT_DELETING, keys.next_key(keys.META_TENANT_DELETING))
    }
    found: dict[str, dict[str, Any]] = {}
    for key, value in meta.scan(keys.META_TENANT, keys.next_key(keys.META_TENANT)):
        name = key[len(keys.META_TENANT) :]
        if name not in deleting:
            found[name.decode()] = {"tenant_id": name.decode(), "number": keys.TENANT.unpack(value)[0]}
    for key, value in meta.scan(keys.META_TENANT_RECORD, keys.next_key(keys.META_TENANT_RECORD)):
        tenant = found.get(key[len(keys.META_TENANT_RECORD) :].decode())
        if tenant is not None:
            tenant["record_hex"], tenant["revision"] = value[8:].hex(), keys.unpack_u64(value)
    missing = [t for t in wanted if t not in found]
    if missing:
        raise fmt.FormatError(f"no tenant {missing[0]!r} to back up", "missing")
    chosen = [found[t] for t in sorted(set(wanted))] if wanted else [found[t] for t in sorted(found)]
    for tenant in chosen:
        tenant.setdefault("record_hex", "")
        tenant.setdefault("revision", 0)
    return chosen


@functools.cache
def _pool(workers: int = 2) -> concurrent.futures.ThreadPoolExecutor:
    """The sinks' threads, made once per process (per size): starting two threads for each backup cost a
    10K-event incremental backup 2 ms of its 25. Backups run one at a time (BackupJobs), so one sink uses
    them. One per chunk in flight (Destination.in_flight): two for a local directory (zstandard and
    hashlib release the GIL, so copying files keeps both cores busy), more for S3, whose requests mostly
    wait on the network."""
    return concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"backup-sink-{workers}")


class ChunkSink:
    """Compresses, hashes and stores chunks on threads of its own, at most `dest.in_flight` ahead of the
    reader."""

    def __init__(self, dest: Destination, backup_id: str, level: int) -> None:
        self.dest, self.backup_id, self.level = dest, backup_id, level
        self.window = dest.in_flight
        self.pool = _pool(self.window)
        self.pending: list[concurrent.futures.Future[None]] = []
        self.chunks: list[fmt.ChunkInfo] = []
        self.stored = 0

    def add(self, info: fmt.ChunkInfo, keys: list[bytes], values: list[bytes]) -> None:
        while len(self.pending) >= self.window:
            self.pending.pop(0).result()
        self.chunks.append(info)
        self.pending.append(self.pool.submit(self._store, info, keys, values))

    def add_run(self, info: fmt.ChunkInfo, values: list[bytes]) -> None:
        """Events at consecutive positions from info.first_position: their keys are made, not read."""
        while len(self.pending) >= self.window:
            self.pending.pop(0).result()
        self.chunks.append(info)
        self.pending.append(self.pool.submit(self._store_run, info, values))

    def _store_run(self, info: fmt.ChunkInfo, values: list[bytes]) -> None:
        self._store_raw(info, fmt.encode_run(info.first_position, values))

    def add_raw(self, info: fmt.ChunkInfo, raw: bytes) -> None:
        """A chunk of bytes as they are (a piece of a checkpoint file)."""
        while len(self.pending) >= self.window:
            self.pending.pop(0).result()
        self.chunks.append(info)
        self.pending.append(self.pool.submit(self._store_raw, info, raw))

    def _store(self, info: fmt.ChunkInfo, keys: list[bytes], values: list[bytes]) -> None:
        self._store_raw(info, fmt.encode_columns(keys, values))

    def _store_raw(self, info: fmt.ChunkInfo, raw: bytes) -> None:
        data = fmt.compress(raw, self.level)
        info.raw_bytes, info.stored_bytes, info.sha256 = len(raw), len(data), fmt.sha256(data)
        self.dest.put(self.backup_id, info.name, data)
        self.stored += len(data)

    def finish(self) -> None:
        for future in self.pending:
            future.result()

    def abandon(self) -> None:
        """Wait for the chunks still being stored, whatever they come to: a failed backup's objects are
        removed once its dump has returned, and one written after that would be left behind."""
        concurrent.futures.wait(self.pending)


class _Changes:
    """Records of one section of a tenant gathered into chunks of about CHUNK_RAW_BYTES, a block at a time."""

    def __init__(self, dump: Dump, label: str, tenant_id: str, section: str) -> None:
        self.dump, self.label, self.tenant_id, self.section = dump, label, tenant_id, section
        self.keys: list[bytes] = []
        self.values: list[bytes] = []
        self.size = 0
        self.seq = 0

    def add(self, keys_: list[bytes], values: list[bytes]) -> None:
        block_size = sum(map(len, keys_)) + sum(map(len, values)) + 8 * len(keys_)
        if self.size + block_size < fmt.CHUNK_RAW_BYTES:
            self.keys += keys_
            self.values += values
            self.size += block_size
            return
        for key, value in zip(keys_, values, strict=True):
            self.keys.append(key)
            self.values.append(value)
            self.size += len(key) + len(value) + 8
            if self.size >= fmt.CHUNK_RAW_BYTES:
                self._flush()

    def close(self) -> None:
        if self.keys:
            self._flush()

    def _flush(self) -> None:
        self.dump._chunk(self.label, self.tenant_id, self.section, self.seq, self.keys, self.values)
        self.keys, self.values, self.size, self.seq = [], [], 0, self.seq + 1


class Dump:
    """One backup job."""

    def __init__(
        self,
        job: dict[str, Any],
        report: Callable[[dict[str, Any]], None] = print_message,
        view: dict[str, Any] | None = None,
    ) -> None:
        self.job = job
        self.report = report
        self.view = view  # iterators of the live database (RocksBackend.consistent_view); else the checkpoint
        # Workers share a job by positions: each copies its slice of every tenant's events; the first
        # also copies the other families.
        self.share, self.shares = int(job.get("share", 0)), int(job.get("shares", 1))
        # Layout "checkpoint": copy the checkpoint's files rather than reading its records.
        self.files = job.get("layout") == "checkpoint"
        self.dest = open_destination(job["destination"])
        self.backup_id = job["backup_id"]
        self.sink = ChunkSink(self.dest, self.backup_id, int(job.get("level", 3)))
        self.parent: fmt.Manifest | None = None
        self._index_reads: Iterator[tuple[str, fmt.ChunkInfo, bytes]] = iter(())
        self._index_counts: dict[tuple[str, str], int] = {}
        if job.get("parent_backup_id"):
            raw = self.dest.manifest(job["parent_backup_id"])
            if raw is None:
                raise fmt.FormatError(f"the parent backup {job['parent_backup_id']} does not exist", "missing")
            self.parent = fmt.Manifest.from_json(raw, f"{job['parent_backup_id']}/manifest.json")
        self.events_done = 0
        self.total_events = 0
        self.last_report = 0.0
        self.timings: dict[str, float] = {}

    def progress(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last_report > 0.25:
            self.last_report = now
            line = {"events": self.events_done, "total_events": self.total_events, "bytes": self.sink.stored}
            self.report({"progress": line})

    def run(self) -> fmt.Manifest:
        try:
            return self._open_and_run()
        except BaseException:
            self.sink.abandon()
            raise

    def _open_and_run(self) -> fmt.Manifest:
        if self.view is not None:
            try:
                runs = self.view.pop(VIEW_RUNS, None)
                families = {name: LiveFamily(it, runs if name == "events" else None) for name, it in self.view.items()}
                return self._run(families)
            finally:
                self.view.clear()  # the iterators pin memtables and files until they go
        db, families = open_checkpoint(self.job["checkpoint"])
        try:
            return self._run({name: CheckpointFamily(family) for name, family in families.items()})
        finally:
            families.clear()
            db.close()

    def _run(self, cf: dict[str, Any]) -> fmt.Manifest:
        job = self.job
        # (index, tenant, from, to, the parent's part this backup continues: None for a full backup and for
        # a tenant held whole)
        parts: list[tuple[int, dict[str, Any], int, int, fmt.TenantPart | None]] = []
        for index, tenant in enumerate(tenants_of(cf["meta"], job.get("tenant_ids") or [])):
            t = tenant["number"]
            last = 0
            found = cf["events"].last_at_or_before(keys.event_key(t, (1 << 64) - 1))
            if found is not None and found[:4] == keys.tenant_prefix(t):
                last = keys.event_key_position(found)
            done = self.parent.tenant(tenant["tenant_id"]) if self.parent else None
            # A tenant the parent's backup does not lead to (deleted and made again, or restored, since;
            # or not in it) is held whole, events from position 0 and every record.
            at_end = self._recorded_at(cf["events"], t, done.to_position if done else 0)
            prior = done if fmt.continues(done, t, last, at_end) else None
            first = prior.to_position if prior is not None else 0
            parts.append((index, tenant, first, max(first, last), prior))
            lo, hi = self._share(first, max(first, last))
            self.total_events += hi - lo
        if self.parent is not None and self.share == 0:
            order = [
                (tenant["tenant_id"], family)
                for _, tenant, _, _, prior in parts
                if prior is not None
                for family in fmt.INDEXED_FAMILIES
            ]
            self._read_parent_indexes(order + ([(fmt.SUITE, "records")] if job.get("suite", True) else []))
        manifest = fmt.Manifest(
            backup_id=self.backup_id,
            kind="incremental" if self.parent else "full",
            parent_backup_id=self.parent.backup_id if self.parent else "",
            created_ns=int(job["created_ns"]),
            suite_version=job["suite_version"],
            label=job.get("label", ""),
            schedule=job.get("schedule", ""),
            signing_keys=bool(job.get("signing_keys")),
            layout="checkpoint" if self.files else "records",
            whole_suite=bool(job.get("suite", True)),
        )
        self.progress(force=True)
        began = time.monotonic()
        if self.files:
            self._files(Path(job["checkpoint"]))
        self.timings["files_s"] = round(time.monotonic() - began, 3)
        for index, tenant, first, last, prior in parts:
            restart = self.parent is not None and prior is None
            part = fmt.TenantPart(
                tenant_id=tenant["tenant_id"],
                record_hex=tenant["record_hex"],
                record_revision=tenant["revision"],
                from_position=first,
                to_position=last,
                events=0,
                number=tenant["number"],
                restart=restart,
            )
            if self.files:
                self._described(cf["events"], tenant["number"], part)
            else:
                self._events(cf["events"], index, tenant["number"], part)
            if self.share == 0:
                label, tenant_id, t = f"t{index:05d}", tenant["tenant_id"], tenant["number"]
                # Heads of the streams appended to since the parent: last position past its end. Append
                # results stored since: recorded at or after its last event (recording times never go
                # back within a tenant; its last batch again is harmless). Without that time (a format-1
                # parent), all of them.
                since = prior.to_position + 1 if prior is not None else 0
                self._written_since(cf["streams"], label, tenant_id, t, "streams", codec.HEAD_LAST_POSITION, since)
                since = prior.to_recorded_ns if prior is not None else 0
                self._written_since(cf["requests"], label, tenant_id, t, "requests", keys.REQUEST_RECORDED, since)
                for family in fmt.INDEXED_FAMILIES:
                    self._kv(cf[family], label, tenant_id, t, family, whole=restart)
            part.to_recorded_ns = max(0, self._recorded_at(cf["events"], tenant["number"], part.to_position))
            manifest.tenants.append(part)
        if job.get("suite", True) and self.share == 0:
            self._kv(cf["records"], "suite", fmt.SUITE, 0, "records", skip_signing=not job.get("signing_keys"))
        self.sink.finish()
        self.timings["total_s"] = round(time.monotonic() - began, 3)
        self.report({"timings": self.timings})
        self.progress(force=True)
        manifest.chunks = self.sink.chunks
        return manifest  # jobs.merge joins the shares' manifests and writes manifest.json last

    def _files(self, checkpoint: Path) -> None:
        """Every file of the checkpoint, in pieces of at most CHUNK_RAW_BYTES (layout "checkpoint")."""
        number = 0
        for path in sorted(p for p in checkpoint.iterdir() if p.is_file()):
            with open(path, "rb") as f:
                offset = 0
                while piece := f.read(fmt.CHUNK_RAW_BYTES):
                    info = fmt.ChunkInfo(
                        name=f"file-{number:06d}.zst",
                        tenant_id=fmt.SUITE,
                        section=fmt.FILE,
                        sha256="",
                        stored_bytes=0,
                        raw_bytes=len(piece),
                        records=0,
                        path=path.name,
                        offset=offset,
                    )
                    self.sink.add_raw(info, piece)
                    offset += len(piece)
                    number += 1
                    self.progress()

    def _described(self, family: Any, t: int, part: fmt.TenantPart) -> None:
        """A tenant's events in a checkpoint-layout backup: their range and times, not a copy (the files
        hold them). `events` counts the positions, erased ones included (counting keys would read them)."""
        part.events = part.to_position - part.from_position
        self.events_done += part.events
        for position in (part.from_position + 1, part.to_position):
            data = family.get(keys.event_key(t, position)) if part.events else None
            if data is None:
                continue
            recorded = from_timestamp(codec.decode_event(data).recorded_at)
            if position == part.from_position + 1:
                part.first_recorded_ns = recorded
            part.last_recorded_ns = recorded

    @staticmethod
    def _recorded_at(family: Any, t: int, position: int) -> int:
        """The recording time (ns) of the tenant's event at a position; 0 for position 0, -1 when there is
        no event there (erased, or never)."""
        if position == 0:
            return 0
        data = family.get(keys.event_key(t, position))
        return -1 if data is None else from_timestamp(codec.decode_event(data).recorded_at)

    def _share(self, first: int, last: int) -> tuple[int, int]:
        """This worker's share of the positions (first, last]: (lo, hi] of `shares` equal slices."""
        width = last - first
        return first + width * self.share // self.shares, first + width * (self.share + 1) // self.shares

    def _events(self, family: Any, index: int, t: int, part: fmt.TenantPart) -> None:
        # Columns are built from blocks by C-level calls (map, extend): a Python statement per event
        # costs more than reading it (docs/PERFORMANCE.md). A small backup's events go in smaller chunks,
        # so that the sink's two threads compress them while the reading goes on (one 8 MiB chunk was
        # compressed only once everything had been read: half of a 10K-event incremental's time).
        limit = fmt.CHUNK_RAW_BYTES if self.total_events > SMALL_CHUNKS_UP_TO else fmt.CHUNK_RAW_BYTES // 8
        first, last = self._share(part.from_position, part.to_position)
        seq, start = 0, first + 1
        run = family.run(keys.event_key(t, start)) if isinstance(family, LiveFamily) and self.shares == 1 else None
        if run is not None:
            seq, start = self._run_chunks(family, index, t, part, start, run, limit)
        chunk_keys: list[bytes] = []
        chunk_values: list[bytes] = []
        size = 0
        strip = operator.itemgetter(slice(4, None))  # keys without the tenant number

        def close() -> None:
            nonlocal chunk_keys, chunk_values, size, seq
            info = self._event_chunk(index, part, seq, chunk_values)
            info.first_position = keys.unpack_u64(chunk_keys[0])
            info.last_position = keys.unpack_u64(chunk_keys[-1])
            self.sink.add(info, chunk_keys, chunk_values)
            self.progress()
            chunk_keys, chunk_values, size, seq = [], [], 0, seq + 1

        for block_keys, block_values in family.blocks(keys.event_key(t, start), keys.event_key(t, last + 1), 1024):
            chunk_keys.extend(map(strip, block_keys))
            chunk_values.extend(block_values)
            size += sum(map(len, block_values)) + 16 * len(block_values)
            if size >= limit:
                close()
        if chunk_keys:
            close()

    def _run_chunks(
        self, family: LiveFamily, index: int, t: int, part: fmt.TenantPart, start: int, run: Any, limit: int
    ) -> tuple[int, int]:
        """A tenant's events from position `start`, read as the view's run of values (in C) and chunked
        with keys made from positions. That holds while the positions are consecutive (an erasure leaves
        gaps): a chunk of n values is written so only when the view has the chunk's first value at its
        expected position and its last value n - 1 positions later (then no position between is missing).
        Returns the next chunk's number and the first position not written, from which the caller steps
        the view's iterator (at once when a gap was met; else past the tenant's last event)."""
        seq = 0
        values: list[bytes] = []
        size = 0
        while True:
            block = list(itertools.islice(run, 1024))
            values.extend(block)
            size += sum(map(len, block)) + 16 * len(block)
            if values and (size >= limit or not block):
                n = len(values)
                if family.get(keys.event_key(t, start)) != values[0] or (
                    family.get(keys.event_key(t, start + n - 1)) != values[-1]
                ):
                    return seq, start  # a gap: the caller steps from here, keys and all
                info = self._event_chunk(index, part, seq, values)
                info.first_position, info.last_position = start, start + n - 1
                self.sink.add_run(info, values)
                self.progress()
                seq, start, values, size = seq + 1, start + n, [], 0
            if not block:
                return seq, start

    def _event_chunk(self, index: int, part: fmt.TenantPart, seq: int, values: list[bytes]) -> fmt.ChunkInfo:
        """The description of a chunk of the tenant's events (positions filled in by the caller), counted
        into the tenant's part."""
        first_ns = from_timestamp(codec.decode_event(values[0]).recorded_at)
        last_ns = from_timestamp(codec.decode_event(values[-1]).recorded_at)
        if not part.first_recorded_ns:
            part.first_recorded_ns = first_ns
        part.last_recorded_ns = last_ns
        part.events += len(values)
        self.events_done += len(values)
        return fmt.ChunkInfo(
            name=f"t{index:05d}-events-{self.share}-{seq:06d}.zst",
            tenant_id=part.tenant_id,
            section=fmt.EVENTS,
            sha256="",
            stored_bytes=0,
            raw_bytes=0,
            records=len(values),
            first_recorded_ns=first_ns,
            last_recorded_ns=last_ns,
        )

    def _read_parent_indexes(self, order: list[tuple[str, str]]) -> None:
        """Start reading the parent's index chunks of the (tenant, family) pairs `order` lists, in that
        order (the order _kv asks for them), several at once on threads (read_sound): with S3 each
        is a round trip, and one after another they took much of a small incremental backup."""
        assert self.parent is not None
        by_pair: dict[tuple[str, str], list[fmt.ChunkInfo]] = {}
        for info in self.parent.chunks:
            if info.section.endswith(".index"):
                by_pair.setdefault((info.tenant_id, info.section.removesuffix(".index")), []).append(info)
        wanted = [info for pair in order for info in by_pair.get(pair, [])]
        self._index_counts = {pair: len(chunks) for pair, chunks in by_pair.items()}
        backup_id = self.parent.backup_id
        self._index_reads = read_sound(self.dest, [(backup_id, info) for info in wanted])

    def _previous(self, tenant_id: str, name: str) -> dict[bytes, bytes]:
        """The parent's digests of a family of the tenant (key -> digest); {} for a full backup."""
        previous: dict[bytes, bytes] = {}
        if self.parent is None:
            return previous
        section = f"{name}.index"
        for _ in range(self._index_counts.get((tenant_id, name), 0)):
            _, info, data = next(self._index_reads)
            assert (info.tenant_id, info.section) == (tenant_id, section), "index chunks read out of order"
            previous.update(zip(*fmt.decode_columns(fmt.decompress(data, info.name), info.name), strict=True))
        return previous

    def _kv(
        self,
        family: Any,
        label: str,
        tenant_id: str,
        t: int,
        name: str,
        *,
        skip_signing: bool = False,
        whole: bool = False,
    ) -> None:
        """A family of the tenant: whole (full backup, or `whole`: a restarted tenant) or what changed since the
        parent (incremental).

        Every record's digest goes in the index (what the next incremental compares against); a record
        goes in the backup when its digest differs from the parent's. Block by block with C-level calls
        (digests, the parent's digests popped by map, the differing ones picked by compress): a statement
        per record took 0.10-0.13 s for 100K records."""
        previous = {} if whole else self._previous(tenant_id, name)
        index_keys: list[bytes] = []
        index_digests: list[bytes] = []
        changes = _Changes(self, label, tenant_id, name)
        strip = operator.itemgetter(slice(4, None))  # keys without the tenant number
        for block_keys, block_values in family.blocks(keys.tenant_prefix(t), keys.tenant_upper(t), 1024):
            shorts = list(map(strip, block_keys))
            values = list(block_values)
            if skip_signing:
                kept = [not short.startswith(SIGNING_KEYS_PREFIXES) for short in shorts]
                shorts, values = list(itertools.compress(shorts, kept)), list(itertools.compress(values, kept))
            digests = fmt.digests(values)
            index_keys += shorts
            index_digests += digests
            if previous:  # only those whose digest differs from the parent's (or that it did not have)
                differs = list(map(operator.ne, map(previous.pop, shorts, itertools.repeat(None)), digests))
                shorts, values = list(itertools.compress(shorts, differs)), list(itertools.compress(values, differs))
            changes.add(shorts, values)
        changes.close()
        if previous:  # in the parent, gone since
            gone = sorted(previous)
            self._chunks(label, tenant_id, f"{name}.deleted", gone, [b""] * len(gone))
        self._chunks(label, tenant_id, f"{name}.index", index_keys, index_digests)

    def _written_since(
        self, family: Any, label: str, tenant_id: str, t: int, name: str, mark: slice, since: int
    ) -> None:
        """The tenant's records of a family written only by appends (stream heads, stored append results)
        whose 8-byte big-endian mark at `mark` (a last position, a recording time) is at least `since`: all
        of them for 0 (a full backup, or a tenant held whole). Such a record changes only when an append
        writes it, which puts its mark past the parent's end, and goes only with its tenant
        (format.continues guarantees the same tenant and log) or, an append result, by the sweep once
        past its TTL (a removal not carried, and harmless: format.INDEXED_FAMILIES): so no digests and no
        index. With 100K
        streams, the digests, the parent's index read and the index written again took most of an
        incremental's 0.2 s."""
        changes = _Changes(self, label, tenant_id, name)
        threshold = keys.pack_u64(since)
        mark_of = operator.itemgetter(mark)
        strip = operator.itemgetter(slice(4, None))
        for block_keys, block_values in family.blocks(keys.tenant_prefix(t), keys.tenant_upper(t), 1024):
            shorts, values = list(map(strip, block_keys)), list(block_values)
            if since:
                newer = list(map(operator.ge, map(mark_of, values), itertools.repeat(threshold)))
                shorts, values = list(itertools.compress(shorts, newer)), list(itertools.compress(values, newer))
            changes.add(shorts, values)
        changes.close()

    def _chunks(self, label: str, tenant_id: str, section: str, keys_: list[bytes], values: list[bytes]) -> None:
        """Records (keys and values) in as many chunks as their size needs."""
        changes = _Changes(self, label, tenant_id, section)
        changes.add(keys_, values)
        changes.close()

    def _chunk(
        self, label: str, tenant_id: str, section: str, seq: int, keys_: list[bytes], values: list[bytes]
    ) -> None:
        info = fmt.ChunkInfo(
            name=f"{label}-{section}-{seq:06d}.zst",
            tenant_id=tenant_id,
            section=section,
            sha256="",
            stored_bytes=0,
            raw_bytes=0,
            records=len(keys_),
        )
        self.sink.add(info, keys_, values)


def work(job: dict[str, Any], report: Callable[[dict[str, Any]], None], view: dict[str, Any] | None = None) -> bool:
    """Run a job, reporting its progress and its end (the manifest, or the error); True when it succeeded."""
    try:
        manifest = Dump(job, report, view).run()
    except fmt.FormatError as exc:
        report({"error": str(exc), "kind": exc.kind, "chunk": exc.chunk})
        return False
    except Exception as exc:  # reported to the storage service, which turns it into the RPC's error
        report({"error": f"{type(exc).__name__}: {exc}"})
        return False
    report({"manifest": manifest})  # the object itself to a thread of the storage service
    return True


def main() -> None:
    if not work(json.loads(sys.stdin.read()), print_message):
        sys.exit(1)


if __name__ == "__main__":
    main()
