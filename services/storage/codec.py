"""Encoding of stored events and stream heads.

A stored event is a serialized StoredEvent (the wire format of allsource.v1.Event). EventInput shares its
first six field numbers, so the stored bytes are the client's EventData bytes followed by the fields the
server assigns (tenant, stream, version, position, recorded_at and, when the client gave none, event_id),
encoded here by hand:
this runs once per appended event and is far cheaper than building an Event message.
"""

from __future__ import annotations

import os
import random
import struct
import threading
import time
from dataclasses import dataclass

from allsource.storage.v1 import model_pb2

from shared.core.wire import length_delimited, varint

# Wire tags (field_number << 3 | wire_type).
_TAG_EVENT_ID = b"\x0a"  # 1, length-delimited
_TAG_CONTENT_TYPE = b"\x22"  # 4
_TAG_TENANT = b"\x3a"  # 7
_TAG_STREAM = b"\x42"  # 8
_TAG_RECORDED_AT = b"\x5a"  # 11, length-delimited
_TAG_REPEATED_EVENTS = b"\x0a"  # field 1 of the read responses: repeated Event
# version (9) and position (10) are fixed64: tag 0x49, 8 bytes little-endian, tag 0x51, 8 bytes.
_VERSION_POSITION = struct.Struct("<BQBQ")
# A canonical UUID string is 36 bytes: the event_id field of a server-assigned id starts with these two.
EVENT_ID_FIELD_PREFIX = _TAG_EVENT_ID + b"\x24"
JSON_CONTENT_TYPE_FIELD = _TAG_CONTENT_TYPE + b"\x10application/json"


_len_field = length_delimited


def timestamp_bytes(ns: int) -> bytes:
    """A serialized google.protobuf.Timestamp for nanoseconds since the epoch."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    body = b""
    if seconds:
        body += b"\x08" + varint(seconds)
    if nanos:
        body += b"\x10" + varint(nanos)
    return body


def tenant_field(tenant_id: str) -> bytes:
    """The tenant_id field of a stored event."""
    return _len_field(_TAG_TENANT, tenant_id.encode())


def stream_field(stream_id: str) -> bytes:
    """The stream_id field of a stored event."""
    return _len_field(_TAG_STREAM, stream_id.encode())


def stream_field_bytes(stream_id: bytes) -> bytes:
    """The stream_id field of a stored event, from the UTF-8 stream id."""
    return _TAG_STREAM + varint(len(stream_id)) + stream_id


def recorded_field(recorded_ns: int) -> bytes:
    """The recorded_at field of a stored event."""
    return _len_field(_TAG_RECORDED_AT, timestamp_bytes(recorded_ns))


def common_suffix(tenant_id: str, stream_id: str, recorded_ns: int) -> bytes:
    """The server-assigned fields shared by every event of one append."""
    return tenant_field(tenant_id) + stream_field(stream_id) + recorded_field(recorded_ns)


def version_position(version: int, position: int) -> bytes:
    """The version and position fields of one event."""
    return _VERSION_POSITION.pack(0x49, version, 0x51, position)


def event_suffix(common: bytes, version: int, position: int) -> bytes:
    """The server-assigned fields of one event."""
    return common + _VERSION_POSITION.pack(0x49, version, 0x51, position)


def event_id_field(event_id: str) -> bytes:
    """The event_id field, appended when the server assigned the id."""
    return _len_field(_TAG_EVENT_ID, event_id.encode())


def content_type_field(content_type: str) -> bytes:
    """The content_type field, appended when the client left it empty."""
    return _len_field(_TAG_CONTENT_TYPE, content_type.encode())


def repeated_events(serialized: list[bytes]) -> bytes:
    """Field 1 (repeated Event) of a read response, built from stored event bytes without parsing them."""
    return b"".join(_TAG_REPEATED_EVENTS + varint(len(b)) + b for b in serialized)


def decode_event(data: bytes) -> model_pb2.StoredEvent:
    """Parse stored event bytes."""
    return model_pb2.StoredEvent.FromString(data)


class UuidV7:
    """Monotonic UUIDv7 ids (RFC 9562, method 3: a counter in the random bits), cheap to make in bulk."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = 0
        self._counter = 0
        self._rand_a = 0
        # The random bits need to be unpredictable enough to avoid collisions between processes, not to
        # be secret: a PRNG seeded from the OS avoids a getrandom call every millisecond.
        self._random = random.Random(os.urandom(16))

    def take(self, count: int) -> list[bytes]:
        """`count` new ids as 16-byte values, increasing."""
        with self._lock:
            ms = time.time_ns() // 1_000_000
            if ms > self._last_ms:
                self._last_ms = ms
                # 62 random bits leave room for 2**61 ids per millisecond before the counter wraps.
                self._counter = self._random.getrandbits(61)
                self._rand_a = self._random.getrandbits(12)
            start = self._counter
            self._counter += count
            high = (self._last_ms << 16) | 0x7000 | self._rand_a
        out = []
        for n in range(start, start + count):
            low = 0x8000000000000000 | (n & 0x3FFFFFFFFFFFFFFF)
            out.append(_TWO_U64.pack(high, low))
        return out

    def take_with_text(self, count: int) -> list[tuple[bytes, str]]:
        """`count` new ids as (16 bytes, canonical string) pairs; the shared high half is formatted once."""
        raw = self.take(count)
        if count == 1:
            h = raw[0].hex()
            return [(raw[0], f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")]
        if not raw:
            return []
        h = raw[0][:8].hex()
        head = f"{h[:8]}-{h[8:12]}-{h[12:16]}-"
        out = []
        for r in raw:
            low = r[8:].hex()
            out.append((r, f"{head}{low[:4]}-{low[4:]}"))
        return out


_TWO_U64 = struct.Struct(">QQ")


def uuid_str(raw: bytes) -> str:
    """Canonical 8-4-4-4-12 lowercase form of a 16-byte UUID."""
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_HEX = set("0123456789abcdef")


def parse_uuid(text: str) -> bytes | None:
    """The 16 bytes of a canonical UUID string, or None when it is not one."""
    if len(text) != 36 or text[8] != "-" or text[13] != "-" or text[18] != "-" or text[23] != "-":
        return None
    compact = (text[:8] + text[9:13] + text[14:18] + text[19:23] + text[24:]).lower()
    if not _HEX.issuperset(compact):
        return None
    return bytes.fromhex(compact)


# Stream head: version, first position, last position, created ns, updated ns.
_HEAD = struct.Struct(">QQQqq")
HEAD_BYTES = _HEAD.size
# Where an encoded head holds its last position (big-endian: heads compare by it as bytes).
HEAD_LAST_POSITION = slice(16, 24)


@dataclass(slots=True)
class StreamHead:
    """The current state of a stream."""

    version: int
    first_position: int
    last_position: int
    created_ns: int
    updated_ns: int

    def encode(self) -> bytes:
        """Serialize for the streams column family."""
        return _HEAD.pack(self.version, self.first_position, self.last_position, self.created_ns, self.updated_ns)

    @classmethod
    def decode(cls, data: bytes) -> StreamHead:
        """Parse a streams column family value."""
        return cls(*_HEAD.unpack(data))
