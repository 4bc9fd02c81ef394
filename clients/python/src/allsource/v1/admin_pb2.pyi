import datetime

from allsource.v1 import options_pb2 as _options_pb2
from allsource.v1 import config_pb2 as _config_pb2
from allsource.v1 import metrics_pb2 as _metrics_pb2
from allsource.v1 import tenant_pb2 as _tenant_pb2
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

class HealthStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HEALTH_STATUS_UNSPECIFIED: _ClassVar[HealthStatus]
    HEALTH_STATUS_SERVING: _ClassVar[HealthStatus]
    HEALTH_STATUS_NOT_SERVING: _ClassVar[HealthStatus]
    HEALTH_STATUS_UNREACHABLE: _ClassVar[HealthStatus]

class QuotaState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUOTA_STATE_UNSPECIFIED: _ClassVar[QuotaState]
    QUOTA_STATE_OK: _ClassVar[QuotaState]
    QUOTA_STATE_SOFT: _ClassVar[QuotaState]
    QUOTA_STATE_HARD: _ClassVar[QuotaState]
    QUOTA_STATE_UNLIMITED: _ClassVar[QuotaState]
HEALTH_STATUS_UNSPECIFIED: HealthStatus
HEALTH_STATUS_SERVING: HealthStatus
HEALTH_STATUS_NOT_SERVING: HealthStatus
HEALTH_STATUS_UNREACHABLE: HealthStatus
QUOTA_STATE_UNSPECIFIED: QuotaState
QUOTA_STATE_OK: QuotaState
QUOTA_STATE_SOFT: QuotaState
QUOTA_STATE_HARD: QuotaState
QUOTA_STATE_UNLIMITED: QuotaState

class GetSystemInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ServiceHealth(_message.Message):
    __slots__ = ("name", "address", "status", "detail", "latency")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    name: str
    address: str
    status: HealthStatus
    detail: str
    latency: _duration_pb2.Duration
    def __init__(self, name: _Optional[str] = ..., address: _Optional[str] = ..., status: _Optional[_Union[HealthStatus, str]] = ..., detail: _Optional[str] = ..., latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

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

class GetSystemInfoResponse(_message.Message):
    __slots__ = ("version", "started_at", "uptime", "services", "storage", "storage_uptime")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    UPTIME_FIELD_NUMBER: _ClassVar[int]
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    STORAGE_FIELD_NUMBER: _ClassVar[int]
    STORAGE_UPTIME_FIELD_NUMBER: _ClassVar[int]
    version: str
    started_at: _timestamp_pb2.Timestamp
    uptime: _duration_pb2.Duration
    services: _containers.RepeatedCompositeFieldContainer[ServiceHealth]
    storage: StorageStats
    storage_uptime: _duration_pb2.Duration
    def __init__(self, version: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., uptime: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., services: _Optional[_Iterable[_Union[ServiceHealth, _Mapping]]] = ..., storage: _Optional[_Union[StorageStats, _Mapping]] = ..., storage_uptime: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ReloadConfigRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReloadConfigResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[_config_pb2.ReloadResult]
    def __init__(self, results: _Optional[_Iterable[_Union[_config_pb2.ReloadResult, _Mapping]]] = ...) -> None: ...

class GetConfigRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetConfigResponse(_message.Message):
    __slots__ = ("services",)
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    services: _containers.RepeatedCompositeFieldContainer[_config_pb2.ServiceConfig]
    def __init__(self, services: _Optional[_Iterable[_Union[_config_pb2.ServiceConfig, _Mapping]]] = ...) -> None: ...

class ListFeatureFlagsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListFeatureFlagsResponse(_message.Message):
    __slots__ = ("flags",)
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    flags: _containers.RepeatedCompositeFieldContainer[_config_pb2.FeatureFlag]
    def __init__(self, flags: _Optional[_Iterable[_Union[_config_pb2.FeatureFlag, _Mapping]]] = ...) -> None: ...

class SetFeatureFlagRequest(_message.Message):
    __slots__ = ("name", "enabled", "percentage", "bucket_by", "clear")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    PERCENTAGE_FIELD_NUMBER: _ClassVar[int]
    BUCKET_BY_FIELD_NUMBER: _ClassVar[int]
    CLEAR_FIELD_NUMBER: _ClassVar[int]
    name: str
    enabled: bool
    percentage: float
    bucket_by: _config_pb2.BucketBy
    clear: bool
    def __init__(self, name: _Optional[str] = ..., enabled: _Optional[bool] = ..., percentage: _Optional[float] = ..., bucket_by: _Optional[_Union[_config_pb2.BucketBy, str]] = ..., clear: _Optional[bool] = ...) -> None: ...

class SetFeatureFlagResponse(_message.Message):
    __slots__ = ("flag", "unreached_services")
    FLAG_FIELD_NUMBER: _ClassVar[int]
    UNREACHED_SERVICES_FIELD_NUMBER: _ClassVar[int]
    flag: _config_pb2.FeatureFlag
    unreached_services: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, flag: _Optional[_Union[_config_pb2.FeatureFlag, _Mapping]] = ..., unreached_services: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateTenantRequest(_message.Message):
    __slots__ = ("tenant_id", "display_name", "quota_preset", "quotas", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    QUOTA_PRESET_FIELD_NUMBER: _ClassVar[int]
    QUOTAS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    display_name: str
    quota_preset: _tenant_pb2.QuotaPreset
    quotas: _tenant_pb2.TenantQuotas
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, tenant_id: _Optional[str] = ..., display_name: _Optional[str] = ..., quota_preset: _Optional[_Union[_tenant_pb2.QuotaPreset, str]] = ..., quotas: _Optional[_Union[_tenant_pb2.TenantQuotas, _Mapping]] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CreateTenantResponse(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: _tenant_pb2.Tenant
    def __init__(self, tenant: _Optional[_Union[_tenant_pb2.Tenant, _Mapping]] = ...) -> None: ...

class GetTenantRequest(_message.Message):
    __slots__ = ("tenant_id",)
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    def __init__(self, tenant_id: _Optional[str] = ...) -> None: ...

class GetTenantResponse(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: _tenant_pb2.Tenant
    def __init__(self, tenant: _Optional[_Union[_tenant_pb2.Tenant, _Mapping]] = ...) -> None: ...

class ListTenantsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTenantsResponse(_message.Message):
    __slots__ = ("tenants", "next_page_token")
    TENANTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tenants: _containers.RepeatedCompositeFieldContainer[_tenant_pb2.Tenant]
    next_page_token: str
    def __init__(self, tenants: _Optional[_Iterable[_Union[_tenant_pb2.Tenant, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateTenantRequest(_message.Message):
    __slots__ = ("tenant", "update_mask")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    tenant: _tenant_pb2.Tenant
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, tenant: _Optional[_Union[_tenant_pb2.Tenant, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateTenantResponse(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: _tenant_pb2.Tenant
    def __init__(self, tenant: _Optional[_Union[_tenant_pb2.Tenant, _Mapping]] = ...) -> None: ...

class DeactivateTenantRequest(_message.Message):
    __slots__ = ("tenant_id",)
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    def __init__(self, tenant_id: _Optional[str] = ...) -> None: ...

class DeactivateTenantResponse(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: _tenant_pb2.Tenant
    def __init__(self, tenant: _Optional[_Union[_tenant_pb2.Tenant, _Mapping]] = ...) -> None: ...

class ActivateTenantRequest(_message.Message):
    __slots__ = ("tenant_id",)
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    def __init__(self, tenant_id: _Optional[str] = ...) -> None: ...

class ActivateTenantResponse(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: _tenant_pb2.Tenant
    def __init__(self, tenant: _Optional[_Union[_tenant_pb2.Tenant, _Mapping]] = ...) -> None: ...

class DeleteTenantRequest(_message.Message):
    __slots__ = ("tenant_id", "confirm_tenant_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIRM_TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    confirm_tenant_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., confirm_tenant_id: _Optional[str] = ...) -> None: ...

class DeleteTenantResponse(_message.Message):
    __slots__ = ("events_deleted", "api_keys_deleted", "storage_keys_deleted")
    EVENTS_DELETED_FIELD_NUMBER: _ClassVar[int]
    API_KEYS_DELETED_FIELD_NUMBER: _ClassVar[int]
    STORAGE_KEYS_DELETED_FIELD_NUMBER: _ClassVar[int]
    events_deleted: int
    api_keys_deleted: int
    storage_keys_deleted: int
    def __init__(self, events_deleted: _Optional[int] = ..., api_keys_deleted: _Optional[int] = ..., storage_keys_deleted: _Optional[int] = ...) -> None: ...

class GetTenantStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetTenantStatsResponse(_message.Message):
    __slots__ = ("stats",)
    STATS_FIELD_NUMBER: _ClassVar[int]
    stats: _tenant_pb2.TenantStats
    def __init__(self, stats: _Optional[_Union[_tenant_pb2.TenantStats, _Mapping]] = ...) -> None: ...

class ListAuditEventsRequest(_message.Message):
    __slots__ = ("tenant_id", "start_time", "page_size", "page_token")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    start_time: _timestamp_pb2.Timestamp
    page_size: int
    page_token: str
    def __init__(self, tenant_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAuditEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_tenant_pb2.AuditEvent]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[_tenant_pb2.AuditEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class QuotaStatus(_message.Message):
    __slots__ = ("quota", "used", "limit", "resets_at", "state", "overridden")
    QUOTA_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    RESETS_AT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OVERRIDDEN_FIELD_NUMBER: _ClassVar[int]
    quota: str
    used: int
    limit: int
    resets_at: _timestamp_pb2.Timestamp
    state: QuotaState
    overridden: bool
    def __init__(self, quota: _Optional[str] = ..., used: _Optional[int] = ..., limit: _Optional[int] = ..., resets_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[QuotaState, str]] = ..., overridden: _Optional[bool] = ...) -> None: ...

class GetQuotaUsageRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetQuotaUsageResponse(_message.Message):
    __slots__ = ("tenant_id", "quotas", "soft_limit_ratio", "throttles")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    QUOTAS_FIELD_NUMBER: _ClassVar[int]
    SOFT_LIMIT_RATIO_FIELD_NUMBER: _ClassVar[int]
    THROTTLES_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    quotas: _containers.RepeatedCompositeFieldContainer[QuotaStatus]
    soft_limit_ratio: float
    throttles: _containers.RepeatedCompositeFieldContainer[EmergencyThrottle]
    def __init__(self, tenant_id: _Optional[str] = ..., quotas: _Optional[_Iterable[_Union[QuotaStatus, _Mapping]]] = ..., soft_limit_ratio: _Optional[float] = ..., throttles: _Optional[_Iterable[_Union[EmergencyThrottle, _Mapping]]] = ...) -> None: ...

class QuotaOverride(_message.Message):
    __slots__ = ("tenant_id", "quota", "value", "expires_at", "reason", "set_by", "set_at")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    QUOTA_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SET_BY_FIELD_NUMBER: _ClassVar[int]
    SET_AT_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    quota: str
    value: int
    expires_at: _timestamp_pb2.Timestamp
    reason: str
    set_by: str
    set_at: _timestamp_pb2.Timestamp
    def __init__(self, tenant_id: _Optional[str] = ..., quota: _Optional[str] = ..., value: _Optional[int] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., set_by: _Optional[str] = ..., set_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SetQuotaOverrideRequest(_message.Message):
    __slots__ = ("tenant_id", "quota", "value", "duration", "reason", "clear")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    QUOTA_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CLEAR_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    quota: str
    value: int
    duration: _duration_pb2.Duration
    reason: str
    clear: bool
    def __init__(self, tenant_id: _Optional[str] = ..., quota: _Optional[str] = ..., value: _Optional[int] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., reason: _Optional[str] = ..., clear: _Optional[bool] = ...) -> None: ...

class SetQuotaOverrideResponse(_message.Message):
    __slots__ = ("override",)
    OVERRIDE_FIELD_NUMBER: _ClassVar[int]
    override: QuotaOverride
    def __init__(self, override: _Optional[_Union[QuotaOverride, _Mapping]] = ...) -> None: ...

class ListQuotaOverridesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListQuotaOverridesResponse(_message.Message):
    __slots__ = ("overrides", "next_page_token")
    OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    overrides: _containers.RepeatedCompositeFieldContainer[QuotaOverride]
    next_page_token: str
    def __init__(self, overrides: _Optional[_Iterable[_Union[QuotaOverride, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class EmergencyThrottle(_message.Message):
    __slots__ = ("tenant_id", "calls_per_second", "reason", "set_by", "set_at", "expires_at")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CALLS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SET_BY_FIELD_NUMBER: _ClassVar[int]
    SET_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    calls_per_second: float
    reason: str
    set_by: str
    set_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, tenant_id: _Optional[str] = ..., calls_per_second: _Optional[float] = ..., reason: _Optional[str] = ..., set_by: _Optional[str] = ..., set_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SetEmergencyThrottleRequest(_message.Message):
    __slots__ = ("tenant_id", "calls_per_second", "reason", "duration")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CALLS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    calls_per_second: float
    reason: str
    duration: _duration_pb2.Duration
    def __init__(self, tenant_id: _Optional[str] = ..., calls_per_second: _Optional[float] = ..., reason: _Optional[str] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class SetEmergencyThrottleResponse(_message.Message):
    __slots__ = ("throttle",)
    THROTTLE_FIELD_NUMBER: _ClassVar[int]
    throttle: EmergencyThrottle
    def __init__(self, throttle: _Optional[_Union[EmergencyThrottle, _Mapping]] = ...) -> None: ...

class GetMetricsSummaryRequest(_message.Message):
    __slots__ = ("max_methods",)
    MAX_METHODS_FIELD_NUMBER: _ClassVar[int]
    max_methods: int
    def __init__(self, max_methods: _Optional[int] = ...) -> None: ...

class GetMetricsSummaryResponse(_message.Message):
    __slots__ = ("services",)
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    services: _containers.RepeatedCompositeFieldContainer[_metrics_pb2.ServiceMetrics]
    def __init__(self, services: _Optional[_Iterable[_Union[_metrics_pb2.ServiceMetrics, _Mapping]]] = ...) -> None: ...

class GetIndexStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetIndexStatsResponse(_message.Message):
    __slots__ = ("tenant_id", "indexes")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    INDEXES_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    indexes: _containers.RepeatedCompositeFieldContainer[IndexStats]
    def __init__(self, tenant_id: _Optional[str] = ..., indexes: _Optional[_Iterable[_Union[IndexStats, _Mapping]]] = ...) -> None: ...

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
