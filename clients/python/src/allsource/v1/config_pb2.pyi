import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReloadStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RELOAD_STATUS_UNSPECIFIED: _ClassVar[ReloadStatus]
    RELOAD_STATUS_APPLIED: _ClassVar[ReloadStatus]
    RELOAD_STATUS_UNCHANGED: _ClassVar[ReloadStatus]
    RELOAD_STATUS_FAILED: _ClassVar[ReloadStatus]
    RELOAD_STATUS_UNREACHABLE: _ClassVar[ReloadStatus]

class BucketBy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BUCKET_BY_UNSPECIFIED: _ClassVar[BucketBy]
    BUCKET_BY_TENANT: _ClassVar[BucketBy]
    BUCKET_BY_STREAM: _ClassVar[BucketBy]
RELOAD_STATUS_UNSPECIFIED: ReloadStatus
RELOAD_STATUS_APPLIED: ReloadStatus
RELOAD_STATUS_UNCHANGED: ReloadStatus
RELOAD_STATUS_FAILED: ReloadStatus
RELOAD_STATUS_UNREACHABLE: ReloadStatus
BUCKET_BY_UNSPECIFIED: BucketBy
BUCKET_BY_TENANT: BucketBy
BUCKET_BY_STREAM: BucketBy

class ConfigEntry(_message.Message):
    __slots__ = ("key", "value", "source", "reloadable", "secret", "pending_restart_value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    RELOADABLE_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    PENDING_RESTART_VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: str
    source: str
    reloadable: bool
    secret: bool
    pending_restart_value: str
    def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ..., source: _Optional[str] = ..., reloadable: _Optional[bool] = ..., secret: _Optional[bool] = ..., pending_restart_value: _Optional[str] = ...) -> None: ...

class ServiceConfig(_message.Message):
    __slots__ = ("service", "address", "preset", "entries", "error")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    service: str
    address: str
    preset: str
    entries: _containers.RepeatedCompositeFieldContainer[ConfigEntry]
    error: str
    def __init__(self, service: _Optional[str] = ..., address: _Optional[str] = ..., preset: _Optional[str] = ..., entries: _Optional[_Iterable[_Union[ConfigEntry, _Mapping]]] = ..., error: _Optional[str] = ...) -> None: ...

class ReloadResult(_message.Message):
    __slots__ = ("service", "status", "applied_keys", "restart_required_keys", "error")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_KEYS_FIELD_NUMBER: _ClassVar[int]
    RESTART_REQUIRED_KEYS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    service: str
    status: ReloadStatus
    applied_keys: _containers.RepeatedScalarFieldContainer[str]
    restart_required_keys: _containers.RepeatedScalarFieldContainer[str]
    error: str
    def __init__(self, service: _Optional[str] = ..., status: _Optional[_Union[ReloadStatus, str]] = ..., applied_keys: _Optional[_Iterable[str]] = ..., restart_required_keys: _Optional[_Iterable[str]] = ..., error: _Optional[str] = ...) -> None: ...

class FeatureFlag(_message.Message):
    __slots__ = ("name", "description", "enabled", "percentage", "bucket_by", "source", "updated_at", "updated_by")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    PERCENTAGE_FIELD_NUMBER: _ClassVar[int]
    BUCKET_BY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    enabled: bool
    percentage: float
    bucket_by: BucketBy
    source: str
    updated_at: _timestamp_pb2.Timestamp
    updated_by: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., enabled: _Optional[bool] = ..., percentage: _Optional[float] = ..., bucket_by: _Optional[_Union[BucketBy, str]] = ..., source: _Optional[str] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_by: _Optional[str] = ...) -> None: ...
