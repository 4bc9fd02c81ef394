import datetime

from allsource.v1 import event_pb2 as _event_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConsumerStrategy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONSUMER_STRATEGY_UNSPECIFIED: _ClassVar[ConsumerStrategy]
    CONSUMER_STRATEGY_ROUND_ROBIN: _ClassVar[ConsumerStrategy]
    CONSUMER_STRATEGY_BY_STREAM: _ClassVar[ConsumerStrategy]

class ConsumerGroupStart(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONSUMER_GROUP_START_UNSPECIFIED: _ClassVar[ConsumerGroupStart]
    CONSUMER_GROUP_START_BEGINNING: _ClassVar[ConsumerGroupStart]
    CONSUMER_GROUP_START_END: _ClassVar[ConsumerGroupStart]
    CONSUMER_GROUP_START_POSITION: _ClassVar[ConsumerGroupStart]

class NackAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NACK_ACTION_UNSPECIFIED: _ClassVar[NackAction]
    NACK_ACTION_RETRY: _ClassVar[NackAction]
    NACK_ACTION_PARK: _ClassVar[NackAction]
    NACK_ACTION_SKIP: _ClassVar[NackAction]
CONSUMER_STRATEGY_UNSPECIFIED: ConsumerStrategy
CONSUMER_STRATEGY_ROUND_ROBIN: ConsumerStrategy
CONSUMER_STRATEGY_BY_STREAM: ConsumerStrategy
CONSUMER_GROUP_START_UNSPECIFIED: ConsumerGroupStart
CONSUMER_GROUP_START_BEGINNING: ConsumerGroupStart
CONSUMER_GROUP_START_END: ConsumerGroupStart
CONSUMER_GROUP_START_POSITION: ConsumerGroupStart
NACK_ACTION_UNSPECIFIED: NackAction
NACK_ACTION_RETRY: NackAction
NACK_ACTION_PARK: NackAction
NACK_ACTION_SKIP: NackAction

class ConsumerGroupSettings(_message.Message):
    __slots__ = ("max_in_flight_per_consumer", "ack_timeout", "max_retries", "strategy")
    MAX_IN_FLIGHT_PER_CONSUMER_FIELD_NUMBER: _ClassVar[int]
    ACK_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    MAX_RETRIES_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    max_in_flight_per_consumer: int
    ack_timeout: _duration_pb2.Duration
    max_retries: int
    strategy: ConsumerStrategy
    def __init__(self, max_in_flight_per_consumer: _Optional[int] = ..., ack_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max_retries: _Optional[int] = ..., strategy: _Optional[_Union[ConsumerStrategy, str]] = ...) -> None: ...

class ConsumerGroup(_message.Message):
    __slots__ = ("name", "stream_id", "stream_id_prefix", "event_types", "start", "start_position", "settings", "create_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_PREFIX_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    START_POSITION_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    stream_id: str
    stream_id_prefix: str
    event_types: _containers.RepeatedScalarFieldContainer[str]
    start: ConsumerGroupStart
    start_position: int
    settings: ConsumerGroupSettings
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., stream_id: _Optional[str] = ..., stream_id_prefix: _Optional[str] = ..., event_types: _Optional[_Iterable[str]] = ..., start: _Optional[_Union[ConsumerGroupStart, str]] = ..., start_position: _Optional[int] = ..., settings: _Optional[_Union[ConsumerGroupSettings, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ConsumerInfo(_message.Message):
    __slots__ = ("consumer_id", "name", "in_flight", "acked")
    CONSUMER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    ACKED_FIELD_NUMBER: _ClassVar[int]
    consumer_id: str
    name: str
    in_flight: int
    acked: int
    def __init__(self, consumer_id: _Optional[str] = ..., name: _Optional[str] = ..., in_flight: _Optional[int] = ..., acked: _Optional[int] = ...) -> None: ...

class ConsumerGroupStatus(_message.Message):
    __slots__ = ("checkpoint", "head_position", "lag", "in_flight", "parked_count", "consumers")
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    HEAD_POSITION_FIELD_NUMBER: _ClassVar[int]
    LAG_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    PARKED_COUNT_FIELD_NUMBER: _ClassVar[int]
    CONSUMERS_FIELD_NUMBER: _ClassVar[int]
    checkpoint: int
    head_position: int
    lag: int
    in_flight: int
    parked_count: int
    consumers: _containers.RepeatedCompositeFieldContainer[ConsumerInfo]
    def __init__(self, checkpoint: _Optional[int] = ..., head_position: _Optional[int] = ..., lag: _Optional[int] = ..., in_flight: _Optional[int] = ..., parked_count: _Optional[int] = ..., consumers: _Optional[_Iterable[_Union[ConsumerInfo, _Mapping]]] = ...) -> None: ...

class CreateConsumerGroupRequest(_message.Message):
    __slots__ = ("group",)
    GROUP_FIELD_NUMBER: _ClassVar[int]
    group: ConsumerGroup
    def __init__(self, group: _Optional[_Union[ConsumerGroup, _Mapping]] = ...) -> None: ...

class CreateConsumerGroupResponse(_message.Message):
    __slots__ = ("group",)
    GROUP_FIELD_NUMBER: _ClassVar[int]
    group: ConsumerGroup
    def __init__(self, group: _Optional[_Union[ConsumerGroup, _Mapping]] = ...) -> None: ...

class UpdateConsumerGroupRequest(_message.Message):
    __slots__ = ("group", "update_mask")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    group: ConsumerGroup
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, group: _Optional[_Union[ConsumerGroup, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateConsumerGroupResponse(_message.Message):
    __slots__ = ("group",)
    GROUP_FIELD_NUMBER: _ClassVar[int]
    group: ConsumerGroup
    def __init__(self, group: _Optional[_Union[ConsumerGroup, _Mapping]] = ...) -> None: ...

class DeleteConsumerGroupRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteConsumerGroupResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListConsumerGroupsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListConsumerGroupsResponse(_message.Message):
    __slots__ = ("groups", "next_page_token")
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    groups: _containers.RepeatedCompositeFieldContainer[ConsumerGroup]
    next_page_token: str
    def __init__(self, groups: _Optional[_Iterable[_Union[ConsumerGroup, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetConsumerGroupRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetConsumerGroupResponse(_message.Message):
    __slots__ = ("group", "status")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    group: ConsumerGroup
    status: ConsumerGroupStatus
    def __init__(self, group: _Optional[_Union[ConsumerGroup, _Mapping]] = ..., status: _Optional[_Union[ConsumerGroupStatus, _Mapping]] = ...) -> None: ...

class ConsumeJoin(_message.Message):
    __slots__ = ("group", "consumer_name", "max_in_flight")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_NAME_FIELD_NUMBER: _ClassVar[int]
    MAX_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    group: str
    consumer_name: str
    max_in_flight: int
    def __init__(self, group: _Optional[str] = ..., consumer_name: _Optional[str] = ..., max_in_flight: _Optional[int] = ...) -> None: ...

class ConsumeAck(_message.Message):
    __slots__ = ("positions",)
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    positions: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, positions: _Optional[_Iterable[int]] = ...) -> None: ...

class ConsumeNack(_message.Message):
    __slots__ = ("positions", "action", "reason")
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    positions: _containers.RepeatedScalarFieldContainer[int]
    action: NackAction
    reason: str
    def __init__(self, positions: _Optional[_Iterable[int]] = ..., action: _Optional[_Union[NackAction, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class ConsumeRequest(_message.Message):
    __slots__ = ("join", "ack", "nack")
    JOIN_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    NACK_FIELD_NUMBER: _ClassVar[int]
    join: ConsumeJoin
    ack: ConsumeAck
    nack: ConsumeNack
    def __init__(self, join: _Optional[_Union[ConsumeJoin, _Mapping]] = ..., ack: _Optional[_Union[ConsumeAck, _Mapping]] = ..., nack: _Optional[_Union[ConsumeNack, _Mapping]] = ...) -> None: ...

class ConsumerJoined(_message.Message):
    __slots__ = ("consumer_id", "group")
    CONSUMER_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    consumer_id: str
    group: ConsumerGroup
    def __init__(self, consumer_id: _Optional[str] = ..., group: _Optional[_Union[ConsumerGroup, _Mapping]] = ...) -> None: ...

class DeliveredEvent(_message.Message):
    __slots__ = ("event", "retry_count")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    RETRY_COUNT_FIELD_NUMBER: _ClassVar[int]
    event: _event_pb2.Event
    retry_count: int
    def __init__(self, event: _Optional[_Union[_event_pb2.Event, _Mapping]] = ..., retry_count: _Optional[int] = ...) -> None: ...

class ConsumeDelivery(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[DeliveredEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[DeliveredEvent, _Mapping]]] = ...) -> None: ...

class ConsumeResponse(_message.Message):
    __slots__ = ("joined", "delivery")
    JOINED_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    joined: ConsumerJoined
    delivery: ConsumeDelivery
    def __init__(self, joined: _Optional[_Union[ConsumerJoined, _Mapping]] = ..., delivery: _Optional[_Union[ConsumeDelivery, _Mapping]] = ...) -> None: ...

class ParkedEvent(_message.Message):
    __slots__ = ("event", "retry_count", "reason", "park_time")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    RETRY_COUNT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PARK_TIME_FIELD_NUMBER: _ClassVar[int]
    event: _event_pb2.Event
    retry_count: int
    reason: str
    park_time: _timestamp_pb2.Timestamp
    def __init__(self, event: _Optional[_Union[_event_pb2.Event, _Mapping]] = ..., retry_count: _Optional[int] = ..., reason: _Optional[str] = ..., park_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListParkedRequest(_message.Message):
    __slots__ = ("group", "page_size", "page_token")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    group: str
    page_size: int
    page_token: str
    def __init__(self, group: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListParkedResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[ParkedEvent]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[ParkedEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ReplayParkedRequest(_message.Message):
    __slots__ = ("group", "max_events")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    MAX_EVENTS_FIELD_NUMBER: _ClassVar[int]
    group: str
    max_events: int
    def __init__(self, group: _Optional[str] = ..., max_events: _Optional[int] = ...) -> None: ...

class ReplayParkedResponse(_message.Message):
    __slots__ = ("replayed",)
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    replayed: int
    def __init__(self, replayed: _Optional[int] = ...) -> None: ...
