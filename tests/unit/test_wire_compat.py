"""The storage service's types and the public API stay wire-compatible where bytes cross between them.

The public services forward bytes rather than re-encode them: appends go to storage as the caller's
AppendEventsRequest bytes inside a hand-encoded AppendOperation, stored events are the client's
EventData bytes plus hand-encoded fields, and read responses from storage are parsed as the public
response types. Each pair below must keep the same field numbers and types, and every hand-encoded
message must decode to the same values under both descriptors. A drift fails here, not in production.
"""

from __future__ import annotations

import pytest
from allsource.storage.v1 import backup_pb2 as storage_backup
from allsource.storage.v1 import model_pb2, storage_pb2
from allsource.v1 import admin_pb2, backup_pb2, event_pb2, ingest_pb2, query_pb2, tenant_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.json_format import MessageToDict

from services.ingest.coalescer import operation_bytes
from services.storage import codec
from services.storage.subscribe import events_message
from shared.core.wire import varint

# (storage type, public type, storage declares every public field)
MIRRORS = [
    (model_pb2.EventInput, event_pb2.EventData, True),
    (model_pb2.ExpectedVersion, ingest_pb2.ExpectedVersion, True),
    (model_pb2.AppendInput, ingest_pb2.AppendEventsRequest, True),
    (model_pb2.AppendResult, ingest_pb2.AppendEventsResponse, True),
    (model_pb2.StoredEvent, event_pb2.Event, True),
    (model_pb2.EventBatch, event_pb2.EventBatch, True),
    (model_pb2.Checkpoint, event_pb2.Checkpoint, True),
    (model_pb2.CaughtUp, event_pb2.CaughtUp, True),
    (model_pb2.EventFilter, event_pb2.EventFilter, True),
    (model_pb2.StreamInfo, event_pb2.StreamInfo, True),
    (model_pb2.StorageStats, admin_pb2.StorageStats, True),
    (model_pb2.TenantRecord, tenant_pb2.Tenant, False),
    (model_pb2.TenantQuotas, tenant_pb2.TenantQuotas, False),
    (model_pb2.QuotaOverrideRecord, admin_pb2.QuotaOverride, False),
    (storage_pb2.SubscribeResponse, query_pb2.SubscribeResponse, True),
    (storage_pb2.IndexStats, admin_pb2.IndexStats, True),  # GetIndexStats: copied by its bytes
    # Backups: the admin service forwards every request and response (recast).
    *[
        (getattr(storage_backup, name), getattr(backup_pb2, name), True)
        for name in storage_backup.DESCRIPTOR.message_types_by_name
    ],
]
# Storage read responses parsed as public responses: only field 1 (the events) is shared; the storage
# response's other fields must be unknown to the public type, so they are dropped, never misread.
FORWARDED = [
    (storage_pb2.GetEventResponse, query_pb2.GetEventResponse),
    (storage_pb2.ReadStreamResponse, query_pb2.ReadStreamResponse),
    (storage_pb2.ReadEventsResponse, query_pb2.ListEventsResponse),
    (storage_pb2.ReadEventsResponse, query_pb2.StreamEventsResponse),
    (storage_pb2.ReadStreamResponse, query_pb2.StreamReadResult),
]
PAIRS = {s.DESCRIPTOR.full_name: p.DESCRIPTOR.full_name for s, p, _ in MIRRORS}
# Fields of a storage request that the admin service sets itself and a public caller cannot: the public
# twin must leave their numbers unused (a public field of that number would be forwarded into them).
STORAGE_ONLY = {("allsource.storage.v1.ListBackupsRequest", 4)}  # tenant_id: a tenant's administrator's


def _enum_compatible(ours: EnumDescriptor, theirs: EnumDescriptor) -> list[str]:
    a = {v.number: v.name for v in ours.values}
    b = {v.number: v.name for v in theirs.values}
    return [] if a == b else [f"enum {ours.full_name} {a} != {theirs.full_name} {b}"]


def _field_problems(ours: FieldDescriptor, theirs: FieldDescriptor | None, where: str) -> list[str]:
    if theirs is None:
        return [f"{where}: field {ours.number} ({ours.name}) is missing from the public type"]
    out = []
    if ours.type != theirs.type or ours.is_repeated != theirs.is_repeated:
        out.append(f"{where}: field {ours.number} type or repetition differ")
    if ours.message_type is not None and theirs.message_type is not None:
        ours_name, theirs_name = ours.message_type.full_name, theirs.message_type.full_name
        if (
            ours_name != theirs_name
            and PAIRS.get(ours_name) != theirs_name
            and not ours.message_type.GetOptions().map_entry
        ):
            out.append(f"{where}: field {ours.number} is {ours_name}, which does not mirror {theirs_name}")
    if ours.enum_type is not None and theirs.enum_type is not None:
        out += _enum_compatible(ours.enum_type, theirs.enum_type)
    return out


def _problems(ours: Descriptor, theirs: Descriptor, complete: bool) -> list[str]:
    by_number = {f.number: f for f in theirs.fields}
    out = []
    for field in ours.fields:
        if (ours.full_name, field.number) in STORAGE_ONLY and field.number not in by_number:
            continue
        out += _field_problems(field, by_number.get(field.number), ours.full_name)
    if complete:
        missing = sorted(set(by_number) - {f.number for f in ours.fields})
        if missing:
            out.append(f"{ours.full_name} lacks public fields {missing} of {theirs.full_name}")
    return out


@pytest.mark.parametrize(("ours", "theirs", "complete"), MIRRORS, ids=lambda x: getattr(x, "__name__", ""))
def test_each_storage_type_mirrors_its_public_twin(ours: type, theirs: type, complete: bool) -> None:
    assert _problems(ours.DESCRIPTOR, theirs.DESCRIPTOR, complete) == []


def test_the_expected_version_kinds_and_tenant_statuses_match() -> None:
    assert _enum_compatible(model_pb2.ExpectedVersionKind.DESCRIPTOR, ingest_pb2.ExpectedVersionKind.DESCRIPTOR) == []
    assert _enum_compatible(model_pb2.TenantStatus.DESCRIPTOR, tenant_pb2.TenantStatus.DESCRIPTOR) == []


@pytest.mark.parametrize(("ours", "theirs"), FORWARDED, ids=lambda x: x.DESCRIPTOR.full_name)
def test_forwarded_read_responses_share_only_their_events(ours: type, theirs: type) -> None:
    public = {f.number: f for f in theirs.DESCRIPTOR.fields}
    for field in ours.DESCRIPTOR.fields:
        if field.number == 1:
            assert _field_problems(field, public.get(1), ours.DESCRIPTOR.full_name) == []
        else:
            assert field.number not in public, f"{ours.DESCRIPTOR.full_name}.{field.name} would be misread"


def _sample_request() -> ingest_pb2.AppendEventsRequest:
    request = ingest_pb2.AppendEventsRequest(
        stream_id="order-1",
        expected_version=ingest_pb2.ExpectedVersion(kind=ingest_pb2.EXPECTED_VERSION_KIND_EXACT, version=3),
        events=[
            event_pb2.EventData(
                event_id="0190c3a0-0000-7000-8000-000000000001",
                event_type="OrderPlaced",
                payload=b'{"a":1}',
                content_type="application/json",
                metadata={"k": "v"},
            ),
            event_pb2.EventData(event_type="OrderPaid", payload=b"\x00\xff"),
        ],
        request_id="r-1",
    )
    request.events[0].occurred_at.FromSeconds(1_700_000_000)
    return request


def _same(a: object, b: object) -> None:
    assert MessageToDict(a) == MessageToDict(b)  # type: ignore[arg-type]


def test_a_coalesced_append_operation_decodes_as_the_storage_request() -> None:
    public = _sample_request()
    data = operation_bytes("acme", public, "scope-token")
    request = storage_pb2.AppendRequest.FromString(data)
    (operation,) = request.operations
    assert (operation.tenant_id, operation.scope) == ("acme", "scope-token")
    _same(operation.request, public)
    assert operation.request.SerializeToString() == public.SerializeToString()


def _stored_event_bytes() -> tuple[bytes, int]:
    data = _sample_request().events[0]
    recorded = 1_790_000_000_123_456_789
    return (
        data.SerializeToString() + codec.event_suffix(codec.common_suffix("acme", "order-1", recorded), 7, 1234567),
        recorded,
    )


def test_stored_event_bytes_decode_alike_under_both_descriptors() -> None:
    stored, recorded = _stored_event_bytes()
    internal, public = model_pb2.StoredEvent.FromString(stored), event_pb2.Event.FromString(stored)
    _same(internal, public)
    assert (public.tenant_id, public.stream_id, public.version, public.position) == ("acme", "order-1", 7, 1234567)
    assert public.recorded_at.ToNanoseconds() == recorded


def test_hand_built_read_responses_decode_as_the_public_responses() -> None:
    stored, _ = _stored_event_bytes()
    events = codec.repeated_events([stored, stored])
    for storage_type, public_type in FORWARDED:
        if storage_type is storage_pb2.GetEventResponse:
            raw = b"\x0a" + varint(len(stored)) + stored  # as the storage servicer builds GetEvent
        else:
            message = storage_type.FromString(events)
            setattr(message, next(f.name for f in storage_type.DESCRIPTOR.fields if f.number == 10), 5)
            raw = message.SerializeToString()
        public = public_type.FromString(raw)
        internal = storage_type.FromString(raw)
        public_events = [public.event] if hasattr(public, "event") else list(public.events)
        internal_events = [internal.event] if hasattr(internal, "event") else list(internal.events)
        assert len(public_events) == len(internal_events) >= 1
        for a, b in zip(public_events, internal_events, strict=True):
            _same(a, b)


def test_hand_built_subscription_messages_decode_as_the_public_message() -> None:
    stored, _ = _stored_event_bytes()
    raw = events_message([stored]).SerializeToString()
    public = query_pb2.SubscribeResponse.FromString(raw)
    assert public.WhichOneof("content") == "events"
    _same(public.events.events[0], event_pb2.Event.FromString(stored))
