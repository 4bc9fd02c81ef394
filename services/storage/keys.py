"""Key layouts of the RocksDB column families.

Every key starts with the tenant's 4-byte internal number, so each scan is a tenant-bounded range scan.
Numbers are fixed-width big-endian so that byte order is numeric order (rocksdict has no custom
comparators). Stream ids and event types never contain control characters (ingest rejects them), so a
0x00 byte safely ends them inside a key.
"""

from __future__ import annotations

import struct

TENANT = struct.Struct(">I")
U64 = struct.Struct(">Q")
TENANT_POS = struct.Struct(">IQ")
SEP = b"\x00"
MAX_TENANT = 0xFFFFFFFF


def tenant_prefix(tenant_no: int) -> bytes:
    """The 4-byte prefix of every key of a tenant."""
    return TENANT.pack(tenant_no)


def tenant_upper(tenant_no: int) -> bytes:
    """The smallest key after every key of a tenant."""
    return TENANT.pack(tenant_no + 1) if tenant_no < MAX_TENANT else b"\xff" * 5


# events: T + position -> serialized allsource.v1.Event
def event_key(tenant_no: int, position: int) -> bytes:
    """Key of the event at a tenant log position."""
    return TENANT_POS.pack(tenant_no, position)


def event_key_position(key: bytes) -> int:
    """The position in an event key."""
    return U64.unpack_from(key, 4)[0]


# streams: T + stream_id -> stream head
def stream_key(tenant_no: int, stream_id: str) -> bytes:
    """Key of a stream's head record."""
    return TENANT.pack(tenant_no) + stream_id.encode()


# stream_idx: T + stream_id + 0x00 + version -> position
def stream_prefix(tenant_no: int, stream_id: str) -> bytes:
    """Common prefix of a stream's index entries."""
    return TENANT.pack(tenant_no) + stream_id.encode() + SEP


def stream_index_key(prefix: bytes, version: int) -> bytes:
    """Index key of one stream version, given the stream's prefix."""
    return prefix + U64.pack(version)


# type_idx: T + event_type + 0x00 + position -> b""
def type_prefix(tenant_no: int, event_type: str) -> bytes:
    """Common prefix of an event type's index entries."""
    return TENANT.pack(tenant_no) + event_type.encode() + SEP


# category_type_idx: T + category + 0x00 + event_type + 0x00 + position -> b"" (F13). The category is the
# part of the stream id before the first separator (storage.category_separator); a stream id without the
# separator has no category and no entry. The layout is built only by `category_type_prefix`: the writer,
# the backfill, a restore's index rebuild and the reads all call it, so they cannot drift.
def stream_category(stream_id: str, separator: str) -> str | None:
    """The category of a stream id (the text before the first separator), or None without one."""
    cut = stream_id.find(separator)
    return stream_id[:cut] if cut > 0 else None


def category_type_prefix(tenant_no: int, stream_id: str, event_type: str, separator: str) -> bytes | None:
    """The category/type index prefix of a stream's events of one type (an event's key is this prefix and
    its 8-byte position), or None when the stream id has no category. A filter's stream prefix that is a
    whole category ("order-") gives the prefix of that category's entries."""
    category = stream_category(stream_id, separator)
    if category is None:
        return None
    return TENANT.pack(tenant_no) + category.encode() + SEP + event_type.encode() + SEP


def category_type_key(tenant_no: int, stream_id: str, event_type: str, position: int, separator: str) -> bytes | None:
    """The category/type index key of one event, or None when its stream id has no category."""
    prefix = category_type_prefix(tenant_no, stream_id, event_type, separator)
    return None if prefix is None else prefix + U64.pack(position)


# id_idx: T + 16-byte UUID -> position
def id_key(tenant_no: int, uuid_bytes: bytes) -> bytes:
    """Key of an event-id index entry."""
    return TENANT.pack(tenant_no) + uuid_bytes


# requests: T + request_id -> fingerprint + recorded_ns + serialized AppendEventsResponse
def request_key(tenant_no: int, request_id: str) -> bytes:
    """Key of a stored append result (value: 16-byte fingerprint, the append's recording time as 8 bytes
    big-endian, the serialized AppendResult)."""
    return TENANT.pack(tenant_no) + request_id.encode()


# Where a stored append result holds its append's recording time (big-endian: compares as bytes).
REQUEST_RECORDED = slice(16, 24)


# snapshots: T + stream_id + 0x00 + version -> recorded_ns + JSON state
def snapshot_key(tenant_no: int, stream_id: str, version: int) -> bytes:
    """Key of a stream's state snapshot at a version."""
    return stream_prefix(tenant_no, stream_id) + U64.pack(version)


# records: T + namespace + 0x00 + key -> revision + value (control plane; T = 0 for suite-wide records)
def record_prefix(tenant_no: int, namespace: str) -> bytes:
    """Common prefix of a namespace's records."""
    return TENANT.pack(tenant_no) + namespace.encode() + SEP


# meta: named records of the storage service itself
META_TENANT = b"tenant/"  # + tenant_id -> tenant number
META_TENANT_RECORD = b"tenantrec/"  # + tenant_id -> revision + serialized allsource.v1.Tenant
META_TENANT_DELETING = b"tenant-deleting/"  # + tenant_id -> the number being purged (resumed at start)
META_TENANT_SEQ = b"tenant-seq"  # -> the last tenant number allocated (numbers are never reused)
META_STREAM_COUNT = b"streams/"  # + T -> number of streams
# Usage, per tenant, kept exact on every write (see TenantStats):
META_USAGE_BYTES = b"usage-bytes/"  # + T -> bytes written by the event writer (events, indexes, heads)
META_OTHER_BYTES = b"usage-obytes/"  # + T -> bytes of snapshots and control-plane records
META_HOUR_EVENTS = b"usage-events/"  # + T + hour -> events appended in that UTC hour
META_HOUR_QUERIES = b"usage-queries/"  # + T + hour -> query calls counted in that UTC hour
META_MINUTE_EVENTS = b"usage-mevents/"  # + T -> the current UTC minute (8 bytes) and its event count (8)
# + T -> the tenant's head position when events were last removed (erased, swept): the last events on
# disk may then be below it, and positions are never given out twice.
META_LAST_POSITION = b"last-position/"
# The category/type index (F13): the separator it was built with (a change rebuilds it), and for each
# tenant with events from before it (or before a separator change) the backfill's progress, resumed at start.
META_CATEGORY_SEPARATOR = b"idx-category-separator"  # -> the separator, UTF-8
META_CATEGORY_BACKFILL = b"idx-category-backfill/"  # + T -> last position to cover (8) + next position (8)
# Every per-tenant meta prefix (purged with the tenant).
META_TENANT_PREFIXES = (
    META_STREAM_COUNT,
    META_USAGE_BYTES,
    META_OTHER_BYTES,
    META_HOUR_EVENTS,
    META_HOUR_QUERIES,
    META_MINUTE_EVENTS,
    META_CATEGORY_BACKFILL,
    META_LAST_POSITION,
)
HOUR_NS = 3600 * 1_000_000_000
HOUR = struct.Struct(">I")


def hour_events_key(tenant_no: int, hour: int) -> bytes:
    """Meta key of a tenant's event count in one UTC hour (hours since the epoch)."""
    return META_HOUR_EVENTS + TENANT.pack(tenant_no) + HOUR.pack(hour)


def hour_queries_key(tenant_no: int, hour: int) -> bytes:
    """Meta key of a tenant's query count in one UTC hour."""
    return META_HOUR_QUERIES + TENANT.pack(tenant_no) + HOUR.pack(hour)


def next_key(key: bytes) -> bytes:
    """The smallest key greater than every key that starts with `key`."""
    stripped = key.rstrip(b"\xff")
    if not stripped:
        return b"\xff" * (len(key) + 1)
    return stripped[:-1] + bytes([stripped[-1] + 1])


def pack_u64(value: int) -> bytes:
    """8 bytes big-endian."""
    return U64.pack(value)


def unpack_u64(value: bytes, offset: int = 0) -> int:
    """Read 8 bytes big-endian."""
    return U64.unpack_from(value, offset)[0]


# Stream lifecycle (services.storage.lifecycle): record namespaces of the records family, so the tenant's
# purge, its record bytes and (F10) its backups include them.
LIFECYCLE_STREAMS_NS = "lifecycle.streams"  # stream_id -> revision + StreamLifecycleRecord
LIFECYCLE_LEDGER_NS = "lifecycle.ledger"  # 20-digit ns time + "-" + 6-digit seq -> revision + LedgerEntry
