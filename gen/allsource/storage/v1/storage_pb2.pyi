import datetime

from allsource.storage.v1 import backup_pb2 as _backup_pb2
from allsource.storage.v1 import lifecycle_pb2 as _lifecycle_pb2
from allsource.storage.v1 import groups_pb2 as _groups_pb2
from allsource.storage.v1 import model_pb2 as _model_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AppendOperation(_message.Message):
    __slots__ = ("tenant_id", "request", "scope")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    request: _model_pb2.AppendInput
    scope: str
    def __init__(self, tenant_id: _Optional[str] = ..., request: _Optional[_Union[_model_pb2.AppendInput, _Mapping]] = ..., scope: _Optional[str] = ...) -> None: ...

class AppendRequest(_message.Message):
    __slots__ = ("operations",)
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    operations: _containers.RepeatedCompositeFieldContainer[AppendOperation]
    def __init__(self, operations: _Optional[_Iterable[_Union[AppendOperation, _Mapping]]] = ...) -> None: ...

class AppendOutcome(_message.Message):
    __slots__ = ("success", "error", "quota_warning")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    QUOTA_WARNING_FIELD_NUMBER: _ClassVar[int]
    success: _model_pb2.AppendResult
    error: _status_pb2.Status
    quota_warning: str
    def __init__(self, success: _Optional[_Union[_model_pb2.AppendResult, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., quota_warning: _Optional[str] = ...) -> None: ...

class AppendResponse(_message.Message):
    __slots__ = ("outcomes",)
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    outcomes: _containers.RepeatedCompositeFieldContainer[AppendOutcome]
    def __init__(self, outcomes: _Optional[_Iterable[_Union[AppendOutcome, _Mapping]]] = ...) -> None: ...

class GetEventRequest(_message.Message):
    __slots__ = ("tenant_id", "event_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    event_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., event_id: _Optional[str] = ...) -> None: ...

class GetEventResponse(_message.Message):
    __slots__ = ("event", "volatile")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    VOLATILE_FIELD_NUMBER: _ClassVar[int]
    event: _model_pb2.StoredEvent
    volatile: bool
    def __init__(self, event: _Optional[_Union[_model_pb2.StoredEvent, _Mapping]] = ..., volatile: _Optional[bool] = ...) -> None: ...

class ReadStreamRequest(_message.Message):
    __slots__ = ("tenant_id", "stream_id", "backward", "from_version", "limit", "to_version", "max_bytes")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    BACKWARD_FIELD_NUMBER: _ClassVar[int]
    FROM_VERSION_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    TO_VERSION_FIELD_NUMBER: _ClassVar[int]
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    stream_id: str
    backward: bool
    from_version: int
    limit: int
    to_version: int
    max_bytes: int
    def __init__(self, tenant_id: _Optional[str] = ..., stream_id: _Optional[str] = ..., backward: _Optional[bool] = ..., from_version: _Optional[int] = ..., limit: _Optional[int] = ..., to_version: _Optional[int] = ..., max_bytes: _Optional[int] = ...) -> None: ...

class ReadStreamResponse(_message.Message):
    __slots__ = ("events", "stream_version", "next_version", "volatile")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    STREAM_VERSION_FIELD_NUMBER: _ClassVar[int]
    NEXT_VERSION_FIELD_NUMBER: _ClassVar[int]
    VOLATILE_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_model_pb2.StoredEvent]
    stream_version: int
    next_version: int
    volatile: bool
    def __init__(self, events: _Optional[_Iterable[_Union[_model_pb2.StoredEvent, _Mapping]]] = ..., stream_version: _Optional[int] = ..., next_version: _Optional[int] = ..., volatile: _Optional[bool] = ...) -> None: ...

class ReadEventsRequest(_message.Message):
    __slots__ = ("tenant_id", "filter", "after_position", "limit", "max_scan", "max_bytes")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    AFTER_POSITION_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    MAX_SCAN_FIELD_NUMBER: _ClassVar[int]
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    filter: _model_pb2.EventFilter
    after_position: int
    limit: int
    max_scan: int
    max_bytes: int
    def __init__(self, tenant_id: _Optional[str] = ..., filter: _Optional[_Union[_model_pb2.EventFilter, _Mapping]] = ..., after_position: _Optional[int] = ..., limit: _Optional[int] = ..., max_scan: _Optional[int] = ..., max_bytes: _Optional[int] = ...) -> None: ...

class ReadEventsResponse(_message.Message):
    __slots__ = ("events", "scanned_to_position", "end_of_range", "head_position", "index", "keys_examined")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    SCANNED_TO_POSITION_FIELD_NUMBER: _ClassVar[int]
    END_OF_RANGE_FIELD_NUMBER: _ClassVar[int]
    HEAD_POSITION_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    KEYS_EXAMINED_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_model_pb2.StoredEvent]
    scanned_to_position: int
    end_of_range: bool
    head_position: int
    index: str
    keys_examined: int
    def __init__(self, events: _Optional[_Iterable[_Union[_model_pb2.StoredEvent, _Mapping]]] = ..., scanned_to_position: _Optional[int] = ..., end_of_range: _Optional[bool] = ..., head_position: _Optional[int] = ..., index: _Optional[str] = ..., keys_examined: _Optional[int] = ...) -> None: ...

class ListStreamsRequest(_message.Message):
    __slots__ = ("tenant_id", "stream_id_prefix", "after_stream_id", "limit")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_PREFIX_FIELD_NUMBER: _ClassVar[int]
    AFTER_STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    stream_id_prefix: str
    after_stream_id: str
    limit: int
    def __init__(self, tenant_id: _Optional[str] = ..., stream_id_prefix: _Optional[str] = ..., after_stream_id: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListStreamsResponse(_message.Message):
    __slots__ = ("streams", "end")
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    streams: _containers.RepeatedCompositeFieldContainer[_model_pb2.StreamInfo]
    end: bool
    def __init__(self, streams: _Optional[_Iterable[_Union[_model_pb2.StreamInfo, _Mapping]]] = ..., end: _Optional[bool] = ...) -> None: ...

class GetStreamRequest(_message.Message):
    __slots__ = ("tenant_id", "stream_id", "as_of_time")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    AS_OF_TIME_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    stream_id: str
    as_of_time: _timestamp_pb2.Timestamp
    def __init__(self, tenant_id: _Optional[str] = ..., stream_id: _Optional[str] = ..., as_of_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetStreamResponse(_message.Message):
    __slots__ = ("stream", "version_at_time", "volatile")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    VERSION_AT_TIME_FIELD_NUMBER: _ClassVar[int]
    VOLATILE_FIELD_NUMBER: _ClassVar[int]
    stream: _model_pb2.StreamInfo
    version_at_time: int
    volatile: bool
    def __init__(self, stream: _Optional[_Union[_model_pb2.StreamInfo, _Mapping]] = ..., version_at_time: _Optional[int] = ..., volatile: _Optional[bool] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("tenant_id", "after_position", "from_end", "event_types", "stream_id_prefix", "checkpoint_every_events", "checkpoint_interval_ms", "max_batch_size", "max_message_bytes")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_POSITION_FIELD_NUMBER: _ClassVar[int]
    FROM_END_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_PREFIX_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_EVERY_EVENTS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    after_position: int
    from_end: bool
    event_types: _containers.RepeatedScalarFieldContainer[str]
    stream_id_prefix: str
    checkpoint_every_events: int
    checkpoint_interval_ms: int
    max_batch_size: int
    max_message_bytes: int
    def __init__(self, tenant_id: _Optional[str] = ..., after_position: _Optional[int] = ..., from_end: _Optional[bool] = ..., event_types: _Optional[_Iterable[str]] = ..., stream_id_prefix: _Optional[str] = ..., checkpoint_every_events: _Optional[int] = ..., checkpoint_interval_ms: _Optional[int] = ..., max_batch_size: _Optional[int] = ..., max_message_bytes: _Optional[int] = ...) -> None: ...

class SubscribeResponse(_message.Message):
    __slots__ = ("events", "checkpoint", "caught_up")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    CAUGHT_UP_FIELD_NUMBER: _ClassVar[int]
    events: _model_pb2.EventBatch
    checkpoint: _model_pb2.Checkpoint
    caught_up: _model_pb2.CaughtUp
    def __init__(self, events: _Optional[_Union[_model_pb2.EventBatch, _Mapping]] = ..., checkpoint: _Optional[_Union[_model_pb2.Checkpoint, _Mapping]] = ..., caught_up: _Optional[_Union[_model_pb2.CaughtUp, _Mapping]] = ...) -> None: ...

class GetSnapshotRequest(_message.Message):
    __slots__ = ("tenant_id", "stream_id", "max_version")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_VERSION_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    stream_id: str
    max_version: int
    def __init__(self, tenant_id: _Optional[str] = ..., stream_id: _Optional[str] = ..., max_version: _Optional[int] = ...) -> None: ...

class GetSnapshotResponse(_message.Message):
    __slots__ = ("found", "version", "state", "updated_at")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    found: bool
    version: int
    state: bytes
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, found: _Optional[bool] = ..., version: _Optional[int] = ..., state: _Optional[bytes] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PutSnapshotRequest(_message.Message):
    __slots__ = ("tenant_id", "stream_id", "version", "state", "updated_at")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    stream_id: str
    version: int
    state: bytes
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, tenant_id: _Optional[str] = ..., stream_id: _Optional[str] = ..., version: _Optional[int] = ..., state: _Optional[bytes] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PutSnapshotResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStatsResponse(_message.Message):
    __slots__ = ("stats", "started_at")
    STATS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    stats: _model_pb2.StorageStats
    started_at: _timestamp_pb2.Timestamp
    def __init__(self, stats: _Optional[_Union[_model_pb2.StorageStats, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Record(_message.Message):
    __slots__ = ("namespace", "key", "value", "revision")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    key: str
    value: bytes
    revision: int
    def __init__(self, namespace: _Optional[str] = ..., key: _Optional[str] = ..., value: _Optional[bytes] = ..., revision: _Optional[int] = ...) -> None: ...

class PutRecordRequest(_message.Message):
    __slots__ = ("tenant_id", "record", "expected_revision")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    record: Record
    expected_revision: int
    def __init__(self, tenant_id: _Optional[str] = ..., record: _Optional[_Union[Record, _Mapping]] = ..., expected_revision: _Optional[int] = ...) -> None: ...

class PutRecordResponse(_message.Message):
    __slots__ = ("record",)
    RECORD_FIELD_NUMBER: _ClassVar[int]
    record: Record
    def __init__(self, record: _Optional[_Union[Record, _Mapping]] = ...) -> None: ...

class GetRecordRequest(_message.Message):
    __slots__ = ("tenant_id", "namespace", "key")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    namespace: str
    key: str
    def __init__(self, tenant_id: _Optional[str] = ..., namespace: _Optional[str] = ..., key: _Optional[str] = ...) -> None: ...

class GetRecordResponse(_message.Message):
    __slots__ = ("record",)
    RECORD_FIELD_NUMBER: _ClassVar[int]
    record: Record
    def __init__(self, record: _Optional[_Union[Record, _Mapping]] = ...) -> None: ...

class ListRecordsRequest(_message.Message):
    __slots__ = ("tenant_id", "namespace", "after_key", "limit")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    AFTER_KEY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    namespace: str
    after_key: str
    limit: int
    def __init__(self, tenant_id: _Optional[str] = ..., namespace: _Optional[str] = ..., after_key: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListRecordsResponse(_message.Message):
    __slots__ = ("records", "end")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[Record]
    end: bool
    def __init__(self, records: _Optional[_Iterable[_Union[Record, _Mapping]]] = ..., end: _Optional[bool] = ...) -> None: ...

class DeleteRecordRequest(_message.Message):
    __slots__ = ("tenant_id", "namespace", "key", "expected_revision")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    namespace: str
    key: str
    expected_revision: int
    def __init__(self, tenant_id: _Optional[str] = ..., namespace: _Optional[str] = ..., key: _Optional[str] = ..., expected_revision: _Optional[int] = ...) -> None: ...

class DeleteRecordResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: bool
    def __init__(self, deleted: _Optional[bool] = ...) -> None: ...

class WatchRecordsRequest(_message.Message):
    __slots__ = ("tenant_id", "namespace", "after_key")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    AFTER_KEY_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    namespace: str
    after_key: str
    def __init__(self, tenant_id: _Optional[str] = ..., namespace: _Optional[str] = ..., after_key: _Optional[str] = ...) -> None: ...

class WatchRecordsResponse(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[Record]
    def __init__(self, records: _Optional[_Iterable[_Union[Record, _Mapping]]] = ...) -> None: ...

class PutTenantRequest(_message.Message):
    __slots__ = ("tenant", "expected_revision")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    tenant: _model_pb2.TenantRecord
    expected_revision: int
    def __init__(self, tenant: _Optional[_Union[_model_pb2.TenantRecord, _Mapping]] = ..., expected_revision: _Optional[int] = ...) -> None: ...

class PutTenantResponse(_message.Message):
    __slots__ = ("tenant", "revision")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    tenant: _model_pb2.TenantRecord
    revision: int
    def __init__(self, tenant: _Optional[_Union[_model_pb2.TenantRecord, _Mapping]] = ..., revision: _Optional[int] = ...) -> None: ...

class GetTenantRequest(_message.Message):
    __slots__ = ("tenant_id",)
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    def __init__(self, tenant_id: _Optional[str] = ...) -> None: ...

class GetTenantResponse(_message.Message):
    __slots__ = ("tenant", "revision")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    tenant: _model_pb2.TenantRecord
    revision: int
    def __init__(self, tenant: _Optional[_Union[_model_pb2.TenantRecord, _Mapping]] = ..., revision: _Optional[int] = ...) -> None: ...

class ListTenantsRequest(_message.Message):
    __slots__ = ("after", "limit")
    AFTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    after: str
    limit: int
    def __init__(self, after: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListTenantsResponse(_message.Message):
    __slots__ = ("tenants", "end")
    TENANTS_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    tenants: _containers.RepeatedCompositeFieldContainer[_model_pb2.TenantRecord]
    end: bool
    def __init__(self, tenants: _Optional[_Iterable[_Union[_model_pb2.TenantRecord, _Mapping]]] = ..., end: _Optional[bool] = ...) -> None: ...

class DeleteTenantRequest(_message.Message):
    __slots__ = ("tenant_id",)
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    def __init__(self, tenant_id: _Optional[str] = ...) -> None: ...

class DeleteTenantResponse(_message.Message):
    __slots__ = ("events_deleted", "keys_deleted")
    EVENTS_DELETED_FIELD_NUMBER: _ClassVar[int]
    KEYS_DELETED_FIELD_NUMBER: _ClassVar[int]
    events_deleted: int
    keys_deleted: int
    def __init__(self, events_deleted: _Optional[int] = ..., keys_deleted: _Optional[int] = ...) -> None: ...

class GetTenantUsageRequest(_message.Message):
    __slots__ = ("tenant_id",)
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    def __init__(self, tenant_id: _Optional[str] = ...) -> None: ...

class GetTenantUsageResponse(_message.Message):
    __slots__ = ("events", "streams", "storage_bytes", "events_this_hour", "events_today", "queries_this_hour", "events_this_minute")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    STORAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    EVENTS_THIS_HOUR_FIELD_NUMBER: _ClassVar[int]
    EVENTS_TODAY_FIELD_NUMBER: _ClassVar[int]
    QUERIES_THIS_HOUR_FIELD_NUMBER: _ClassVar[int]
    EVENTS_THIS_MINUTE_FIELD_NUMBER: _ClassVar[int]
    events: int
    streams: int
    storage_bytes: int
    events_this_hour: int
    events_today: int
    queries_this_hour: int
    events_this_minute: int
    def __init__(self, events: _Optional[int] = ..., streams: _Optional[int] = ..., storage_bytes: _Optional[int] = ..., events_this_hour: _Optional[int] = ..., events_today: _Optional[int] = ..., queries_this_hour: _Optional[int] = ..., events_this_minute: _Optional[int] = ...) -> None: ...

class AddUsageRequest(_message.Message):
    __slots__ = ("tenant_id", "queries")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    queries: int
    def __init__(self, tenant_id: _Optional[str] = ..., queries: _Optional[int] = ...) -> None: ...

class AddUsageResponse(_message.Message):
    __slots__ = ("queries_this_hour",)
    QUERIES_THIS_HOUR_FIELD_NUMBER: _ClassVar[int]
    queries_this_hour: int
    def __init__(self, queries_this_hour: _Optional[int] = ...) -> None: ...

class FollowCommitsRequest(_message.Message):
    __slots__ = ("sequence", "tenant_ids")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TENANT_IDS_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    tenant_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, sequence: _Optional[int] = ..., tenant_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class StreamChange(_message.Message):
    __slots__ = ("tenant_id", "stream_id", "version", "reset", "position")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    stream_id: str
    version: int
    reset: bool
    position: int
    def __init__(self, tenant_id: _Optional[str] = ..., stream_id: _Optional[str] = ..., version: _Optional[int] = ..., reset: _Optional[bool] = ..., position: _Optional[int] = ...) -> None: ...

class FollowCommitsResponse(_message.Message):
    __slots__ = ("sequence", "changes", "heartbeat_s", "registered_tenant_ids")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_S_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_TENANT_IDS_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    changes: _containers.RepeatedCompositeFieldContainer[StreamChange]
    heartbeat_s: float
    registered_tenant_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, sequence: _Optional[int] = ..., changes: _Optional[_Iterable[_Union[StreamChange, _Mapping]]] = ..., heartbeat_s: _Optional[float] = ..., registered_tenant_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class BatchGetEventsRequest(_message.Message):
    __slots__ = ("tenant_id", "event_ids", "max_bytes")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_IDS_FIELD_NUMBER: _ClassVar[int]
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    event_ids: _containers.RepeatedScalarFieldContainer[str]
    max_bytes: int
    def __init__(self, tenant_id: _Optional[str] = ..., event_ids: _Optional[_Iterable[str]] = ..., max_bytes: _Optional[int] = ...) -> None: ...

class BatchGetEventsResponse(_message.Message):
    __slots__ = ("events", "volatile", "missing_event_ids", "unread_event_ids")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    VOLATILE_FIELD_NUMBER: _ClassVar[int]
    MISSING_EVENT_IDS_FIELD_NUMBER: _ClassVar[int]
    UNREAD_EVENT_IDS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_model_pb2.StoredEvent]
    volatile: _containers.RepeatedScalarFieldContainer[bool]
    missing_event_ids: _containers.RepeatedScalarFieldContainer[str]
    unread_event_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, events: _Optional[_Iterable[_Union[_model_pb2.StoredEvent, _Mapping]]] = ..., volatile: _Optional[_Iterable[bool]] = ..., missing_event_ids: _Optional[_Iterable[str]] = ..., unread_event_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ReadStreamsRequest(_message.Message):
    __slots__ = ("tenant_id", "reads", "max_bytes")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    READS_FIELD_NUMBER: _ClassVar[int]
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    reads: _containers.RepeatedCompositeFieldContainer[ReadStreamRequest]
    max_bytes: int
    def __init__(self, tenant_id: _Optional[str] = ..., reads: _Optional[_Iterable[_Union[ReadStreamRequest, _Mapping]]] = ..., max_bytes: _Optional[int] = ...) -> None: ...

class StreamReadOutcome(_message.Message):
    __slots__ = ("slice", "error")
    SLICE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    slice: ReadStreamResponse
    error: _status_pb2.Status
    def __init__(self, slice: _Optional[_Union[ReadStreamResponse, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class ReadStreamsResponse(_message.Message):
    __slots__ = ("outcomes",)
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    outcomes: _containers.RepeatedCompositeFieldContainer[StreamReadOutcome]
    def __init__(self, outcomes: _Optional[_Iterable[_Union[StreamReadOutcome, _Mapping]]] = ...) -> None: ...

class GetIndexStatsRequest(_message.Message):
    __slots__ = ("tenant_id",)
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    def __init__(self, tenant_id: _Optional[str] = ...) -> None: ...

class GetIndexStatsResponse(_message.Message):
    __slots__ = ("indexes",)
    INDEXES_FIELD_NUMBER: _ClassVar[int]
    indexes: _containers.RepeatedCompositeFieldContainer[IndexStats]
    def __init__(self, indexes: _Optional[_Iterable[_Union[IndexStats, _Mapping]]] = ...) -> None: ...

class IndexStats(_message.Message):
    __slots__ = ("index", "entries", "bytes", "partial", "backfill_target", "backfill_next")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_FIELD_NUMBER: _ClassVar[int]
    BACKFILL_TARGET_FIELD_NUMBER: _ClassVar[int]
    BACKFILL_NEXT_FIELD_NUMBER: _ClassVar[int]
    index: str
    entries: int
    bytes: int
    partial: bool
    backfill_target: int
    backfill_next: int
    def __init__(self, index: _Optional[str] = ..., entries: _Optional[int] = ..., bytes: _Optional[int] = ..., partial: _Optional[bool] = ..., backfill_target: _Optional[int] = ..., backfill_next: _Optional[int] = ...) -> None: ...
