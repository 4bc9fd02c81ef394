import datetime

from allsource.v1 import options_pb2 as _options_pb2
from allsource.v1 import event_pb2 as _event_pb2
from allsource.v1 import lifecycle_pb2 as _lifecycle_pb2
from allsource.v1 import groups_pb2 as _groups_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReadDirection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    READ_DIRECTION_UNSPECIFIED: _ClassVar[ReadDirection]
    READ_DIRECTION_FORWARD: _ClassVar[ReadDirection]
    READ_DIRECTION_BACKWARD: _ClassVar[ReadDirection]
READ_DIRECTION_UNSPECIFIED: ReadDirection
READ_DIRECTION_FORWARD: ReadDirection
READ_DIRECTION_BACKWARD: ReadDirection

class GetEventRequest(_message.Message):
    __slots__ = ("event_id", "min_position")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    MIN_POSITION_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    min_position: int
    def __init__(self, event_id: _Optional[str] = ..., min_position: _Optional[int] = ...) -> None: ...

class GetEventResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: _event_pb2.Event
    def __init__(self, event: _Optional[_Union[_event_pb2.Event, _Mapping]] = ...) -> None: ...

class ReadStreamRequest(_message.Message):
    __slots__ = ("stream_id", "direction", "from_version", "page_size", "page_token", "min_position")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    FROM_VERSION_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MIN_POSITION_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    direction: ReadDirection
    from_version: int
    page_size: int
    page_token: str
    min_position: int
    def __init__(self, stream_id: _Optional[str] = ..., direction: _Optional[_Union[ReadDirection, str]] = ..., from_version: _Optional[int] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., min_position: _Optional[int] = ...) -> None: ...

class ReadStreamResponse(_message.Message):
    __slots__ = ("events", "next_page_token", "stream_version")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STREAM_VERSION_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_event_pb2.Event]
    next_page_token: str
    stream_version: int
    def __init__(self, events: _Optional[_Iterable[_Union[_event_pb2.Event, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., stream_version: _Optional[int] = ...) -> None: ...

class ListEventsRequest(_message.Message):
    __slots__ = ("filter", "page_size", "page_token", "explain", "min_position")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    MIN_POSITION_FIELD_NUMBER: _ClassVar[int]
    filter: _event_pb2.EventFilter
    page_size: int
    page_token: str
    explain: bool
    min_position: int
    def __init__(self, filter: _Optional[_Union[_event_pb2.EventFilter, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., explain: _Optional[bool] = ..., min_position: _Optional[int] = ...) -> None: ...

class ListEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token", "plan")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_event_pb2.Event]
    next_page_token: str
    plan: QueryPlan
    def __init__(self, events: _Optional[_Iterable[_Union[_event_pb2.Event, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., plan: _Optional[_Union[QueryPlan, _Mapping]] = ...) -> None: ...

class QueryPlan(_message.Message):
    __slots__ = ("index", "keys_examined")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    KEYS_EXAMINED_FIELD_NUMBER: _ClassVar[int]
    index: str
    keys_examined: int
    def __init__(self, index: _Optional[str] = ..., keys_examined: _Optional[int] = ...) -> None: ...

class StreamEventsRequest(_message.Message):
    __slots__ = ("filter", "batch_size")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    filter: _event_pb2.EventFilter
    batch_size: int
    def __init__(self, filter: _Optional[_Union[_event_pb2.EventFilter, _Mapping]] = ..., batch_size: _Optional[int] = ...) -> None: ...

class StreamEventsResponse(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_event_pb2.Event]
    def __init__(self, events: _Optional[_Iterable[_Union[_event_pb2.Event, _Mapping]]] = ...) -> None: ...

class GetEntityStateRequest(_message.Message):
    __slots__ = ("stream_id", "as_of_version", "as_of_time", "min_position")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    AS_OF_VERSION_FIELD_NUMBER: _ClassVar[int]
    AS_OF_TIME_FIELD_NUMBER: _ClassVar[int]
    MIN_POSITION_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    as_of_version: int
    as_of_time: _timestamp_pb2.Timestamp
    min_position: int
    def __init__(self, stream_id: _Optional[str] = ..., as_of_version: _Optional[int] = ..., as_of_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., min_position: _Optional[int] = ...) -> None: ...

class GetEntityStateResponse(_message.Message):
    __slots__ = ("stream_id", "state", "version", "updated_at", "events_folded", "snapshot_version")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FOLDED_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_VERSION_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    state: bytes
    version: int
    updated_at: _timestamp_pb2.Timestamp
    events_folded: int
    snapshot_version: int
    def __init__(self, stream_id: _Optional[str] = ..., state: _Optional[bytes] = ..., version: _Optional[int] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., events_folded: _Optional[int] = ..., snapshot_version: _Optional[int] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("after_position", "from_end", "event_types", "stream_id_prefix", "checkpoint_every_events", "checkpoint_interval", "max_batch_size")
    AFTER_POSITION_FIELD_NUMBER: _ClassVar[int]
    FROM_END_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_PREFIX_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_EVERY_EVENTS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    after_position: int
    from_end: bool
    event_types: _containers.RepeatedScalarFieldContainer[str]
    stream_id_prefix: str
    checkpoint_every_events: int
    checkpoint_interval: _duration_pb2.Duration
    max_batch_size: int
    def __init__(self, after_position: _Optional[int] = ..., from_end: _Optional[bool] = ..., event_types: _Optional[_Iterable[str]] = ..., stream_id_prefix: _Optional[str] = ..., checkpoint_every_events: _Optional[int] = ..., checkpoint_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max_batch_size: _Optional[int] = ...) -> None: ...

class SubscribeResponse(_message.Message):
    __slots__ = ("events", "checkpoint", "caught_up")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    CAUGHT_UP_FIELD_NUMBER: _ClassVar[int]
    events: _event_pb2.EventBatch
    checkpoint: _event_pb2.Checkpoint
    caught_up: _event_pb2.CaughtUp
    def __init__(self, events: _Optional[_Union[_event_pb2.EventBatch, _Mapping]] = ..., checkpoint: _Optional[_Union[_event_pb2.Checkpoint, _Mapping]] = ..., caught_up: _Optional[_Union[_event_pb2.CaughtUp, _Mapping]] = ...) -> None: ...

class ListStreamsRequest(_message.Message):
    __slots__ = ("stream_id_prefix", "page_size", "page_token")
    STREAM_ID_PREFIX_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    stream_id_prefix: str
    page_size: int
    page_token: str
    def __init__(self, stream_id_prefix: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListStreamsResponse(_message.Message):
    __slots__ = ("streams", "next_page_token")
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    streams: _containers.RepeatedCompositeFieldContainer[_event_pb2.StreamInfo]
    next_page_token: str
    def __init__(self, streams: _Optional[_Iterable[_Union[_event_pb2.StreamInfo, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class BatchGetEventsRequest(_message.Message):
    __slots__ = ("event_ids", "min_position")
    EVENT_IDS_FIELD_NUMBER: _ClassVar[int]
    MIN_POSITION_FIELD_NUMBER: _ClassVar[int]
    event_ids: _containers.RepeatedScalarFieldContainer[str]
    min_position: int
    def __init__(self, event_ids: _Optional[_Iterable[str]] = ..., min_position: _Optional[int] = ...) -> None: ...

class EventResult(_message.Message):
    __slots__ = ("event_id", "event", "error")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    event: _event_pb2.Event
    error: _status_pb2.Status
    def __init__(self, event_id: _Optional[str] = ..., event: _Optional[_Union[_event_pb2.Event, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class BatchGetEventsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[EventResult]
    def __init__(self, results: _Optional[_Iterable[_Union[EventResult, _Mapping]]] = ...) -> None: ...

class StreamRead(_message.Message):
    __slots__ = ("stream_id", "direction", "from_version", "limit")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    FROM_VERSION_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    direction: ReadDirection
    from_version: int
    limit: int
    def __init__(self, stream_id: _Optional[str] = ..., direction: _Optional[_Union[ReadDirection, str]] = ..., from_version: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ReadStreamsRequest(_message.Message):
    __slots__ = ("reads", "min_position")
    READS_FIELD_NUMBER: _ClassVar[int]
    MIN_POSITION_FIELD_NUMBER: _ClassVar[int]
    reads: _containers.RepeatedCompositeFieldContainer[StreamRead]
    min_position: int
    def __init__(self, reads: _Optional[_Iterable[_Union[StreamRead, _Mapping]]] = ..., min_position: _Optional[int] = ...) -> None: ...

class StreamReadResult(_message.Message):
    __slots__ = ("events", "stream_id", "stream_version", "next_version", "error")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_VERSION_FIELD_NUMBER: _ClassVar[int]
    NEXT_VERSION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_event_pb2.Event]
    stream_id: str
    stream_version: int
    next_version: int
    error: _status_pb2.Status
    def __init__(self, events: _Optional[_Iterable[_Union[_event_pb2.Event, _Mapping]]] = ..., stream_id: _Optional[str] = ..., stream_version: _Optional[int] = ..., next_version: _Optional[int] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class ReadStreamsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[StreamReadResult]
    def __init__(self, results: _Optional[_Iterable[_Union[StreamReadResult, _Mapping]]] = ...) -> None: ...
