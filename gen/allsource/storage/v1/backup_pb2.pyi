import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BackupKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BACKUP_KIND_UNSPECIFIED: _ClassVar[BackupKind]
    BACKUP_KIND_FULL: _ClassVar[BackupKind]
    BACKUP_KIND_INCREMENTAL: _ClassVar[BackupKind]
BACKUP_KIND_UNSPECIFIED: BackupKind
BACKUP_KIND_FULL: BackupKind
BACKUP_KIND_INCREMENTAL: BackupKind

class TenantRange(_message.Message):
    __slots__ = ("tenant_id", "from_position", "to_position", "events", "first_recorded_at", "last_recorded_at", "restart")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_POSITION_FIELD_NUMBER: _ClassVar[int]
    TO_POSITION_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    FIRST_RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    RESTART_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    from_position: int
    to_position: int
    events: int
    first_recorded_at: _timestamp_pb2.Timestamp
    last_recorded_at: _timestamp_pb2.Timestamp
    restart: bool
    def __init__(self, tenant_id: _Optional[str] = ..., from_position: _Optional[int] = ..., to_position: _Optional[int] = ..., events: _Optional[int] = ..., first_recorded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_recorded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., restart: _Optional[bool] = ...) -> None: ...

class Backup(_message.Message):
    __slots__ = ("backup_id", "kind", "parent_backup_id", "created_at", "destination", "format_version", "suite_version", "tenants", "events", "chunks", "stored_bytes", "label", "schedule", "suite_records")
    BACKUP_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PARENT_BACKUP_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    FORMAT_VERSION_FIELD_NUMBER: _ClassVar[int]
    SUITE_VERSION_FIELD_NUMBER: _ClassVar[int]
    TENANTS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    STORED_BYTES_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    SUITE_RECORDS_FIELD_NUMBER: _ClassVar[int]
    backup_id: str
    kind: BackupKind
    parent_backup_id: str
    created_at: _timestamp_pb2.Timestamp
    destination: str
    format_version: int
    suite_version: str
    tenants: _containers.RepeatedCompositeFieldContainer[TenantRange]
    events: int
    chunks: int
    stored_bytes: int
    label: str
    schedule: str
    suite_records: bool
    def __init__(self, backup_id: _Optional[str] = ..., kind: _Optional[_Union[BackupKind, str]] = ..., parent_backup_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., destination: _Optional[str] = ..., format_version: _Optional[int] = ..., suite_version: _Optional[str] = ..., tenants: _Optional[_Iterable[_Union[TenantRange, _Mapping]]] = ..., events: _Optional[int] = ..., chunks: _Optional[int] = ..., stored_bytes: _Optional[int] = ..., label: _Optional[str] = ..., schedule: _Optional[str] = ..., suite_records: _Optional[bool] = ...) -> None: ...

class CreateBackupRequest(_message.Message):
    __slots__ = ("destination", "incremental", "parent_backup_id", "tenant_ids", "label")
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    INCREMENTAL_FIELD_NUMBER: _ClassVar[int]
    PARENT_BACKUP_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_IDS_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    destination: str
    incremental: bool
    parent_backup_id: str
    tenant_ids: _containers.RepeatedScalarFieldContainer[str]
    label: str
    def __init__(self, destination: _Optional[str] = ..., incremental: _Optional[bool] = ..., parent_backup_id: _Optional[str] = ..., tenant_ids: _Optional[_Iterable[str]] = ..., label: _Optional[str] = ...) -> None: ...

class CreateBackupResponse(_message.Message):
    __slots__ = ("backup_id", "phase", "events", "bytes", "percent", "events_per_second", "bytes_per_second", "eta", "done", "backup")
    BACKUP_ID_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    EVENTS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ETA_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    BACKUP_FIELD_NUMBER: _ClassVar[int]
    backup_id: str
    phase: str
    events: int
    bytes: int
    percent: float
    events_per_second: float
    bytes_per_second: float
    eta: _duration_pb2.Duration
    done: bool
    backup: Backup
    def __init__(self, backup_id: _Optional[str] = ..., phase: _Optional[str] = ..., events: _Optional[int] = ..., bytes: _Optional[int] = ..., percent: _Optional[float] = ..., events_per_second: _Optional[float] = ..., bytes_per_second: _Optional[float] = ..., eta: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., done: _Optional[bool] = ..., backup: _Optional[_Union[Backup, _Mapping]] = ...) -> None: ...

class ListBackupsRequest(_message.Message):
    __slots__ = ("destination", "page_size", "page_token", "tenant_id")
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    destination: str
    page_size: int
    page_token: str
    tenant_id: str
    def __init__(self, destination: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., tenant_id: _Optional[str] = ...) -> None: ...

class ListBackupsResponse(_message.Message):
    __slots__ = ("backups", "next_page_token")
    BACKUPS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    backups: _containers.RepeatedCompositeFieldContainer[Backup]
    next_page_token: str
    def __init__(self, backups: _Optional[_Iterable[_Union[Backup, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetBackupRequest(_message.Message):
    __slots__ = ("destination", "backup_id")
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    BACKUP_ID_FIELD_NUMBER: _ClassVar[int]
    destination: str
    backup_id: str
    def __init__(self, destination: _Optional[str] = ..., backup_id: _Optional[str] = ...) -> None: ...

class GetBackupResponse(_message.Message):
    __slots__ = ("backup",)
    BACKUP_FIELD_NUMBER: _ClassVar[int]
    backup: Backup
    def __init__(self, backup: _Optional[_Union[Backup, _Mapping]] = ...) -> None: ...

class VerifyBackupRequest(_message.Message):
    __slots__ = ("destination", "backup_id")
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    BACKUP_ID_FIELD_NUMBER: _ClassVar[int]
    destination: str
    backup_id: str
    def __init__(self, destination: _Optional[str] = ..., backup_id: _Optional[str] = ...) -> None: ...

class VerifyBackupResponse(_message.Message):
    __slots__ = ("ok", "chunks_checked", "bytes_checked", "problems")
    OK_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_CHECKED_FIELD_NUMBER: _ClassVar[int]
    BYTES_CHECKED_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    chunks_checked: int
    bytes_checked: int
    problems: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ok: _Optional[bool] = ..., chunks_checked: _Optional[int] = ..., bytes_checked: _Optional[int] = ..., problems: _Optional[_Iterable[str]] = ...) -> None: ...

class RestoreBackupRequest(_message.Message):
    __slots__ = ("destination", "backup_id", "tenant_ids", "stream_prefix", "to_time", "to_positions", "dry_run")
    class ToPositionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    BACKUP_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_IDS_FIELD_NUMBER: _ClassVar[int]
    STREAM_PREFIX_FIELD_NUMBER: _ClassVar[int]
    TO_TIME_FIELD_NUMBER: _ClassVar[int]
    TO_POSITIONS_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    destination: str
    backup_id: str
    tenant_ids: _containers.RepeatedScalarFieldContainer[str]
    stream_prefix: str
    to_time: _timestamp_pb2.Timestamp
    to_positions: _containers.ScalarMap[str, int]
    dry_run: bool
    def __init__(self, destination: _Optional[str] = ..., backup_id: _Optional[str] = ..., tenant_ids: _Optional[_Iterable[str]] = ..., stream_prefix: _Optional[str] = ..., to_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., to_positions: _Optional[_Mapping[str, int]] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class TenantRestore(_message.Message):
    __slots__ = ("tenant_id", "events", "streams", "last_position")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    LAST_POSITION_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    events: int
    streams: int
    last_position: int
    def __init__(self, tenant_id: _Optional[str] = ..., events: _Optional[int] = ..., streams: _Optional[int] = ..., last_position: _Optional[int] = ...) -> None: ...

class RestoreBackupResponse(_message.Message):
    __slots__ = ("phase", "events", "bytes", "percent", "events_per_second", "eta", "done", "tenants", "chain", "dry_run")
    PHASE_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    EVENTS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ETA_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    TENANTS_FIELD_NUMBER: _ClassVar[int]
    CHAIN_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    phase: str
    events: int
    bytes: int
    percent: float
    events_per_second: float
    eta: _duration_pb2.Duration
    done: bool
    tenants: _containers.RepeatedCompositeFieldContainer[TenantRestore]
    chain: _containers.RepeatedScalarFieldContainer[str]
    dry_run: bool
    def __init__(self, phase: _Optional[str] = ..., events: _Optional[int] = ..., bytes: _Optional[int] = ..., percent: _Optional[float] = ..., events_per_second: _Optional[float] = ..., eta: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., done: _Optional[bool] = ..., tenants: _Optional[_Iterable[_Union[TenantRestore, _Mapping]]] = ..., chain: _Optional[_Iterable[str]] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class DeleteBackupRequest(_message.Message):
    __slots__ = ("destination", "backup_id")
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    BACKUP_ID_FIELD_NUMBER: _ClassVar[int]
    destination: str
    backup_id: str
    def __init__(self, destination: _Optional[str] = ..., backup_id: _Optional[str] = ...) -> None: ...

class DeleteBackupResponse(_message.Message):
    __slots__ = ("backup_id",)
    BACKUP_ID_FIELD_NUMBER: _ClassVar[int]
    backup_id: str
    def __init__(self, backup_id: _Optional[str] = ...) -> None: ...

class Retention(_message.Message):
    __slots__ = ("keep_last", "keep_daily", "keep_weekly", "keep_monthly")
    KEEP_LAST_FIELD_NUMBER: _ClassVar[int]
    KEEP_DAILY_FIELD_NUMBER: _ClassVar[int]
    KEEP_WEEKLY_FIELD_NUMBER: _ClassVar[int]
    KEEP_MONTHLY_FIELD_NUMBER: _ClassVar[int]
    keep_last: int
    keep_daily: int
    keep_weekly: int
    keep_monthly: int
    def __init__(self, keep_last: _Optional[int] = ..., keep_daily: _Optional[int] = ..., keep_weekly: _Optional[int] = ..., keep_monthly: _Optional[int] = ...) -> None: ...

class ScheduleRun(_message.Message):
    __slots__ = ("started_at", "finished_at", "backup_id", "ok", "error", "deleted")
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    BACKUP_ID_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    backup_id: str
    ok: bool
    error: str
    deleted: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., backup_id: _Optional[str] = ..., ok: _Optional[bool] = ..., error: _Optional[str] = ..., deleted: _Optional[_Iterable[str]] = ...) -> None: ...

class BackupSchedule(_message.Message):
    __slots__ = ("name", "interval", "cron", "destination", "full_every", "retention", "tenant_ids", "enabled", "last_run", "next_run_at", "runs")
    NAME_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    CRON_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    FULL_EVERY_FIELD_NUMBER: _ClassVar[int]
    RETENTION_FIELD_NUMBER: _ClassVar[int]
    TENANT_IDS_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    LAST_RUN_FIELD_NUMBER: _ClassVar[int]
    NEXT_RUN_AT_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    name: str
    interval: _duration_pb2.Duration
    cron: str
    destination: str
    full_every: int
    retention: Retention
    tenant_ids: _containers.RepeatedScalarFieldContainer[str]
    enabled: bool
    last_run: ScheduleRun
    next_run_at: _timestamp_pb2.Timestamp
    runs: int
    def __init__(self, name: _Optional[str] = ..., interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., cron: _Optional[str] = ..., destination: _Optional[str] = ..., full_every: _Optional[int] = ..., retention: _Optional[_Union[Retention, _Mapping]] = ..., tenant_ids: _Optional[_Iterable[str]] = ..., enabled: _Optional[bool] = ..., last_run: _Optional[_Union[ScheduleRun, _Mapping]] = ..., next_run_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., runs: _Optional[int] = ...) -> None: ...

class PutBackupScheduleRequest(_message.Message):
    __slots__ = ("schedule",)
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    schedule: BackupSchedule
    def __init__(self, schedule: _Optional[_Union[BackupSchedule, _Mapping]] = ...) -> None: ...

class PutBackupScheduleResponse(_message.Message):
    __slots__ = ("schedule",)
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    schedule: BackupSchedule
    def __init__(self, schedule: _Optional[_Union[BackupSchedule, _Mapping]] = ...) -> None: ...

class ListBackupSchedulesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListBackupSchedulesResponse(_message.Message):
    __slots__ = ("schedules", "next_page_token")
    SCHEDULES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    schedules: _containers.RepeatedCompositeFieldContainer[BackupSchedule]
    next_page_token: str
    def __init__(self, schedules: _Optional[_Iterable[_Union[BackupSchedule, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteBackupScheduleRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteBackupScheduleResponse(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...
