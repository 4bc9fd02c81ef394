"""The interface every storage backend implements; the gRPC servicer talks only to this.

Events cross this interface as serialized allsource.v1.Event bytes, so the servicer can forward them
without parsing. Backends convert their driver's exceptions into shared.core.errors types at the boundary.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

from allsource.v1 import admin_pb2, event_pb2, ingest_pb2, tenant_pb2

from shared.config.settings import StorageSettings
from shared.core.errors import AllSourceError

AppendResult: TypeAlias = ingest_pb2.AppendEventsResponse | AllSourceError


@dataclass(frozen=True, slots=True)
class AppendOp:
    """One atomic append for one tenant."""

    tenant_id: str
    request: ingest_pb2.AppendEventsRequest


@dataclass(slots=True)
class StreamSlice:
    """Events of one stream, in the requested direction."""

    events: list[bytes]
    stream_version: int
    next_version: int


@dataclass(slots=True)
class EventRun:
    """Matching events after a position; every match up to scanned_to has been returned."""

    events: list[bytes]
    scanned_to: int
    end_of_range: bool


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


class StorageBackend(abc.ABC):
    """An event log with stream, type, id and position access, live notification and snapshots."""

    name: str

    @abc.abstractmethod
    async def start(self) -> None:
        """Open the backend; after this every other method may be called."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish pending writes and release the backend."""

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
    ) -> StreamSlice:
        """A slice of one stream; NotFound(STREAM_NOT_FOUND) when it has no events."""

    @abc.abstractmethod
    async def read_events(
        self,
        tenant_id: str,
        event_filter: event_pb2.EventFilter,
        *,
        after_position: int,
        limit: int,
        max_scan: int,
    ) -> EventRun:
        """Matching events with a position greater than after_position, examining at most max_scan events."""

    @abc.abstractmethod
    async def list_streams(
        self, tenant_id: str, *, prefix: str, after: str, limit: int
    ) -> tuple[list[event_pb2.StreamInfo], bool]:
        """Streams in id order after `after`; the flag says there are no more."""

    @abc.abstractmethod
    async def get_stream(
        self, tenant_id: str, stream_id: str, as_of_ns: int | None
    ) -> tuple[event_pb2.StreamInfo, int]:
        """A stream's info and its version at as_of_ns (its current version when None)."""

    @abc.abstractmethod
    def head_position(self, tenant_id: str) -> int:
        """The tenant's last committed position (0 when it has no events)."""

    @abc.abstractmethod
    async def wait_for_commit(self, tenant_id: str, after_position: int, timeout: float) -> bool:
        """Wait until the tenant's head passes after_position; False on timeout."""

    @abc.abstractmethod
    async def get_snapshot(self, tenant_id: str, stream_id: str, max_version: int) -> Snapshot | None:
        """The newest snapshot at or below max_version."""

    @abc.abstractmethod
    async def put_snapshot(self, tenant_id: str, stream_id: str, snapshot: Snapshot) -> None:
        """Store a snapshot."""

    def apply_settings(self, settings: StorageSettings) -> None:  # noqa: B027 - optional hook
        """Take reloaded storage settings (the reloadable ones) into use."""

    @abc.abstractmethod
    async def stats(self) -> admin_pb2.StorageStats:
        """Measured statistics."""

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

    # -- tenants -------------------------------------------------------------------------------------

    @abc.abstractmethod
    def check_tenant_usable(self, tenant_id: str) -> None:
        """Raise FailedPrecondition(TENANT_INACTIVE) for an inactive tenant (cheap: called per request)."""

    @abc.abstractmethod
    def tenant_incarnation(self, tenant_id: str) -> int:
        """Which tenant of that id this is (0: none): a tenant deleted and created again is another one."""

    @abc.abstractmethod
    async def put_tenant(self, tenant: tenant_pb2.Tenant, expected_revision: int) -> int:
        """Create (expected_revision 0; AlreadyExists(TENANT_ALREADY_EXISTS) when it exists) or replace a
        tenant at its revision; returns the new revision. Deactivation ends its live subscriptions."""

    @abc.abstractmethod
    async def get_tenant(self, tenant_id: str) -> tuple[tenant_pb2.Tenant, int]:
        """A tenant and its revision; NotFound(TENANT_NOT_FOUND) when absent."""

    @abc.abstractmethod
    async def list_tenants(self, after: str, limit: int) -> tuple[list[tenant_pb2.Tenant], bool]:
        """Tenants in id order after `after`; the flag says there are no more."""

    @abc.abstractmethod
    async def delete_tenant(self, tenant_id: str) -> tuple[int, int]:
        """Delete a tenant and all of its data; returns (events deleted, keys deleted)."""

    @abc.abstractmethod
    async def tenant_usage(self, tenant_id: str) -> TenantUsage:
        """The tenant's measured usage."""

    @abc.abstractmethod
    async def add_usage(self, tenant_id: str, queries: int) -> None:
        """Add query calls to the tenant's current hour."""
