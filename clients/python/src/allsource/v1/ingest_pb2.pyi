import datetime

from allsource.v1 import options_pb2 as _options_pb2
from allsource.v1 import event_pb2 as _event_pb2
from allsource.v1 import lifecycle_pb2 as _lifecycle_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import status_pb2 as _status_pb2
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
EXPECTED_VERSION_KIND_UNSPECIFIED: ExpectedVersionKind
EXPECTED_VERSION_KIND_ANY: ExpectedVersionKind
EXPECTED_VERSION_KIND_NO_STREAM: ExpectedVersionKind
EXPECTED_VERSION_KIND_STREAM_EXISTS: ExpectedVersionKind
EXPECTED_VERSION_KIND_EXACT: ExpectedVersionKind

class ExpectedVersion(_message.Message):
    __slots__ = ("kind", "version")
    KIND_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    kind: ExpectedVersionKind
    version: int
    def __init__(self, kind: _Optional[_Union[ExpectedVersionKind, str]] = ..., version: _Optional[int] = ...) -> None: ...

class AppendEventsRequest(_message.Message):
    __slots__ = ("stream_id", "expected_version", "events", "request_id")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    expected_version: ExpectedVersion
    events: _containers.RepeatedCompositeFieldContainer[_event_pb2.EventData]
    request_id: str
    def __init__(self, stream_id: _Optional[str] = ..., expected_version: _Optional[_Union[ExpectedVersion, _Mapping]] = ..., events: _Optional[_Iterable[_Union[_event_pb2.EventData, _Mapping]]] = ..., request_id: _Optional[str] = ...) -> None: ...

class AppendEventsResponse(_message.Message):
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

class BatchAppendRequest(_message.Message):
    __slots__ = ("append", "correlation_id")
    APPEND_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    append: AppendEventsRequest
    correlation_id: str
    def __init__(self, append: _Optional[_Union[AppendEventsRequest, _Mapping]] = ..., correlation_id: _Optional[str] = ...) -> None: ...

class BatchAppendResponse(_message.Message):
    __slots__ = ("request_index", "correlation_id", "success", "error")
    REQUEST_INDEX_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    request_index: int
    correlation_id: str
    success: AppendEventsResponse
    error: _status_pb2.Status
    def __init__(self, request_index: _Optional[int] = ..., correlation_id: _Optional[str] = ..., success: _Optional[_Union[AppendEventsResponse, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class DeleteStreamRequest(_message.Message):
    __slots__ = ("stream_id", "expected_version", "hard")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    HARD_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    expected_version: ExpectedVersion
    hard: bool
    def __init__(self, stream_id: _Optional[str] = ..., expected_version: _Optional[_Union[ExpectedVersion, _Mapping]] = ..., hard: _Optional[bool] = ...) -> None: ...

class DeleteStreamResponse(_message.Message):
    __slots__ = ("stream_version", "events_deleted")
    STREAM_VERSION_FIELD_NUMBER: _ClassVar[int]
    EVENTS_DELETED_FIELD_NUMBER: _ClassVar[int]
    stream_version: int
    events_deleted: int
    def __init__(self, stream_version: _Optional[int] = ..., events_deleted: _Optional[int] = ...) -> None: ...
