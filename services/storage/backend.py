"""What a storage backend provides, as small interfaces by concern; the servicer talks only to these.

- EventLog: appends (the rules are services.storage.append_rules, the same for every backend), reads by
  id, stream, filter and position, stream listing, and waiting for commits;
- Snapshots: folded stream states;
- Records: control-plane records (users, API-key hashes, flags, audit...) with compare-and-set;
- TenantRegistry: tenants, their internal numbers and status, and their deletion;
- UsageCounters: what each tenant uses;
- StreamLifecycle: stream metadata, deletion and erasure;
- StorageBackend: all of them, with a lifecycle and statistics.

Everything is typed with the storage service's own types (allsource.storage.v1, and the dataclasses
here), and every method is awaitable. Events cross these interfaces as serialized StoredEvent bytes,
so the servicer forwards them without parsing. Backends convert their driver's exceptions into
shared.core.errors types at the boundary: no driver exception escapes.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

from allsource.storage.v1 import lifecycle_pb2, model_pb2

from shared.config.settings import StorageSettings
from shared.core.errors import AllSourceError

AppendResult: TypeAlias = model_pb2.AppendResult | AllSourceError


class StorageOpenError(Exception):
    """The backend could not be opened (locked by another process, corrupt, no permission...)."""


@dataclass(frozen=True, slots=True)
class TenantFigures:
    """One tenant's figures for the metrics endpoint."""

    tenant_id: str
    events: int
    streams: int
    stored_bytes: int
    quota_used: dict[str, float]  # quota name -> share used (1.0 = at the limit)


@dataclass(frozen=True, slots=True)
class EngineFigures:
    """The engine's figures for the metrics endpoint (read at scrape time, never on a call's path)."""

    live_sst_bytes: int
    memtable_bytes: int
    pending_compaction_bytes: int
    block_cache_bytes: int  # in use
    block_cache_capacity_bytes: int  # storage.block_cache_bytes, or less under memory pressure
    volume_free_bytes: int
    volume_size_bytes: int
    tenants: list[TenantFigures]  # the tenants with the most events, at most the number asked for


@dataclass(frozen=True, slots=True)
class AppendOp:
    """One atomic append for one tenant."""

    tenant_id: str
    request: model_pb2.AppendInput


@dataclass(slots=True)
class StreamSlice:
    """Events of one stream, in the requested direction."""

    events: list[bytes]
    stream_version: int
    next_version: int
    # The stream's visible events change without a new head or lifecycle change (max_age, max_count),
    # so a read cache must not keep the slice.
    volatile: bool = False


@dataclass(slots=True)
class EventRun:
    """Matching events after a position; every match up to scanned_to has been returned."""

    events: list[bytes]
    scanned_to: int
    end_of_range: bool
    # The events' positions, in the same order, when the backend knows them without decoding the events
    # (None otherwise): consumer groups then need not decode what they only dispatch by position.
    positions: list[int] | None = None
    # How the read was made (ListEvents' explain): the index it walked ("log", "event_type",
    # "category_type", "stream", with "+time" when a time window narrowed the positions first) and the keys it examined.
    index: str = ""
    examined: int = 0


@dataclass(slots=True)
class Record:
    """A control-plane record: an opaque value under a namespace and key, with a revision."""

    namespace: str
    key: str
    value: bytes
    revision: int


@dataclass(slots=True)
class Snapshot:
    """A stored fold of a stream at a version."""

    version: int
    state: bytes
    recorded_ns: int


@dataclass(slots=True)
class TenantUsage:
    """A tenant's usage as the backend measures it."""

    events: int
    streams: int
    storage_bytes: int
    events_this_hour: int
    events_today: int
    queries_this_hour: int
    events_this_minute: int = 0


@dataclass(slots=True)
class IndexFigures:
    """One index of a tenant, counted: entries, bytes of keys and values, whether the count stopped at
    its bound, and an unfinished backfill's last and next positions (0 when complete)."""

    index: str
    entries: int
    bytes: int
    partial: bool = False
    backfill_target: int = 0
    backfill_next: int = 0


class EventLog(abc.ABC):
    """Each tenant's log of events, with stream, type, id and position access."""

    @abc.abstractmethod
    async def append(self, ops: Sequence[AppendOp]) -> list[AppendResult]:
        """Perform independent atomic appends; one result (response or error) per op, in order."""

    @abc.abstractmethod
    async def get_event(self, tenant_id: str, event_id: str) -> bytes:
        """One serialized event by id; NotFound(EVENT_NOT_FOUND) when the tenant has none."""

    @abc.abstractmethod
    async def read_stream(
        self,
        tenant_id: str,
        stream_id: str,
        *,
        backward: bool,
        from_version: int,
        limit: int,
        to_version: int = 0,
        max_bytes: int = 0,
    ) -> StreamSlice:
        """A slice of one stream, at most max_bytes of events (0: the backend's bound; one event always
        goes); NotFound(STREAM_NOT_FOUND) when it has no events."""

    @abc.abstractmethod
    async def read_events(
        self,
        tenant_id: str,
        event_filter: model_pb2.EventFilter,
        *,
        after_position: int,
        limit: int,
        max_scan: int,
        max_bytes: int = 0,
    ) -> EventRun:
        """Matching events with a position greater than after_position, examining at most max_scan events
        and returning at most max_bytes of them (0: the backend's bound; one event always goes)."""

    @abc.abstractmethod
    async def list_streams(
        self, tenant_id: str, *, prefix: str, after: str, limit: int
    ) -> tuple[list[model_pb2.StreamInfo], bool]:
        """Streams in id order after `after`; the flag says there are no more."""

    @abc.abstractmethod
    async def get_stream(
        self, tenant_id: str, stream_id: str, as_of_ns: int | None
    ) -> tuple[model_pb2.StreamInfo, int]:
        """A stream's info and its version at as_of_ns (its current version when None)."""

    @abc.abstractmethod
    async def volatile(self, tenant_id: str, stream_id: str) -> bool:
        """Whether the stream's visible events change with time or appends alone (its metadata has a
        max_age or a max_count): what is read of it may not be cached."""

    @abc.abstractmethod
    def present(self, tenant_id: str, positions: list[int]) -> list[bool]:
        """For each position, whether the tenant's event there still exists and is visible (not erased,
        truncated or in a deleted stream): what holds copies of events (consumer groups) drops the rest."""

    @abc.abstractmethod
    async def head_position(self, tenant_id: str) -> int:
        """The tenant's last committed position (0 when it has no events)."""

    @abc.abstractmethod
    async def wait_for_commit(self, tenant_id: str, after_position: int, timeout: float) -> bool:
        """Wait until the tenant's head passes after_position; False on timeout."""


class Snapshots(abc.ABC):
    """Folded states of streams."""

    @abc.abstractmethod
    async def get_snapshot(self, tenant_id: str, stream_id: str, max_version: int) -> Snapshot | None:
        """The newest snapshot at or below max_version."""

    @abc.abstractmethod
    async def put_snapshot(self, tenant_id: str, stream_id: str, snapshot: Snapshot) -> None:
        """Store a snapshot."""


class Records(abc.ABC):
    """Control-plane records; tenant "" holds suite-wide ones."""

    @abc.abstractmethod
    async def put_record(
        self, tenant_id: str, namespace: str, key: str, value: bytes, expected_revision: int | None
    ) -> Record:
        """Write a record; with expected_revision, only if the stored revision is that (0: absent)."""

    @abc.abstractmethod
    async def get_record(self, tenant_id: str, namespace: str, key: str) -> Record:
        """One record; NotFound(RECORD_NOT_FOUND) when absent."""

    @abc.abstractmethod
    async def list_records(self, tenant_id: str, namespace: str, after: str, limit: int) -> tuple[list[Record], bool]:
        """Records of a namespace in key order after `after`; the flag says there are no more."""

    @abc.abstractmethod
    async def delete_record(self, tenant_id: str, namespace: str, key: str, expected_revision: int | None) -> bool:
        """Delete a record (with expected_revision, only at that revision); False when there was none."""

    @abc.abstractmethod
    async def wait_for_records(self, tenant_id: str, namespace: str, timeout: float) -> bool:
        """Wait until a record of the namespace is written; False on timeout."""


class TenantRegistry(abc.ABC):
    """The tenants, each with its own internal number (never reused) and status."""

    @abc.abstractmethod
    async def check_tenant_usable(self, tenant_id: str) -> None:
        """Raise NotFound(TENANT_NOT_FOUND) or FailedPrecondition(TENANT_INACTIVE) (cheap: called per request)."""

    @abc.abstractmethod
    async def tenant_incarnation(self, tenant_id: str) -> int:
        """Which tenant of that id this is (0: none): a tenant deleted and created again is another one."""

    @abc.abstractmethod
    async def put_tenant(self, tenant: model_pb2.TenantRecord, expected_revision: int) -> int:
        """Create (expected_revision 0; AlreadyExists(TENANT_ALREADY_EXISTS) when it exists) or replace a
        tenant at its revision; returns the new revision. Deactivation ends its live subscriptions."""

    @abc.abstractmethod
    async def get_tenant(self, tenant_id: str) -> tuple[model_pb2.TenantRecord, int]:
        """A tenant and its revision; NotFound(TENANT_NOT_FOUND) when absent."""

    @abc.abstractmethod
    async def list_tenants(self, after: str, limit: int) -> tuple[list[model_pb2.TenantRecord], bool]:
        """Tenants in id order after `after`; the flag says there are no more."""

    @abc.abstractmethod
    async def delete_tenant(self, tenant_id: str) -> tuple[int, int]:
        """Delete a tenant and all of its data; returns (events deleted, keys deleted)."""


class UsageCounters(abc.ABC):
    """What each tenant uses."""

    @abc.abstractmethod
    async def tenant_usage(self, tenant_id: str) -> TenantUsage:
        """The tenant's measured usage."""

    @abc.abstractmethod
    async def add_usage(self, tenant_id: str, queries: int) -> int:
        """Add query calls to the tenant's current hour; returns the hour's count with them."""

    @abc.abstractmethod
    async def quota_warning(self, tenant_id: str, soft_ratio: float) -> str:
        """A warning when the tenant is past `soft_ratio` of a quota storage enforces, else ""."""

    @abc.abstractmethod
    async def index_stats(self, tenant_id: str) -> list[IndexFigures]:
        """Each index of the tenant counted (at most storage.index_stats_max_keys keys each)."""


class StreamLifecycle(abc.ABC):
    """Stream metadata (retention, truncation), deletion and erasure (rules: services.storage.lifecycle).
    Reads honour them at once; the backend removes what they hide in the background."""

    @abc.abstractmethod
    async def get_stream_metadata(self, tenant_id: str, stream_id: str) -> lifecycle_pb2.GetStreamMetadataResponse:
        """A stream's metadata and deletion state."""

    @abc.abstractmethod
    async def set_stream_metadata(self, request: lifecycle_pb2.SetStreamMetadataRequest) -> int:
        """Replace a stream's metadata (compare-and-set when asked); returns its new version."""

    @abc.abstractmethod
    async def delete_stream(self, request: lifecycle_pb2.DeleteStreamRequest) -> lifecycle_pb2.DeleteStreamResponse:
        """Soft- or hard-delete a stream at an expected version."""

    @abc.abstractmethod
    async def delete_events(self, request: lifecycle_pb2.DeleteEventsRequest) -> lifecycle_pb2.DeleteEventsResponse:
        """Erase (or count, with dry_run) a tenant's events matching criteria."""


class StorageBackend(EventLog, Snapshots, Records, TenantRegistry, UsageCounters, StreamLifecycle):
    """A whole backend: every interface above, opened and closed as one."""

    name: str

    @abc.abstractmethod
    async def start(self) -> None:
        """Open the backend; after this every other method may be called."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish pending writes and release the backend."""

    @abc.abstractmethod
    async def stats(self) -> model_pb2.StorageStats:
        """Measured statistics."""

    def head_of(self, tenant_id: str) -> int:
        """The tenant's last position as far as this process knows now, without waiting (metrics)."""
        return 0

    def figures(self, top_tenants: int) -> EngineFigures | None:
        """Figures for the metrics endpoint, read when it is scraped (None: this backend has none)."""
        return None

    def apply_settings(self, settings: StorageSettings) -> None:
        """Take reloaded storage settings (the reloadable ones) into use."""
