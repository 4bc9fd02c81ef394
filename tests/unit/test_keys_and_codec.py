"""Key encoding, byte order and the stored-event codec."""

from __future__ import annotations

import random
import uuid

from allsource.v1 import event_pb2

from services.storage import codec, keys
from shared.core.wire import varint


def test_event_keys_sort_numerically_and_stay_inside_their_tenant() -> None:
    positions = [0, 1, 2, 255, 256, 65535, 65536, 2**32, 2**63, 2**64 - 1]
    for tenant in (1, 2, 255, 256):
        encoded = [keys.event_key(tenant, p) for p in positions]
        assert encoded == sorted(encoded)
        assert all(keys.tenant_prefix(tenant) <= k < keys.tenant_upper(tenant) for k in encoded)
        assert all(keys.event_key_position(k) == p for k, p in zip(encoded, positions, strict=True))
    assert keys.event_key(1, 2**64 - 1) < keys.event_key(2, 0)


def test_stream_index_keys_never_interleave_between_streams() -> None:
    # "a" and "a-b" must not share a range even though one is a prefix of the other.
    a = [keys.stream_index_key(keys.stream_prefix(1, "a"), v) for v in (1, 2, 300, 2**40)]
    ab = [keys.stream_index_key(keys.stream_prefix(1, "a-b"), v) for v in (1, 2)]
    assert a == sorted(a)
    assert max(a) < min(ab)
    assert all(k.startswith(keys.stream_prefix(1, "a")) for k in a)
    assert not any(k.startswith(keys.stream_prefix(1, "a")) for k in ab)


def test_next_key_bounds_prefixes() -> None:
    rng = random.Random(7)
    for _ in range(200):
        prefix = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 6)))
        upper = keys.next_key(prefix)
        assert upper > prefix
        assert upper > prefix + b"\xff" * 8
        assert not upper.startswith(prefix)
    assert keys.next_key(b"a\xff") == b"b"


def test_varint_matches_protobuf() -> None:
    assert varint(0) == b"\x00"
    for value in (1, 127, 128, 300, 2**32, 2**63 - 1):  # proto3 omits zero, so compare from 1
        assert varint(value) == event_pb2.Checkpoint(position=value).SerializeToString()[1:]


def test_stored_event_bytes_parse_as_the_full_event() -> None:
    data = event_pb2.EventData(event_type="OrderPlaced", payload=b'{"a":1}', metadata={"k": "v"})
    data.occurred_at.FromSeconds(1_700_000_000)
    recorded = 1_790_000_000_123_456_789
    stored = (
        data.SerializeToString()
        + codec.event_id_field("0190c3a0-0000-7000-8000-000000000001")
        + codec.content_type_field("application/json")
        + codec.event_suffix(codec.common_suffix("default", "order-1", recorded), 7, 1234567)
    )
    ev = event_pb2.Event.FromString(stored)
    expected = event_pb2.Event(
        event_id="0190c3a0-0000-7000-8000-000000000001",
        event_type="OrderPlaced",
        payload=b'{"a":1}',
        content_type="application/json",
        metadata={"k": "v"},
        occurred_at=data.occurred_at,
        tenant_id="default",
        stream_id="order-1",
        version=7,
        position=1234567,
    )
    expected.recorded_at.FromNanoseconds(recorded)
    assert ev == expected


def test_repeated_events_builds_a_valid_response() -> None:
    from allsource.v1 import query_pb2

    events = [event_pb2.Event(event_id=str(i), position=i, payload=b"x" * i * 50) for i in range(1, 5)]
    raw = codec.repeated_events([e.SerializeToString() for e in events])
    assert list(query_pb2.StreamEventsResponse.FromString(raw).events) == events


def test_uuid_v7_ids_are_valid_unique_and_increasing() -> None:
    gen = codec.UuidV7()
    ids = gen.take(1000) + gen.take(1) + gen.take(500)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for raw in ids[:10]:
        parsed = uuid.UUID(bytes=raw)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert codec.parse_uuid(codec.uuid_str(raw)) == raw
        assert codec.uuid_str(raw) == str(parsed)


def test_parse_uuid_rejects_non_uuids() -> None:
    for text in ("", "x" * 36, "0190c3a0000070008000000000000001", "0190c3a0-0000-7000-8000-00000000000g"):
        assert codec.parse_uuid(text) is None
    assert codec.parse_uuid("0190C3A0-0000-7000-8000-000000000001") == bytes.fromhex("0190c3a0000070008000000000000001")


def test_stream_head_round_trip() -> None:
    head = codec.StreamHead(5, 10, 99, -1, 2**62)
    assert codec.StreamHead.decode(head.encode()) == head
