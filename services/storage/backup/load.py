"""The load worker: turns a chain of backups into SST files ready to ingest, in a process of its own.

Run by the storage service (services.storage.backup.jobs) as `python -m services.storage.backup.load`
with the job as JSON on standard input. It reads the chain (a full backup and the incrementals after
it), checks every chunk it uses against the manifest's SHA-256, applies the point-in-time cut and the
stream prefix, rebuilds the stream, type and id indexes from the events, and writes one sorted SST file
per column family under the tenant's new internal number. Nothing is written to the database here: the
storage service ingests the files only once this worker has succeeded for every tenant, so a damaged
or incomplete chain is refused before anything is written. Progress goes to standard output as JSON
lines; the last line is the summary (or the error).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from allsource.storage.v1 import lifecycle_pb2, model_pb2
from rocksdict import Options, SstFileWriter

from services.storage import codec, keys
from services.storage.backup import format as fmt
from services.storage.backup.destinations import Destination, open_destination, read_checked, read_sound
from services.storage.backup.dump import open_checkpoint, print_message, scan
from services.storage.codec import StreamHead
from shared.core.timestamps import from_timestamp

_REQUEST_PREFIX = 16 + 8  # fingerprint + recorded ns before the stored AppendResult
TENANT_KEYS_NS = b"tenant_api_keys" + keys.SEP
API_KEYS_NS = b"api_keys" + keys.SEP


def load_chain(dest: Destination, last_id: str) -> list[fmt.Manifest]:
    """The chain ending at a backup, full first; FormatError when a link is missing or unreadable."""
    chain: list[fmt.Manifest] = []
    backup_id = last_id
    while True:
        raw = dest.manifest(backup_id)
        if raw is None:
            if not chain:
                raise fmt.FormatError(f"backup {backup_id} does not exist", "missing")
            raise fmt.FormatError(
                f"the chain of {last_id} is incomplete: its ancestor {backup_id} is missing (restore refused)",
                "chain",
            )
        manifest = fmt.Manifest.from_json(raw, f"{backup_id}/{fmt.MANIFEST}")
        chain.append(manifest)
        if manifest.kind == "full":
            break
        if not manifest.parent_backup_id or len(chain) > 10_000:
            raise fmt.FormatError(f"backup {backup_id} is incremental without a parent", "chain")
        backup_id = manifest.parent_backup_id
    chain.reverse()
    return chain


# A restore's job names no point in time with this (0 is one: before the first position, or the epoch).
NO_CUT = None


@dataclass
class Cut:
    """Which events of a tenant to restore."""

    position: int | None = NO_CUT  # last position (None: no limit; 0: none)
    time_ns: int | None = NO_CUT  # last recorded_at (None: no limit)
    stream_prefix: str = ""

    @property
    def any(self) -> bool:
        return self.position is not None or self.time_ns is not None or bool(self.stream_prefix)

    def passed(self, position: int, recorded_ns: int) -> bool:
        """Whether an event (or a chunk starting with it) lies past the cut."""
        return (self.position is not None and position > self.position) or (
            self.time_ns is not None and recorded_ns > self.time_ns
        )


@dataclass
class Erasure:
    """A DeleteEvents erasure from the tenant's deletion ledger, applied again to the events restored
    (DECISIONS: a restore never revives erased data)."""

    at_ns: int
    prefix: str
    types: frozenset[str]
    start_ns: int | None
    end_ns: int | None

    def erases(self, ev: model_pb2.StoredEvent, recorded_ns: int) -> bool:
        return (
            recorded_ns <= self.at_ns
            and ev.stream_id.startswith(self.prefix)
            and (not self.types or ev.event_type in self.types)
            and (self.start_ns is None or recorded_ns >= self.start_ns)
            and (self.end_ns is None or recorded_ns < self.end_ns)
        )


def erasures(records: dict[bytes, bytes]) -> list[Erasure]:
    """The erasures of a tenant's ledger (records of namespace keys.LIFECYCLE_LEDGER_NS)."""
    prefix = keys.LIFECYCLE_LEDGER_NS.encode() + keys.SEP
    out = []
    for key, value in records.items():
        if not key.startswith(prefix):
            continue
        entry = lifecycle_pb2.LedgerEntry.FromString(value[8:])
        if entry.kind != "erase" or entry.criteria.dry_run:
            continue
        c = entry.criteria
        out.append(
            Erasure(
                from_timestamp(entry.at),
                c.stream_id_prefix,
                frozenset(c.event_types),
                from_timestamp(c.start_time) if c.HasField("start_time") else None,
                from_timestamp(c.end_time) if c.HasField("end_time") else None,
            )
        )
    return out


@dataclass
class _Stream:
    first_position: int
    last_position: int
    version: int
    created_ns: int
    updated_ns: int


@dataclass
class Sizes:
    stored: int = 0  # event-writer families (keys.META_USAGE_BYTES)
    other: int = 0  # snapshots and records (keys.META_OTHER_BYTES)
    by_family: dict[str, int] = field(default_factory=dict)


class Loader:
    """One restore job's reading and SST building."""

    def __init__(self, job: dict[str, Any], report: Callable[[dict[str, Any]], None] = print_message) -> None:
        self.job = job
        self.report = report
        self.dest = open_destination(job["destination"])
        self.chain = load_chain(self.dest, job["backup_id"])
        self.staging = Path(job["staging"])
        self.dry_run = bool(job.get("dry_run"))
        self.checked_chunks = 0
        self.checked_bytes = 0
        self.events_done = 0
        self.total_events = 0
        self.last_report = 0.0
        # The checkpoint a "checkpoint"-layout full backup holds, once put back together: (db, families).
        self.base: tuple[Any, dict[str, Any]] | None = None

    def progress(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last_report > 0.25:
            self.last_report = now
            line = {"events": self.events_done, "total_events": self.total_events, "bytes": self.checked_bytes}
            self.report({"progress": line})

    def chunks(self, wanted: list[tuple[fmt.Manifest, fmt.ChunkInfo]]) -> Iterator[Iterator[tuple[bytes, bytes]]]:
        """The records of each chunk, in order, read and checked ahead (destinations.read_sound)."""
        for backup_id, info, data in read_sound(self.dest, [(m.backup_id, i) for m, i in wanted]):
            self.checked_chunks += 1
            self.checked_bytes += len(data)
            yield fmt.decode_records(fmt.decompress(data, info.name), f"{backup_id}/{info.name}")

    def verify(self) -> list[tuple[str, str]]:
        """Every chunk of the chain read and checked; the problems found and their chunks (empty: sound)."""
        problems = []
        every = [(manifest.backup_id, info) for manifest in self.chain for info in manifest.chunks]
        for backup_id, info, data, problem in read_checked(self.dest, every):
            if problem:
                problems.append((problem, f"{backup_id}/{info.name}"))
            else:
                assert data is not None
                self.checked_chunks += 1
                self.checked_bytes += len(data)
            self.progress()
        return problems

    def kv_state(self, tenant_id: str, family: str) -> dict[bytes, bytes]:
        """A family of a tenant as of the chain's last backup."""
        state: dict[bytes, bytes] = {}
        deleted = f"{family}.deleted"
        wanted = [
            (manifest, info)
            for manifest in fmt.since_restart(self.chain, tenant_id)
            for info in manifest.chunks
            if info.tenant_id == tenant_id and info.section in (family, deleted)
        ]
        for (_, info), records in zip(wanted, self.chunks(wanted), strict=True):
            if info.section == family:
                state.update(records)
            else:
                for key, _ in records:
                    state.pop(key, None)
        return state

    def events(self, tenant_id: str, cut: Cut) -> Iterator[tuple[int, bytes, model_pb2.StoredEvent]]:
        """The tenant's events in position order, up to the cut."""
        for manifest in fmt.since_restart(self.chain, tenant_id):
            if manifest.layout == "checkpoint":
                if not (yield from self._base_events(manifest, tenant_id, cut)):
                    return
                continue
            wanted: list[tuple[fmt.Manifest, fmt.ChunkInfo]] = []
            past_cut = False
            for info in manifest.chunks:
                if info.tenant_id != tenant_id or info.section != fmt.EVENTS:
                    continue
                if cut.passed(info.first_position, info.first_recorded_ns):
                    past_cut = True  # this chunk and every later one start after the cut
                    break
                wanted.append((manifest, info))
            if not (yield from self._chunk_events(wanted, cut)) or past_cut:
                return

    def _chunk_events(
        self, wanted: list[tuple[fmt.Manifest, fmt.ChunkInfo]], cut: Cut
    ) -> Generator[tuple[int, bytes, model_pb2.StoredEvent], None, bool]:
        """The events of these chunks up to the cut; returns False when the cut was reached."""
        for records in self.chunks(wanted):
            for key, value in records:
                position = keys.unpack_u64(key)
                ev = codec.decode_event(value)
                if cut.passed(position, from_timestamp(ev.recorded_at)):
                    return False
                self.events_done += 1
                yield position, value, ev
            self.progress()
        return True

    def _base_events(
        self, manifest: fmt.Manifest, tenant_id: str, cut: Cut
    ) -> Generator[tuple[int, bytes, model_pb2.StoredEvent], None, bool]:
        """A tenant's events from the checkpoint a "checkpoint"-layout backup holds (put back together by
        `materialize`); returns False when the cut was reached."""
        part = manifest.tenant(tenant_id)
        if part is None or self.base is None:
            return True
        t = part.number
        rows = scan(
            self.base[1]["events"], keys.event_key(t, part.from_position + 1), keys.event_key(t, part.to_position + 1)
        )
        for key, value in rows:
            position = keys.event_key_position(key)
            ev = codec.decode_event(value)
            if cut.passed(position, from_timestamp(ev.recorded_at)):
                return False
            self.events_done += 1
            if self.events_done % 4096 == 0:
                self.progress()
            yield position, value, ev
        return True

    def materialize(self, manifest: fmt.Manifest) -> None:
        """Put the checkpoint of a "checkpoint"-layout backup back together under the staging directory
        (its chunks were checked by `verify`), and open it read-only."""
        base = self.staging / "base"
        base.mkdir(parents=True, exist_ok=True)
        files = [(manifest.backup_id, info) for info in manifest.chunks if info.section == fmt.FILE]
        for _, info, data in read_sound(self.dest, files):
            target = base / Path(info.path).name
            with open(target, "r+b" if target.exists() else "wb") as f:
                f.seek(info.offset)
                f.write(fmt.decompress(data, info.name))
            self.checked_chunks += 1
            self.checked_bytes += len(data)
            self.progress()
        self.base = open_checkpoint(str(base))

    def tenant(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Build (or, in a dry run, count) one tenant's restore."""
        tenant_id = spec["tenant_id"]
        part = self.chain[-1].tenant(tenant_id)
        if part is None:
            raise fmt.FormatError(f"backup {self.chain[-1].backup_id} holds no tenant {tenant_id!r}", "missing")
        cut = Cut(spec.get("cut_position", NO_CUT), spec.get("cut_time_ns", NO_CUT), spec.get("stream_prefix", ""))
        t = spec["number"]
        tp = keys.tenant_prefix(t)
        out_dir = self.staging / f"t{t}"
        sizes = Sizes()
        writers: dict[str, Any] = {}

        def sst(family: str) -> Any:
            writer = writers.get(family)
            if writer is None:
                out_dir.mkdir(parents=True, exist_ok=True)
                writer = writers[family] = SstFileWriter(Options(raw_mode=True))
                writer.open(str(out_dir / f"{family}.sst"))
            return writer

        def put_sorted(family: str, items: list[tuple[bytes, bytes]]) -> None:
            items.sort()
            total = 0
            for key, value in items:
                total += len(key) + len(value)
                if not self.dry_run:
                    sst(family)[key] = value
            sizes.by_family[family] = sizes.by_family.get(family, 0) + total

        streams: dict[str, _Stream] = {}
        stream_idx: list[tuple[bytes, bytes]] = []
        type_idx: list[tuple[bytes, bytes]] = []
        id_idx: list[tuple[bytes, bytes]] = []
        category_idx: list[tuple[bytes, bytes]] = []
        separator = self.job["category_separator"]
        events, last_position, last_recorded, total = 0, 0, 0, 0
        prefix = cut.stream_prefix
        records = self.kv_state(tenant_id, "records")
        erased = erasures(records)
        for position, value, ev in self.events(tenant_id, cut):
            if prefix and not ev.stream_id.startswith(prefix):
                continue
            recorded = from_timestamp(ev.recorded_at)
            if erased and any(e.erases(ev, recorded) for e in erased):
                continue
            pos8 = keys.pack_u64(position)
            key = tp + pos8
            if not self.dry_run:
                sst("events")[key] = value
            total += len(key) + len(value)
            sid = ev.stream_id.encode()
            stream_idx.append((tp + sid + keys.SEP + keys.pack_u64(ev.version), pos8))
            type_idx.append((tp + ev.event_type.encode() + keys.SEP + pos8, b""))
            raw_id = codec.parse_uuid(ev.event_id)
            if raw_id is not None:
                id_idx.append((tp + raw_id, pos8))
            category_key = keys.category_type_key(t, ev.stream_id, ev.event_type, position, separator)
            if category_key is not None:
                category_idx.append((category_key, b""))
            s = streams.get(ev.stream_id)
            if s is None:
                streams[ev.stream_id] = _Stream(position, position, ev.version, recorded, recorded)
            else:
                s.last_position, s.version, s.updated_ns = position, ev.version, recorded
            events += 1
            last_position, last_recorded = position, recorded
        sizes.by_family["events"] = total
        put_sorted("stream_idx", stream_idx)
        put_sorted("type_idx", type_idx)
        put_sorted("id_idx", id_idx)
        put_sorted("category_type_idx", category_idx)
        del stream_idx, type_idx, id_idx, category_idx

        # Stream heads: as backed up when nothing is cut; otherwise from the events restored (a head
        # whose last event is before the cut stays as it was: its later versions were deleted ones).
        heads: dict[str, StreamHead] = {}
        for key, value in self.kv_state(tenant_id, "streams").items():
            stream_id = key.decode()
            if prefix and not stream_id.startswith(prefix):
                continue
            head = StreamHead.decode(value)
            if cut.any and head.last_position > last_position:
                cut_stream = streams.get(stream_id)
                if cut_stream is None:
                    continue
                head = StreamHead(
                    cut_stream.version,
                    head.first_position,
                    cut_stream.last_position,
                    head.created_ns,
                    cut_stream.updated_ns,
                )
            heads[stream_id] = head
        for stream_id, s in streams.items():
            if stream_id not in heads:  # only when the backup lost a head: rebuild it
                heads[stream_id] = StreamHead(s.version, s.first_position, s.last_position, s.created_ns, s.updated_ns)
        put_sorted("streams", [(tp + sid.encode(), h.encode()) for sid, h in heads.items()])

        snapshots = []
        for key, value in self.kv_state(tenant_id, "snapshots").items():
            # stream id, 0x00, 8-byte version (the version may hold zero bytes: cut from the end)
            kept = heads.get(key[:-9].decode()) if len(key) > 9 else None
            if kept is not None and keys.unpack_u64(key[-8:]) <= kept.version:
                snapshots.append((tp + key, value))
        put_sorted("snapshots", snapshots)

        requests = []
        if not prefix:  # request results belong to no stream one could select
            for key, value in self.kv_state(tenant_id, "requests").items():
                if cut.any:
                    result = model_pb2.AppendResult.FromString(value[_REQUEST_PREFIX:])
                    if result.last_position > last_position:
                        continue
                requests.append((tp + key, value))
        put_sorted("requests", requests)

        put_sorted("records", [(tp + k, v) for k, v in records.items()])
        key_ids = [k[len(TENANT_KEYS_NS) :] for k in records if k.startswith(TENANT_KEYS_NS)]
        suite = self.kv_state(fmt.SUITE, "records") if key_ids else {}
        api_keys = {k.decode(): suite[API_KEYS_NS + k].hex() for k in key_ids if API_KEYS_NS + k in suite}

        files = {}
        for family, writer in writers.items():
            writer.finish()
            files[family] = str(out_dir / f"{family}.sst")
        sizes.other = sizes.by_family.get("snapshots", 0) + sizes.by_family.get("records", 0)
        sizes.stored = sum(sizes.by_family.values()) - sizes.other
        self.progress(force=True)
        return {
            "tenant_id": tenant_id,
            "number": t,
            "files": files,
            "stored_bytes": sizes.stored,
            "other_bytes": sizes.other,
            "events": events,
            "streams": len(heads),
            "last_position": last_position,
            "last_recorded_ns": last_recorded,
            "record_hex": part.record_hex,
            "record_revision": part.record_revision,
            "api_keys": api_keys,
            "backup_created_ns": self.chain[-1].created_ns,
        }

    def suite_records(self) -> dict[str, Any]:
        """The suite-wide records (tenant number 0), for a restore into an empty data directory."""
        items = sorted((keys.tenant_prefix(0) + k, v) for k, v in self.kv_state(fmt.SUITE, "records").items())
        path = self.staging / "suite-records.sst"
        if items and not self.dry_run:
            self.staging.mkdir(parents=True, exist_ok=True)
            writer = SstFileWriter(Options(raw_mode=True))
            writer.open(str(path))
            for key, value in items:
                writer[key] = value
            writer.finish()
        return {"files": {"records": str(path)} if items and not self.dry_run else {}, "records": len(items)}

    def run(self) -> dict[str, Any]:
        if self.job.get("verify_only"):
            problems = self.verify()
            return {"problems": [p for p, _ in problems], "chunks": self.checked_chunks, "bytes": self.checked_bytes}
        specs = self.job["tenants"]
        wanted = {s["tenant_id"] for s in specs}
        self.total_events = sum(
            p.events for t in wanted for m in fmt.since_restart(self.chain, t) if (p := m.tenant(t)) is not None
        )
        # Every chunk of the chain is checked before anything is built, so a damaged chain is refused
        # whole (and a dry run reports it too).
        problems = self.verify()
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise fmt.FormatError(problems[0][0] + more, "corrupt", problems[0][1])
        self.checked_chunks = self.checked_bytes = 0
        if self.chain[0].layout == "checkpoint":
            self.materialize(self.chain[0])
        try:
            tenants = [self.tenant(spec) for spec in specs]
            suite = self.suite_records() if self.job.get("suite") else None
        finally:
            if self.base is not None:
                db, families = self.base
                families.clear()
                db.close()
                self.base = None
        return {
            "tenants": tenants,
            "suite": suite,
            "chain": [m.backup_id for m in self.chain],
            "chunks": self.checked_chunks,
            "bytes": self.checked_bytes,
        }


def work(job: dict[str, Any], report: Callable[[dict[str, Any]], None]) -> bool:
    """Run a job, reporting its progress and its end (the summary, or the error); True when it succeeded."""
    try:
        summary = Loader(job, report).run()
    except fmt.FormatError as exc:
        report({"error": str(exc), "kind": exc.kind, "chunk": exc.chunk})
        return False
    except Exception as exc:  # reported to the storage service, which turns it into the RPC's error
        report({"error": f"{type(exc).__name__}: {exc}"})
        return False
    report({"summary": summary})
    return True


def main() -> None:
    if not work(json.loads(sys.stdin.read()), print_message):
        sys.exit(1)


if __name__ == "__main__":
    main()
