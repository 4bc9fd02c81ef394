"""The backup format, version 1 (docs/BACKUP.md).

A backup is a directory (or an S3 prefix) named by its id, holding `manifest.json` and chunk files.
A chunk is one zstandard frame of records in columns (count, key lengths, value lengths, keys, values);
the manifest lists every chunk with its SHA-256, so a backup is checked without the suite running. The
manifest is written last: a backup without one is incomplete and never listed or restored.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import operator
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import zstandard

FORMAT = "allsource-backup"
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
_LEN = struct.Struct(">I")
# A chunk closes once it holds this many bytes before compression.
CHUNK_RAW_BYTES = 8 * 1024 * 1024
# Sections of a tenant's data. Events go by position (incremental: the positions after the parent's);
# the other families are copied whole in a full backup and as changes against the parent in an
# incremental one (an index of key digests per family makes the comparison). The stream, type and id
# indexes are rebuilt from the events at restore.
EVENTS = "events"
# A full backup of the whole suite may instead copy the checkpoint's files as they are (layout
# "checkpoint"): chunks of section "file" are consecutive pieces (path, offset) of those files, which a
# restore puts back together and opens read-only; the other families' digests (`<family>.index`) are
# still written, for the incremental backups on top of it.
FILE = "file"
KV_FAMILIES = ("streams", "snapshots", "requests", "records")
# The families an incremental compares by digest against the parent's `<family>.index`. Stream heads
# and stored append results are written only by appends; heads are removed only with their tenant,
# append results also by the sweep once past storage.request_id_ttl_s (services/storage/request_sweep.py):
# an incremental takes those written since the parent by their last position and recording time instead,
# with no index and no removals (a chain restored brings back swept results: past the TTL, they answer
# no retry, and the next sweep removes them again). Backups of format 1 have `streams.index` and
# `requests.index`, which nothing reads now.
INDEXED_FAMILIES = ("snapshots", "records")
# Suite-wide records (tenant number 0): API-key hashes, signing keys, flags, quota overrides, ledger.
SUITE = ""


class FormatError(Exception):
    """A manifest or chunk this reader cannot use; `kind` says which way: "corrupt" (a chunk missing or
    not matching its checksum; `chunk` names it), "chain" (an ancestor missing), "format" (a newer or
    damaged manifest) or "missing" (no such backup)."""

    def __init__(self, message: str, kind: str = "format", chunk: str = "") -> None:
        super().__init__(message)
        self.kind, self.chunk = kind, chunk


@dataclass
class ChunkInfo:
    """One chunk file of a backup."""

    name: str
    tenant_id: str
    section: str  # "events", a family of KV_FAMILIES, or "<family>.index" / "<family>.deleted"
    sha256: str
    stored_bytes: int
    raw_bytes: int
    records: int
    first_position: int = 0
    last_position: int = 0
    first_recorded_ns: int = 0
    last_recorded_ns: int = 0
    # Section "file": which file of the checkpoint, and where in it this piece goes.
    path: str = ""
    offset: int = 0


@dataclass
class TenantPart:
    """What a backup holds of one tenant."""

    tenant_id: str
    # The tenant's record (allsource.storage.v1.TenantRecord, hex) and revision as they were.
    record_hex: str
    record_revision: int
    # Events with positions in (from_position, to_position]; from_position is the parent's to_position.
    from_position: int
    to_position: int
    events: int
    first_recorded_ns: int = 0
    last_recorded_ns: int = 0
    # The tenant's internal number in the database the backup was taken from (a tenant deleted and made
    # again, or restored, gets a new one).
    number: int = 0
    # Format 2: an incremental backup that holds this tenant whole (events from position 0, every record)
    # because it does not continue the parent's backup of it (`continues`): the tenant was deleted and
    # made again, or restored, since, or the parent did not hold it. A restore of the chain reads this
    # tenant from here on and nothing of it from the backups before (`since_restart`).
    restart: bool = False
    # Format 2: the recording time (ns) of the tenant's event at to_position (0: none). The next
    # incremental checks the database still has that event there (`continues`).
    to_recorded_ns: int = 0


@dataclass
class Manifest:
    """Everything about a backup but its data."""

    backup_id: str
    kind: str  # "full" or "incremental"
    parent_backup_id: str
    created_ns: int
    suite_version: str
    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    label: str = ""
    schedule: str = ""
    tenants: list[TenantPart] = field(default_factory=list)
    chunks: list[ChunkInfo] = field(default_factory=list)
    # Whether the signing keys (auth) were included (backup.include_signing_keys).
    signing_keys: bool = False
    # "records" (chunks of records per tenant) or "checkpoint" (the checkpoint's files; full backups of
    # the whole suite).
    layout: str = "records"
    # A backup of the whole suite (its suite-wide records included, even when there were none to copy),
    # rather than of the tenants listed. Manifests written before this field tell it by their chunks.
    whole_suite: bool = False

    @property
    def covers_suite(self) -> bool:
        return self.whole_suite or any(c.tenant_id == SUITE for c in self.chunks)

    @property
    def events(self) -> int:
        return sum(t.events for t in self.tenants)

    @property
    def stored_bytes(self) -> int:
        return sum(c.stored_bytes for c in self.chunks)

    def tenant(self, tenant_id: str) -> TenantPart | None:
        return next((t for t in self.tenants if t.tenant_id == tenant_id), None)

    def to_json(self) -> bytes:
        # orjson writes dataclasses as they are (dataclasses.asdict copies every field of every chunk
        # first: with json.dumps, 1.9 ms of a 10K-event incremental backup's 25).
        return bytes(orjson.dumps(self, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))

    @classmethod
    def from_json(cls, data: bytes, where: str = MANIFEST) -> Manifest:
        """Parse a manifest; FormatError for anything but a version this reader knows."""
        try:
            raw: dict[str, Any] = json.loads(data)
        except ValueError as exc:
            raise FormatError(f"{where} is not JSON: {exc}") from None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise FormatError(f"{where} is not an AllSource backup manifest")
        version = raw.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
            raise FormatError(
                f"{where} has backup format version {version}; this reader knows versions 1 to {FORMAT_VERSION}"
                " (restore it with a newer AllSource)"
            )
        try:
            tenants = [TenantPart(**t) for t in raw.pop("tenants")]
            chunks = [ChunkInfo(**c) for c in raw.pop("chunks")]
            return cls(**raw, tenants=tenants, chunks=chunks)
        except (TypeError, KeyError) as exc:
            raise FormatError(f"{where} is damaged: {exc}") from None


def continues(part: TenantPart | None, number: int, last_position: int, recorded_at_to: int | None = None) -> bool:
    """Whether an incremental backup of a tenant (its internal number and last position now) may hold
    only what changed since `part`, the parent's backup of it: the same tenant (one deleted and made
    again, or restored, has a new number) whose log has not gone back, and, when `recorded_at_to` is
    given (the recording time of the tenant's event at the part's to_position now; -1 when there is
    none), still has the event the parent's backup ended with there. That last check catches a log that
    went back and grew again under the same number (a data directory restored offline to an earlier
    time numbers its tenants afresh, and may give one its old number). A part written without a number
    (0) is judged by the positions alone, one without to_recorded_ns (0) without that check."""
    if part is None or part.number not in (0, number) or part.to_position > last_position:
        return False
    if recorded_at_to is None or part.to_position == 0 or not part.to_recorded_ns:
        return True
    return recorded_at_to == part.to_recorded_ns


def since_restart(chain: list[Manifest], tenant_id: str) -> list[Manifest]:
    """The backups of a chain (full first) that a restore of a tenant reads: from the last one that holds
    the tenant whole (`TenantPart.restart`), else all of them."""
    start = 0
    for i, manifest in enumerate(chain):
        part = manifest.tenant(tenant_id)
        if part is not None and part.restart:
            start = i
    return chain[start:]


def merge(shares: list[Manifest]) -> Manifest:
    """One manifest from the manifests of the workers that shared a backup (services.storage.backup.dump):
    chunks in tenant and position order, each tenant's events and recording times over all shares."""
    merged = shares[0]
    for tenant in merged.tenants:
        parts = [p for m in shares for p in m.tenants if p.tenant_id == tenant.tenant_id]
        tenant.events = sum(p.events for p in parts)
        firsts = [p.first_recorded_ns for p in parts if p.first_recorded_ns]
        tenant.first_recorded_ns = min(firsts, default=0)
        tenant.last_recorded_ns = max((p.last_recorded_ns for p in parts), default=0)
    order = {t.tenant_id: i for i, t in enumerate(merged.tenants)}
    chunks = [c for m in shares for c in m.chunks]
    merged.chunks = sorted(
        chunks, key=lambda c: (order.get(c.tenant_id, len(order)), c.section != EVENTS, c.first_position, c.name)
    )
    return merged


def encode_columns(keys: Sequence[bytes], values: Sequence[bytes]) -> bytes:
    """Frame records before compression: `>I` count, the keys' lengths, the values' lengths (each
    `>I`), then every key, then every value. Columns, so that building and reading a chunk are a few
    C-level joins and unpacks rather than a loop of small ones per record."""
    n = len(keys)
    header = struct.pack(f">I{n}I{n}I", n, *map(len, keys), *map(len, values))
    return b"".join((header, *keys, *values))


def encode_run(first_position: int, values: Sequence[bytes]) -> bytes:
    """encode_columns of events at the consecutive positions first_position, first_position + 1...
    (keys: 8-byte big-endian positions), without a key object per event."""
    n = len(values)
    header = struct.pack(f">I{n}I{n}I", n, *itertools.repeat(8, n), *map(len, values))
    positions = struct.pack(f">{n}Q", *range(first_position, first_position + n))
    return b"".join((header, positions, *values))


def encode_records(records: Sequence[tuple[bytes, bytes]]) -> bytes:
    """encode_columns of (key, value) pairs."""
    return encode_columns([k for k, _ in records], [v for _, v in records])


def decode_records(raw: bytes, where: str) -> Iterator[tuple[bytes, bytes]]:
    """The records of a decompressed chunk."""
    keys, values = decode_columns(raw, where)
    yield from zip(keys, values, strict=True)


def decode_columns(raw: bytes, where: str) -> tuple[list[bytes], list[bytes]]:
    """The keys and the values of a decompressed chunk, as two lists. Cut by C-level calls (the offsets
    by accumulate, the pieces by slicing through map): a statement per record cost 55 ms for a parent's
    index of 100K records."""
    try:
        (n,) = _LEN.unpack_from(raw, 0)
        lengths = struct.unpack_from(f">{2 * n}I", raw, 4)
    except struct.error:
        raise FormatError(f"chunk {where} is damaged (its header is cut short)") from None
    # Keys then values, each as long as its length says, one after another from the end of the header.
    offsets = list(itertools.accumulate(lengths, initial=4 + 8 * n))
    if offsets[-1] != len(raw):
        raise FormatError(f"chunk {where} is damaged (a record runs past its end)")
    pieces = list(map(raw.__getitem__, map(slice, offsets[:-1], offsets[1:])))
    return pieces[:n], pieces[n:]


def compress(raw: bytes, level: int) -> bytes:
    return zstandard.ZstdCompressor(level=level).compress(raw)


def decompress(data: bytes, where: str) -> bytes:
    try:
        return zstandard.ZstdDecompressor().decompress(data, max_output_size=4 * CHUNK_RAW_BYTES)
    except zstandard.ZstdError as exc:
        raise FormatError(f"chunk {where} cannot be decompressed: {exc}") from None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_BLAKE2B_12 = functools.partial(hashlib.blake2b, digest_size=12)
_DIGEST = operator.methodcaller("digest")


def digest(value: bytes) -> bytes:
    """The short digest an incremental backup compares a record's value by."""
    return _BLAKE2B_12(value).digest()


def digests(values: Iterable[bytes]) -> list[bytes]:
    """`digest` of each value, by C-level calls (no Python frame per value)."""
    return list(map(_DIGEST, map(_BLAKE2B_12, values)))


def check_chunk(info: ChunkInfo, data: bytes | None, backup_id: str) -> str:
    """Why a chunk is unusable ("" when it is fine)."""
    if data is None:
        return f"chunk {backup_id}/{info.name} is missing"
    if len(data) != info.stored_bytes or sha256(data) != info.sha256:
        return f"chunk {backup_id}/{info.name} does not match its SHA-256 (damaged or altered)"
    return ""


def corrupt(problem: str, backup_id: str, info: ChunkInfo) -> FormatError:
    return FormatError(problem, "corrupt", f"{backup_id}/{info.name}")
