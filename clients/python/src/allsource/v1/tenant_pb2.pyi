import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TenantStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TENANT_STATUS_UNSPECIFIED: _ClassVar[TenantStatus]
    TENANT_STATUS_ACTIVE: _ClassVar[TenantStatus]
    TENANT_STATUS_INACTIVE: _ClassVar[TenantStatus]

class QuotaPreset(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUOTA_PRESET_UNSPECIFIED: _ClassVar[QuotaPreset]
    QUOTA_PRESET_FREE: _ClassVar[QuotaPreset]
    QUOTA_PRESET_PROFESSIONAL: _ClassVar[QuotaPreset]
    QUOTA_PRESET_UNLIMITED: _ClassVar[QuotaPreset]
    QUOTA_PRESET_CUSTOM: _ClassVar[QuotaPreset]
TENANT_STATUS_UNSPECIFIED: TenantStatus
TENANT_STATUS_ACTIVE: TenantStatus
TENANT_STATUS_INACTIVE: TenantStatus
QUOTA_PRESET_UNSPECIFIED: QuotaPreset
QUOTA_PRESET_FREE: QuotaPreset
QUOTA_PRESET_PROFESSIONAL: QuotaPreset
QUOTA_PRESET_UNLIMITED: QuotaPreset
QUOTA_PRESET_CUSTOM: QuotaPreset

class TenantQuotas(_message.Message):
    __slots__ = ("max_events_per_day", "max_storage_bytes", "max_queries_per_hour", "max_api_keys", "max_projections", "max_pipelines", "max_event_bytes", "max_events_per_hour", "max_events_per_minute", "max_users", "max_result_bytes", "max_consumer_groups", "max_request_units_per_second", "max_request_units_burst")
    MAX_EVENTS_PER_DAY_FIELD_NUMBER: _ClassVar[int]
    MAX_STORAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_QUERIES_PER_HOUR_FIELD_NUMBER: _ClassVar[int]
    MAX_API_KEYS_FIELD_NUMBER: _ClassVar[int]
    MAX_PROJECTIONS_FIELD_NUMBER: _ClassVar[int]
    MAX_PIPELINES_FIELD_NUMBER: _ClassVar[int]
    MAX_EVENT_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_EVENTS_PER_HOUR_FIELD_NUMBER: _ClassVar[int]
    MAX_EVENTS_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    MAX_USERS_FIELD_NUMBER: _ClassVar[int]
    MAX_RESULT_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_CONSUMER_GROUPS_FIELD_NUMBER: _ClassVar[int]
    MAX_REQUEST_UNITS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    MAX_REQUEST_UNITS_BURST_FIELD_NUMBER: _ClassVar[int]
    max_events_per_day: int
    max_storage_bytes: int
    max_queries_per_hour: int
    max_api_keys: int
    max_projections: int
    max_pipelines: int
    max_event_bytes: int
    max_events_per_hour: int
    max_events_per_minute: int
    max_users: int
    max_result_bytes: int
    max_consumer_groups: int
    max_request_units_per_second: int
    max_request_units_burst: int
    def __init__(self, max_events_per_day: _Optional[int] = ..., max_storage_bytes: _Optional[int] = ..., max_queries_per_hour: _Optional[int] = ..., max_api_keys: _Optional[int] = ..., max_projections: _Optional[int] = ..., max_pipelines: _Optional[int] = ..., max_event_bytes: _Optional[int] = ..., max_events_per_hour: _Optional[int] = ..., max_events_per_minute: _Optional[int] = ..., max_users: _Optional[int] = ..., max_result_bytes: _Optional[int] = ..., max_consumer_groups: _Optional[int] = ..., max_request_units_per_second: _Optional[int] = ..., max_request_units_burst: _Optional[int] = ...) -> None: ...

class Tenant(_message.Message):
    __slots__ = ("tenant_id", "display_name", "status", "quota_preset", "quotas", "metadata", "created_at", "updated_at", "deactivated_at")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    QUOTA_PRESET_FIELD_NUMBER: _ClassVar[int]
    QUOTAS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    DEACTIVATED_AT_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    display_name: str
    status: TenantStatus
    quota_preset: QuotaPreset
    quotas: TenantQuotas
    metadata: _containers.ScalarMap[str, str]
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    deactivated_at: _timestamp_pb2.Timestamp
    def __init__(self, tenant_id: _Optional[str] = ..., display_name: _Optional[str] = ..., status: _Optional[_Union[TenantStatus, str]] = ..., quota_preset: _Optional[_Union[QuotaPreset, str]] = ..., quotas: _Optional[_Union[TenantQuotas, _Mapping]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deactivated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class QuotaUsage(_message.Message):
    __slots__ = ("quota", "limit", "used", "utilization_percent")
    QUOTA_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    UTILIZATION_PERCENT_FIELD_NUMBER: _ClassVar[int]
    quota: str
    limit: int
    used: int
    utilization_percent: float
    def __init__(self, quota: _Optional[str] = ..., limit: _Optional[int] = ..., used: _Optional[int] = ..., utilization_percent: _Optional[float] = ...) -> None: ...

class TenantStats(_message.Message):
    __slots__ = ("tenant_id", "events", "streams", "storage_bytes", "events_today", "events_this_hour", "queries_this_hour", "api_keys", "users", "quotas", "measured_at")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    STORAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    EVENTS_TODAY_FIELD_NUMBER: _ClassVar[int]
    EVENTS_THIS_HOUR_FIELD_NUMBER: _ClassVar[int]
    QUERIES_THIS_HOUR_FIELD_NUMBER: _ClassVar[int]
    API_KEYS_FIELD_NUMBER: _ClassVar[int]
    USERS_FIELD_NUMBER: _ClassVar[int]
    QUOTAS_FIELD_NUMBER: _ClassVar[int]
    MEASURED_AT_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    events: int
    streams: int
    storage_bytes: int
    events_today: int
    events_this_hour: int
    queries_this_hour: int
    api_keys: int
    users: int
    quotas: _containers.RepeatedCompositeFieldContainer[QuotaUsage]
    measured_at: _timestamp_pb2.Timestamp
    def __init__(self, tenant_id: _Optional[str] = ..., events: _Optional[int] = ..., streams: _Optional[int] = ..., storage_bytes: _Optional[int] = ..., events_today: _Optional[int] = ..., events_this_hour: _Optional[int] = ..., queries_this_hour: _Optional[int] = ..., api_keys: _Optional[int] = ..., users: _Optional[int] = ..., quotas: _Optional[_Iterable[_Union[QuotaUsage, _Mapping]]] = ..., measured_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AuditEvent(_message.Message):
    __slots__ = ("audit_id", "time", "actor", "actor_name", "actor_tenant_id", "tenant_id", "action", "outcome", "reason", "request_id", "peer")
    AUDIT_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ACTOR_NAME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    audit_id: str
    time: _timestamp_pb2.Timestamp
    actor: str
    actor_name: str
    actor_tenant_id: str
    tenant_id: str
    action: str
    outcome: str
    reason: str
    request_id: str
    peer: str
    def __init__(self, audit_id: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., actor_name: _Optional[str] = ..., actor_tenant_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., action: _Optional[str] = ..., outcome: _Optional[str] = ..., reason: _Optional[str] = ..., request_id: _Optional[str] = ..., peer: _Optional[str] = ...) -> None: ...
