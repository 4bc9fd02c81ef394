import datetime

from allsource.storage.v1 import model_pb2 as _model_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StreamMetadata(_message.Message):
    __slots__ = ("max_age", "max_count", "truncate_before", "custom")
    class CustomEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MAX_AGE_FIELD_NUMBER: _ClassVar[int]
    MAX_COUNT_FIELD_NUMBER: _ClassVar[int]
    TRUNCATE_BEFORE_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_FIELD_NUMBER: _ClassVar[int]
    max_age: _duration_pb2.Duration
    max_count: int
    truncate_before: int
    custom: _containers.ScalarMap[str, str]
    def __init__(self, max_age: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max_count: _Optional[int] = ..., truncate_before: _Optional[int] = ..., custom: _Optional[_Mapping[str, str]] = ...) -> None: ...

class StreamLifecycleRecord(_message.Message):
    __slots__ = ("metadata", "metadata_version", "deleted_through", "tombstoned")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    METADATA_VERSION_FIELD_NUMBER: _ClassVar[int]
    DELETED_THROUGH_FIELD_NUMBER: _ClassVar[int]
    TOMBSTONED_FIELD_NUMBER: _ClassVar[int]
    metadata: StreamMetadata
    metadata_version: int
    deleted_through: int
    tombstoned: bool
    def __init__(self, metadata: _Optional[_Union[StreamMetadata, _Mapping]] = ..., metadata_version: _Optional[int] = ..., deleted_through: _Optional[int] = ..., tombstoned: _Optional[bool] = ...) -> None: ...

class LedgerEntry(_message.Message):
    __slots__ = ("kind", "stream_id", "through_version", "at", "events", "criteria", "metadata", "tenant_id")
    KIND_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    THROUGH_VERSION_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    CRITERIA_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    kind: str
    stream_id: str
    through_version: int
    at: _timestamp_pb2.Timestamp
    events: int
    criteria: DeleteEventsRequest
    metadata: StreamMetadata
    tenant_id: str
    def __init__(self, kind: _Optional[str] = ..., stream_id: _Optional[str] = ..., through_version: _Optional[int] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., events: _Optional[int] = ..., criteria: _Optional[_Union[DeleteEventsRequest, _Mapping]] = ..., metadata: _Optional[_Union[StreamMetadata, _Mapping]] = ..., tenant_id: _Optional[str] = ...) -> None: ...

class GetStreamMetadataRequest(_message.Message):
    __slots__ = ("tenant_id", "stream_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    stream_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., stream_id: _Optional[str] = ...) -> None: ...

class GetStreamMetadataResponse(_message.Message):
    __slots__ = ("stream_id", "metadata", "metadata_version", "deleted", "tombstoned", "stream_version")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    METADATA_VERSION_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    TOMBSTONED_FIELD_NUMBER: _ClassVar[int]
    STREAM_VERSION_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    metadata: StreamMetadata
    metadata_version: int
    deleted: bool
    tombstoned: bool
    stream_version: int
    def __init__(self, stream_id: _Optional[str] = ..., metadata: _Optional[_Union[StreamMetadata, _Mapping]] = ..., metadata_version: _Optional[int] = ..., deleted: _Optional[bool] = ..., tombstoned: _Optional[bool] = ..., stream_version: _Optional[int] = ...) -> None: ...

class SetStreamMetadataRequest(_message.Message):
    __slots__ = ("tenant_id", "stream_id", "metadata", "expected_metadata_version")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_METADATA_VERSION_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    stream_id: str
    metadata: StreamMetadata
    expected_metadata_version: int
    def __init__(self, tenant_id: _Optional[str] = ..., stream_id: _Optional[str] = ..., metadata: _Optional[_Union[StreamMetadata, _Mapping]] = ..., expected_metadata_version: _Optional[int] = ...) -> None: ...

class SetStreamMetadataResponse(_message.Message):
    __slots__ = ("metadata_version",)
    METADATA_VERSION_FIELD_NUMBER: _ClassVar[int]
    metadata_version: int
    def __init__(self, metadata_version: _Optional[int] = ...) -> None: ...

class DeleteStreamRequest(_message.Message):
    __slots__ = ("tenant_id", "stream_id", "expected_version", "hard")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    HARD_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    stream_id: str
    expected_version: _model_pb2.ExpectedVersion
    hard: bool
    def __init__(self, tenant_id: _Optional[str] = ..., stream_id: _Optional[str] = ..., expected_version: _Optional[_Union[_model_pb2.ExpectedVersion, _Mapping]] = ..., hard: _Optional[bool] = ...) -> None: ...

class DeleteStreamResponse(_message.Message):
    __slots__ = ("stream_version", "events_deleted")
    STREAM_VERSION_FIELD_NUMBER: _ClassVar[int]
    EVENTS_DELETED_FIELD_NUMBER: _ClassVar[int]
    stream_version: int
    events_deleted: int
    def __init__(self, stream_version: _Optional[int] = ..., events_deleted: _Optional[int] = ...) -> None: ...

class DeleteEventsRequest(_message.Message):
    __slots__ = ("tenant_id", "stream_id_prefix", "event_types", "start_time", "end_time", "dry_run")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_PREFIX_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    stream_id_prefix: str
    event_types: _containers.RepeatedScalarFieldContainer[str]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    dry_run: bool
    def __init__(self, tenant_id: _Optional[str] = ..., stream_id_prefix: _Optional[str] = ..., event_types: _Optional[_Iterable[str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class DeleteEventsResponse(_message.Message):
    __slots__ = ("events_deleted", "streams_affected", "bytes_freed", "dry_run")
    EVENTS_DELETED_FIELD_NUMBER: _ClassVar[int]
    STREAMS_AFFECTED_FIELD_NUMBER: _ClassVar[int]
    BYTES_FREED_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    events_deleted: int
    streams_affected: int
    bytes_freed: int
    dry_run: bool
    def __init__(self, events_deleted: _Optional[int] = ..., streams_affected: _Optional[int] = ..., bytes_freed: _Optional[int] = ..., dry_run: _Optional[bool] = ...) -> None: ...
