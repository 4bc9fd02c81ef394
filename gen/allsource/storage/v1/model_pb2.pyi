import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExpectedVersionKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPECTED_VERSION_KIND_UNSPECIFIED: _ClassVar[ExpectedVersionKind]
    EXPECTED_VERSION_KIND_ANY: _ClassVar[ExpectedVersionKind]
    EXPECTED_VERSION_KIND_NO_STREAM: _ClassVar[ExpectedVersionKind]
    EXPECTED_VERSION_KIND_STREAM_EXISTS: _ClassVar[ExpectedVersionKind]
    EXPECTED_VERSION_KIND_EXACT: _ClassVar[ExpectedVersionKind]

class TenantStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TENANT_STATUS_UNSPECIFIED: _ClassVar[TenantStatus]
    TENANT_STATUS_ACTIVE: _ClassVar[TenantStatus]
    TENANT_STATUS_INACTIVE: _ClassVar[TenantStatus]
EXPECTED_VERSION_KIND_UNSPECIFIED: ExpectedVersionKind
EXPECTED_VERSION_KIND_ANY: ExpectedVersionKind
EXPECTED_VERSION_KIND_NO_STREAM: ExpectedVersionKind
EXPECTED_VERSION_KIND_STREAM_EXISTS: ExpectedVersionKind
EXPECTED_VERSION_KIND_EXACT: ExpectedVersionKind
TENANT_STATUS_UNSPECIFIED: TenantStatus
TENANT_STATUS_ACTIVE: TenantStatus
TENANT_STATUS_INACTIVE: TenantStatus

class ExpectedVersion(_message.Message):
    __slots__ = ("kind", "version")
    KIND_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    kind: ExpectedVersionKind
    version: int
    def __init__(self, kind: _Optional[_Union[ExpectedVersionKind, str]] = ..., version: _Optional[int] = ...) -> None: ...

class EventInput(_message.Message):
    __slots__ = ("event_id", "event_type", "payload", "content_type", "metadata", "occurred_at")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    event_type: str
    payload: bytes
    content_type: str
    metadata: _containers.ScalarMap[str, str]
    occurred_at: _timestamp_pb2.Timestamp
    def __init__(self, event_id: _Optional[str] = ..., event_type: _Optional[str] = ..., payload: _Optional[bytes] = ..., content_type: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AppendInput(_message.Message):
    __slots__ = ("stream_id", "expected_version", "events", "request_id")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    expected_version: ExpectedVersion
    events: _containers.RepeatedCompositeFieldContainer[EventInput]
    request_id: str
    def __init__(self, stream_id: _Optional[str] = ..., expected_version: _Optional[_Union[ExpectedVersion, _Mapping]] = ..., events: _Optional[_Iterable[_Union[EventInput, _Mapping]]] = ..., request_id: _Optional[str] = ...) -> None: ...

class AppendResult(_message.Message):
    __slots__ = ("first_version", "last_version", "first_position", "last_position", "event_ids", "recorded_at", "deduplicated")
    FIRST_VERSION_FIELD_NUMBER: _ClassVar[int]
    LAST_VERSION_FIELD_NUMBER: _ClassVar[int]
    FIRST_POSITION_FIELD_NUMBER: _ClassVar[int]
    LAST_POSITION_FIELD_NUMBER: _ClassVar[int]
    EVENT_IDS_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    DEDUPLICATED_FIELD_NUMBER: _ClassVar[int]
    first_version: int
    last_version: int
    first_position: int
    last_position: int
    event_ids: _containers.RepeatedScalarFieldContainer[str]
    recorded_at: _timestamp_pb2.Timestamp
    deduplicated: bool
    def __init__(self, first_version: _Optional[int] = ..., last_version: _Optional[int] = ..., first_position: _Optional[int] = ..., last_position: _Optional[int] = ..., event_ids: _Optional[_Iterable[str]] = ..., recorded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deduplicated: _Optional[bool] = ...) -> None: ...

class StoredEvent(_message.Message):
    __slots__ = ("event_id", "event_type", "payload", "content_type", "metadata", "occurred_at", "tenant_id", "stream_id", "version", "position", "recorded_at")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    event_type: str
    payload: bytes
    content_type: str
    metadata: _containers.ScalarMap[str, str]
    occurred_at: _timestamp_pb2.Timestamp
    tenant_id: str
    stream_id: str
    version: int
    position: int
    recorded_at: _timestamp_pb2.Timestamp
    def __init__(self, event_id: _Optional[str] = ..., event_type: _Optional[str] = ..., payload: _Optional[bytes] = ..., content_type: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tenant_id: _Optional[str] = ..., stream_id: _Optional[str] = ..., version: _Optional[int] = ..., position: _Optional[int] = ..., recorded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class EventBatch(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[StoredEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[StoredEvent, _Mapping]]] = ...) -> None: ...

class Checkpoint(_message.Message):
    __slots__ = ("position",)
    POSITION_FIELD_NUMBER: _ClassVar[int]
    position: int
    def __init__(self, position: _Optional[int] = ...) -> None: ...

class CaughtUp(_message.Message):
    __slots__ = ("position",)
    POSITION_FIELD_NUMBER: _ClassVar[int]
    position: int
    def __init__(self, position: _Optional[int] = ...) -> None: ...

class EventFilter(_message.Message):
    __slots__ = ("stream_id", "stream_id_prefix", "event_types", "start_time", "end_time", "from_position", "to_position")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_PREFIX_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    FROM_POSITION_FIELD_NUMBER: _ClassVar[int]
    TO_POSITION_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    stream_id_prefix: str
    event_types: _containers.RepeatedScalarFieldContainer[str]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    from_position: int
    to_position: int
    def __init__(self, stream_id: _Optional[str] = ..., stream_id_prefix: _Optional[str] = ..., event_types: _Optional[_Iterable[str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., from_position: _Optional[int] = ..., to_position: _Optional[int] = ...) -> None: ...

class StreamInfo(_message.Message):
    __slots__ = ("stream_id", "version", "first_position", "last_position", "created_at", "updated_at")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FIRST_POSITION_FIELD_NUMBER: _ClassVar[int]
    LAST_POSITION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    version: int
    first_position: int
    last_position: int
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, stream_id: _Optional[str] = ..., version: _Optional[int] = ..., first_position: _Optional[int] = ..., last_position: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TenantRecord(_message.Message):
    __slots__ = ("tenant_id", "status", "quotas", "created_at")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    QUOTAS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    status: TenantStatus
    quotas: TenantQuotas
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, tenant_id: _Optional[str] = ..., status: _Optional[_Union[TenantStatus, str]] = ..., quotas: _Optional[_Union[TenantQuotas, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TenantQuotas(_message.Message):
    __slots__ = ("max_events_per_day", "max_storage_bytes", "max_events_per_hour", "max_events_per_minute")
    MAX_EVENTS_PER_DAY_FIELD_NUMBER: _ClassVar[int]
    MAX_STORAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_EVENTS_PER_HOUR_FIELD_NUMBER: _ClassVar[int]
    MAX_EVENTS_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    max_events_per_day: int
    max_storage_bytes: int
    max_events_per_hour: int
    max_events_per_minute: int
    def __init__(self, max_events_per_day: _Optional[int] = ..., max_storage_bytes: _Optional[int] = ..., max_events_per_hour: _Optional[int] = ..., max_events_per_minute: _Optional[int] = ...) -> None: ...

class QuotaOverrideRecord(_message.Message):
    __slots__ = ("tenant_id", "quota", "value", "expires_at")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    QUOTA_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    quota: str
    value: int
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, tenant_id: _Optional[str] = ..., quota: _Optional[str] = ..., value: _Optional[int] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StorageStats(_message.Message):
    __slots__ = ("backend", "events", "streams", "tenants", "disk_bytes", "live_data_bytes", "appends_committed", "write_batches", "subscriptions", "data_dir")
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    TENANTS_FIELD_NUMBER: _ClassVar[int]
    DISK_BYTES_FIELD_NUMBER: _ClassVar[int]
    LIVE_DATA_BYTES_FIELD_NUMBER: _ClassVar[int]
    APPENDS_COMMITTED_FIELD_NUMBER: _ClassVar[int]
    WRITE_BATCHES_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    DATA_DIR_FIELD_NUMBER: _ClassVar[int]
    backend: str
    events: int
    streams: int
    tenants: int
    disk_bytes: int
    live_data_bytes: int
    appends_committed: int
    write_batches: int
    subscriptions: int
    data_dir: str
    def __init__(self, backend: _Optional[str] = ..., events: _Optional[int] = ..., streams: _Optional[int] = ..., tenants: _Optional[int] = ..., disk_bytes: _Optional[int] = ..., live_data_bytes: _Optional[int] = ..., appends_committed: _Optional[int] = ..., write_batches: _Optional[int] = ..., subscriptions: _Optional[int] = ..., data_dir: _Optional[str] = ...) -> None: ...
