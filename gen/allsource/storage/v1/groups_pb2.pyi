from allsource.v1 import groups_pb2 as _groups_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateConsumerGroupRequest(_message.Message):
    __slots__ = ("tenant_id", "group", "max_groups")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    MAX_GROUPS_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    group: _groups_pb2.ConsumerGroup
    max_groups: int
    def __init__(self, tenant_id: _Optional[str] = ..., group: _Optional[_Union[_groups_pb2.ConsumerGroup, _Mapping]] = ..., max_groups: _Optional[int] = ...) -> None: ...

class CreateConsumerGroupResponse(_message.Message):
    __slots__ = ("group",)
    GROUP_FIELD_NUMBER: _ClassVar[int]
    group: _groups_pb2.ConsumerGroup
    def __init__(self, group: _Optional[_Union[_groups_pb2.ConsumerGroup, _Mapping]] = ...) -> None: ...

class UpdateConsumerGroupRequest(_message.Message):
    __slots__ = ("tenant_id", "group", "paths")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    group: _groups_pb2.ConsumerGroup
    paths: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tenant_id: _Optional[str] = ..., group: _Optional[_Union[_groups_pb2.ConsumerGroup, _Mapping]] = ..., paths: _Optional[_Iterable[str]] = ...) -> None: ...

class UpdateConsumerGroupResponse(_message.Message):
    __slots__ = ("group",)
    GROUP_FIELD_NUMBER: _ClassVar[int]
    group: _groups_pb2.ConsumerGroup
    def __init__(self, group: _Optional[_Union[_groups_pb2.ConsumerGroup, _Mapping]] = ...) -> None: ...

class DeleteConsumerGroupRequest(_message.Message):
    __slots__ = ("tenant_id", "name")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    name: str
    def __init__(self, tenant_id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class DeleteConsumerGroupResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListConsumerGroupsRequest(_message.Message):
    __slots__ = ("tenant_id", "after_name", "limit")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_NAME_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    after_name: str
    limit: int
    def __init__(self, tenant_id: _Optional[str] = ..., after_name: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListConsumerGroupsResponse(_message.Message):
    __slots__ = ("groups", "end")
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    groups: _containers.RepeatedCompositeFieldContainer[_groups_pb2.ConsumerGroup]
    end: bool
    def __init__(self, groups: _Optional[_Iterable[_Union[_groups_pb2.ConsumerGroup, _Mapping]]] = ..., end: _Optional[bool] = ...) -> None: ...

class GetConsumerGroupRequest(_message.Message):
    __slots__ = ("tenant_id", "name")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    name: str
    def __init__(self, tenant_id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class GetConsumerGroupResponse(_message.Message):
    __slots__ = ("group", "status")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    group: _groups_pb2.ConsumerGroup
    status: _groups_pb2.ConsumerGroupStatus
    def __init__(self, group: _Optional[_Union[_groups_pb2.ConsumerGroup, _Mapping]] = ..., status: _Optional[_Union[_groups_pb2.ConsumerGroupStatus, _Mapping]] = ...) -> None: ...

class ConsumeRequest(_message.Message):
    __slots__ = ("tenant_id", "request")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    request: _groups_pb2.ConsumeRequest
    def __init__(self, tenant_id: _Optional[str] = ..., request: _Optional[_Union[_groups_pb2.ConsumeRequest, _Mapping]] = ...) -> None: ...

class ConsumeResponse(_message.Message):
    __slots__ = ("response",)
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    response: _groups_pb2.ConsumeResponse
    def __init__(self, response: _Optional[_Union[_groups_pb2.ConsumeResponse, _Mapping]] = ...) -> None: ...

class ListParkedRequest(_message.Message):
    __slots__ = ("tenant_id", "group", "after_position", "limit")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    AFTER_POSITION_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    group: str
    after_position: int
    limit: int
    def __init__(self, tenant_id: _Optional[str] = ..., group: _Optional[str] = ..., after_position: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ListParkedResponse(_message.Message):
    __slots__ = ("events", "end")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_groups_pb2.ParkedEvent]
    end: bool
    def __init__(self, events: _Optional[_Iterable[_Union[_groups_pb2.ParkedEvent, _Mapping]]] = ..., end: _Optional[bool] = ...) -> None: ...

class ReplayParkedRequest(_message.Message):
    __slots__ = ("tenant_id", "group", "max_events")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    MAX_EVENTS_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    group: str
    max_events: int
    def __init__(self, tenant_id: _Optional[str] = ..., group: _Optional[str] = ..., max_events: _Optional[int] = ...) -> None: ...

class ReplayParkedResponse(_message.Message):
    __slots__ = ("replayed",)
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    replayed: int
    def __init__(self, replayed: _Optional[int] = ...) -> None: ...
