"""StorageService over a StorageBackend.

Every call has been admitted with a signed scope (shared.auth.guard.ServiceGuard); each request's tenant
is checked against it again here (each append against its own scope), and control-plane namespaces
have an access policy: private signing keys are readable by the admin service only, and only the admin
service writes identity and flag records. Read responses are assembled from stored event bytes (see
codec.repeated_events): events are never decoded and re-encoded on their way out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from allsource.storage.v1 import backup_pb2, groups_pb2, lifecycle_pb2, storage_pb2, storage_pb2_grpc
from allsource.v1 import groups_pb2 as public_groups_pb2

from services.storage import codec
from services.storage.backend import AppendOp, Record, Snapshot, StorageBackend
from services.storage.backup.jobs import BackupJobs
from services.storage.feed import CommitFeed, stream_change
from services.storage.groups import MAX_REPLAY, GroupEngine
from services.storage.subscribe import SubscriptionParams, follow
from shared.auth.scopes import SYSTEM_TENANT, Scope, ScopeVerifier, require_tenant, scope_var
from shared.core.errors import (
    AllSourceError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
)
from shared.core.reasons import Reason
from shared.core.timestamps import from_timestamp, to_timestamp
from shared.core.wire import varint
from shared.limits.memory import MemoryMonitor
from shared.rpc.streams import Closing, until_closed
from shared.storage.client import BATCH_READ_BYTES
from shared.telemetry import tracing
from shared.telemetry.logs import tenant_var
from shared.telemetry.metrics import READ_BYTES

MAX_LIMIT = 2000
MAX_BATCH_IDS, MAX_BATCH_READS = 1000, 100  # BatchGetEvents ids, ReadStreams reads
MAX_BATCH_BYTES = BATCH_READ_BYTES  # of events in one batch read's response
# A record watch with nothing to send looks again this often (a write wakes it at once).
WATCH_IDLE_S = 30.0


ADMIN_ONLY_READ = frozenset({"signing_keys"})
ANY_SERVICE_WRITES = frozenset({"api_key_usage", "audit"})


def _scope() -> Scope:
    scope = scope_var.get()
    if scope is None:  # the guard always sets it; refuse rather than assume
        raise PermissionDenied("no service scope", reason=Reason.SERVICE_CREDENTIALS_MISSING)
    return scope


def touched(tenant_id: str) -> None:
    """Note a tenant the current call acts on (its access-log line names them)."""
    if tenant_id:
        seen = tenant_var.get()
        if not seen:
            tenant_var.set(tenant_id)
        elif tenant_id not in seen.split(","):
            tenant_var.set(f"{seen},{tenant_id}")


def check_tenant(tenant_id: str, scope: Scope | None = None) -> None:
    """The request's tenant must be the scope's; the system scope is the admin service's alone."""
    touched(tenant_id)
    scope = scope or _scope()
    if scope.tenant_id == SYSTEM_TENANT:
        if scope.service != "admin":
            raise PermissionDenied(
                "only the admin service may act on a tenant without acting for it", reason=Reason.TENANT_SCOPE_MISMATCH
            )
        return
    require_tenant(scope, tenant_id)


def check_records(tenant_id: str, namespace: str, *, write: bool) -> None:
    """Access policy of control-plane records."""
    touched(tenant_id)
    scope = _scope()
    if tenant_id:
        if scope.tenant_id not in (SYSTEM_TENANT, tenant_id):
            require_tenant(scope, tenant_id, what="record")
    elif scope.tenant_id != SYSTEM_TENANT:
        # Suite-wide records (API keys, the audit log, the change feed) are no tenant's to reach.
        raise PermissionDenied("suite-wide records need the system scope", reason=Reason.TENANT_SCOPE_MISMATCH)
    if scope.service == "admin":
        return
    if namespace in ADMIN_ONLY_READ or (write and namespace not in ANY_SERVICE_WRITES):
        raise PermissionDenied(
            f"the {scope.service} service may not {'write' if write else 'read'} {namespace} records",
            reason=Reason.RECORD_ACCESS_DENIED,
        )


def _require_system(what: str, *, admin_only: bool = True) -> Scope:
    scope = _scope()
    if scope.tenant_id != SYSTEM_TENANT or (admin_only and scope.service != "admin"):
        raise PermissionDenied(f"only the admin service may {what}", reason=Reason.TENANT_SCOPE_MISMATCH)
    return scope


class StorageServicer(storage_pb2_grpc.StorageServiceServicer):
    """The internal storage API."""

    def __init__(self, backend: StorageBackend, scopes: ScopeVerifier, max_subscriptions: int = 20_000) -> None:
        self.backend = backend
        self.scopes = scopes
        self.max_subscriptions = max_subscriptions
        self.closing = Closing()
        self.subscriptions = 0
        # Live subscriptions: tenant and the position each has examined so far (for the lag metric).
        self.following: dict[int, tuple[str, list[int]]] = {}
        self.started_ns = time.time_ns()
        self.soft_ratio = 0.8  # limits.soft_limit_ratio: appends past it carry a quota warning
        self.memory: MemoryMonitor | None = None  # set by the storage process
        self.groups = GroupEngine(backend)
        # Backups, when the backend has them (set by the storage process).
        self.backups: BackupJobs | None = None
        self.feed = CommitFeed(ack_timeout_s=2.0, heartbeat_s=0.1, max_followers=64)  # storage.commit_feed_*

    async def _check(self, tenant_id: str) -> None:
        """The request's tenant is the scope's, and exists and is active (the admin service's system scope
        may touch an inactive tenant: that is how it is managed)."""
        scope = _scope()
        check_tenant(tenant_id, scope)
        if scope.tenant_id != SYSTEM_TENANT:
            await self.backend.check_tenant_usable(tenant_id)

    async def Append(
        self, request: storage_pb2.AppendRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.AppendResponse:
        # Each operation is checked against its own scope (the ingest service coalesces several callers'
        # appends into one call); one that fails is answered alone and never written.
        call_scope = _scope()
        refused: dict[int, AllSourceError] = {}
        admitted = []
        for i, op in enumerate(request.operations):
            try:
                scope = self.scopes.verify(op.scope) if op.scope else call_scope
                if scope.service != call_scope.service:
                    raise PermissionDenied(
                        "an operation's scope is another service's", reason=Reason.SERVICE_NOT_ALLOWED
                    )
                check_tenant(op.tenant_id, scope)
                await self.backend.check_tenant_usable(op.tenant_id)
            except AllSourceError as exc:
                refused[i] = exc
                continue
            admitted.append(AppendOp(op.tenant_id, op.request))
        written = iter(await self.backend.append(admitted) if admitted else [])
        results = [refused[i] if i in refused else next(written) for i in range(len(request.operations))]
        # The read caches learn of the new heads before anyone learns of the appends (services.storage.feed).
        await self.feed.publish(
            [
                stream_change(op.tenant_id, op.request.stream_id, result.last_version, result.last_position)
                for op, result in zip(request.operations, results, strict=True)
                if not isinstance(result, AllSourceError) and not result.deduplicated
            ]
        )
        response = storage_pb2.AppendResponse()
        warnings: dict[str, str] = {}  # per tenant, as its quotas stand after these appends
        for op, result in zip(request.operations, results, strict=True):
            outcome = response.outcomes.add()
            if isinstance(result, AllSourceError):
                outcome.error.CopyFrom(result.to_status())
            else:
                outcome.success.CopyFrom(result)
                warning = warnings.get(op.tenant_id)
                if warning is None:
                    warning = warnings[op.tenant_id] = await self.backend.quota_warning(op.tenant_id, self.soft_ratio)
                if warning:
                    outcome.quota_warning = warning
        return response

    async def GetEvent(
        self, request: storage_pb2.GetEventRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.GetEventResponse:
        await self._check(request.tenant_id)
        with tracing.span("rocksdb.read", {"allsource.read": "event"}):
            data = await self.backend.get_event(request.tenant_id, request.event_id)
        READ_BYTES.inc(len(data))
        response = storage_pb2.GetEventResponse.FromString(b"\x0a" + varint(len(data)) + data)
        response.volatile = await self.backend.volatile(request.tenant_id, response.event.stream_id)
        return response

    async def ReadStream(
        self, request: storage_pb2.ReadStreamRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.ReadStreamResponse:
        await self._check(request.tenant_id)
        with tracing.span(
            "rocksdb.read", {"allsource.read": "stream", "allsource.stream_id": request.stream_id}
        ) as read:
            piece = await self._read_stream(request)
            if read is not None:
                read.set_attribute("allsource.events", len(piece.events))
        raw = codec.repeated_events(piece.events)
        READ_BYTES.inc(len(raw))
        response = storage_pb2.ReadStreamResponse.FromString(raw)
        response.stream_version = piece.stream_version
        response.next_version = piece.next_version
        response.volatile = piece.volatile
        return response

    async def _read_stream(self, request: storage_pb2.ReadStreamRequest) -> Any:
        return await self.backend.read_stream(
            request.tenant_id,
            request.stream_id,
            backward=request.backward,
            from_version=request.from_version,
            limit=_limit(request.limit),
            to_version=request.to_version,
            max_bytes=request.max_bytes,
        )

    async def ReadEvents(
        self, request: storage_pb2.ReadEventsRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.ReadEventsResponse:
        await self._check(request.tenant_id)
        if request.filter.stream_id and request.filter.stream_id_prefix:
            raise InvalidArgument(
                "stream_id and stream_id_prefix are exclusive",
                violations=[("filter.stream_id_prefix", "must be empty when filter.stream_id is set")],
            )
        with tracing.span("rocksdb.read", {"allsource.read": "events"}) as read:
            run = await self.backend.read_events(
                request.tenant_id,
                request.filter,
                after_position=request.after_position,
                limit=_limit(request.limit),
                max_scan=request.max_scan or 10_000,
                max_bytes=request.max_bytes,
            )
            if read is not None:
                read.set_attribute("allsource.events", len(run.events))
                read.set_attribute("allsource.scanned_to_position", run.scanned_to)
        raw = codec.repeated_events(run.events)
        READ_BYTES.inc(len(raw))
        response = storage_pb2.ReadEventsResponse.FromString(raw)
        response.scanned_to_position = run.scanned_to
        response.end_of_range = run.end_of_range
        response.index, response.keys_examined = run.index, run.examined
        response.head_position = await self.backend.head_position(request.tenant_id)
        return response

    async def ListStreams(
        self, request: storage_pb2.ListStreamsRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.ListStreamsResponse:
        await self._check(request.tenant_id)
        streams, end = await self.backend.list_streams(
            request.tenant_id,
            prefix=request.stream_id_prefix,
            after=request.after_stream_id,
            limit=_limit(request.limit),
        )
        return storage_pb2.ListStreamsResponse(streams=streams, end=end)

    async def GetStream(
        self, request: storage_pb2.GetStreamRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.GetStreamResponse:
        await self._check(request.tenant_id)
        as_of = from_timestamp(request.as_of_time) if request.HasField("as_of_time") else None
        info, version = await self.backend.get_stream(request.tenant_id, request.stream_id, as_of)
        volatile = await self.backend.volatile(request.tenant_id, request.stream_id)
        return storage_pb2.GetStreamResponse(stream=info, version_at_time=version, volatile=volatile)

    async def Subscribe(
        self, request: storage_pb2.SubscribeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[storage_pb2.SubscribeResponse]:
        await self._check(request.tenant_id)
        params = SubscriptionParams(
            tenant_id=request.tenant_id,
            after_position=request.after_position,
            from_end=request.from_end,
            event_types=tuple(request.event_types),
            stream_id_prefix=request.stream_id_prefix,
            checkpoint_every_events=request.checkpoint_every_events or 1000,
            checkpoint_interval_s=(request.checkpoint_interval_ms or 5000) / 1000,
            max_batch_size=_limit(request.max_batch_size or 500),
            max_message_bytes=request.max_message_bytes,
        )
        # Stop following as soon as the call ends (the caller hung up), not at the next wake-up.
        ended = Closing()
        context.add_done_callback(lambda _: ended.set())
        if self.memory is not None:
            self.memory.admit("subscriptions")
        if self.subscriptions >= self.max_subscriptions:
            raise Unavailable(
                "storage follows as many subscriptions as it serves; retry later",
                reason=Reason.OVERLOADED,
                metadata={"limit": "storage.max_subscriptions", "value": str(self.max_subscriptions)},
                retry_after=5.0,
            )
        self.subscriptions += 1
        progress = [params.after_position]
        self.following[id(progress)] = (params.tenant_id, progress)
        try:
            # Interrupted where it waits when the call ends, and when the server drains (SHUTTING_DOWN).
            following = follow(self.backend, self.backend, params, self.closing, progress)
            async for message in until_closed(
                until_closed(following, ended, error=asyncio.CancelledError), self.closing
            ):
                yield message
        finally:
            self.subscriptions -= 1
            del self.following[id(progress)]

    def subscription_lag(self) -> int:
        """The largest number of positions any live subscription has yet to examine (metrics)."""
        lag = 0
        for tenant_id, progress in list(self.following.values()):
            lag = max(lag, self.backend.head_of(tenant_id) - progress[0])
        return lag

    async def GetSnapshot(
        self, request: storage_pb2.GetSnapshotRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.GetSnapshotResponse:
        await self._check(request.tenant_id)
        snap = await self.backend.get_snapshot(request.tenant_id, request.stream_id, request.max_version)
        if snap is None:
            return storage_pb2.GetSnapshotResponse(found=False)
        return storage_pb2.GetSnapshotResponse(
            found=True, version=snap.version, state=snap.state, updated_at=to_timestamp(snap.recorded_ns)
        )

    async def PutSnapshot(
        self, request: storage_pb2.PutSnapshotRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.PutSnapshotResponse:
        await self._check(request.tenant_id)
        await self.backend.put_snapshot(
            request.tenant_id,
            request.stream_id,
            Snapshot(request.version, request.state, from_timestamp(request.updated_at)),
        )
        return storage_pb2.PutSnapshotResponse()

    async def PutRecord(
        self, request: storage_pb2.PutRecordRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.PutRecordResponse:
        check_records(request.tenant_id, request.record.namespace, write=True)
        expected = request.expected_revision if request.HasField("expected_revision") else None
        rec = request.record
        stored = await self.backend.put_record(request.tenant_id, rec.namespace, rec.key, rec.value, expected)
        return storage_pb2.PutRecordResponse(record=_record(stored))

    async def GetRecord(
        self, request: storage_pb2.GetRecordRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.GetRecordResponse:
        check_records(request.tenant_id, request.namespace, write=False)
        stored = await self.backend.get_record(request.tenant_id, request.namespace, request.key)
        return storage_pb2.GetRecordResponse(record=_record(stored))

    async def ListRecords(
        self, request: storage_pb2.ListRecordsRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.ListRecordsResponse:
        check_records(request.tenant_id, request.namespace, write=False)
        records, end = await self.backend.list_records(
            request.tenant_id, request.namespace, request.after_key, _limit(request.limit)
        )
        return storage_pb2.ListRecordsResponse(records=[_record(r) for r in records], end=end)

    async def DeleteRecord(
        self, request: storage_pb2.DeleteRecordRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.DeleteRecordResponse:
        check_records(request.tenant_id, request.namespace, write=True)
        expected = request.expected_revision if request.HasField("expected_revision") else None
        deleted = await self.backend.delete_record(request.tenant_id, request.namespace, request.key, expected)
        return storage_pb2.DeleteRecordResponse(deleted=deleted)

    async def WatchRecords(
        self, request: storage_pb2.WatchRecordsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[storage_pb2.WatchRecordsResponse]:
        check_records(request.tenant_id, request.namespace, write=False)
        ended = Closing()
        context.add_done_callback(lambda _: ended.set())

        async def follow() -> AsyncIterator[storage_pb2.WatchRecordsResponse]:
            cursor = request.after_key
            while True:
                records, _ = await self.backend.list_records(request.tenant_id, request.namespace, cursor, 1000)
                if records:
                    cursor = records[-1].key
                    yield storage_pb2.WatchRecordsResponse(records=[_record(r) for r in records])
                    continue
                # No await separates the listing above from this wait: nothing written between is missed.
                await self.backend.wait_for_records(request.tenant_id, request.namespace, WATCH_IDLE_S)

        async for message in until_closed(until_closed(follow(), ended, error=asyncio.CancelledError), self.closing):
            yield message

    async def GetStats(
        self, request: storage_pb2.GetStatsRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.GetStatsResponse:
        touched(SYSTEM_TENANT)  # every tenant's figures
        _require_system("read suite-wide statistics")
        stats = await self.backend.stats()
        stats.subscriptions = self.subscriptions
        return storage_pb2.GetStatsResponse(stats=stats, started_at=to_timestamp(self.started_ns))

    # -- tenants -------------------------------------------------------------------------------------

    async def PutTenant(
        self, request: storage_pb2.PutTenantRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.PutTenantResponse:
        touched(request.tenant.tenant_id)
        _require_system("create or change tenants")
        revision = await self.backend.put_tenant(request.tenant, request.expected_revision)
        await self.feed.publish([stream_change(request.tenant.tenant_id)])
        return storage_pb2.PutTenantResponse(tenant=request.tenant, revision=revision)

    async def GetTenant(
        self, request: storage_pb2.GetTenantRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.GetTenantResponse:
        # Any service may look a tenant up (its status decides whether calls for it are served); a
        # tenant scope only its own.
        touched(request.tenant_id)
        require_tenant(_scope(), request.tenant_id)
        tenant, revision = await self.backend.get_tenant(request.tenant_id)
        return storage_pb2.GetTenantResponse(tenant=tenant, revision=revision)

    async def ListTenants(
        self, request: storage_pb2.ListTenantsRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.ListTenantsResponse:
        touched(SYSTEM_TENANT)
        _require_system("list tenants")
        tenants, end = await self.backend.list_tenants(request.after, _limit(request.limit))
        return storage_pb2.ListTenantsResponse(tenants=tenants, end=end)

    async def DeleteTenant(
        self, request: storage_pb2.DeleteTenantRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.DeleteTenantResponse:
        touched(request.tenant_id)
        _require_system("delete tenants")
        events, deleted = await self.backend.delete_tenant(request.tenant_id)
        await self.tenant_replaced(request.tenant_id)
        return storage_pb2.DeleteTenantResponse(events_deleted=events, keys_deleted=deleted)

    async def GetTenantUsage(
        self, request: storage_pb2.GetTenantUsageRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.GetTenantUsageResponse:
        check_tenant(request.tenant_id)
        usage = await self.backend.tenant_usage(request.tenant_id)
        return storage_pb2.GetTenantUsageResponse(
            events=usage.events,
            streams=usage.streams,
            storage_bytes=usage.storage_bytes,
            events_this_hour=usage.events_this_hour,
            events_today=usage.events_today,
            queries_this_hour=usage.queries_this_hour,
            events_this_minute=usage.events_this_minute,
        )

    async def GetIndexStats(
        self, request: storage_pb2.GetIndexStatsRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.GetIndexStatsResponse:
        check_tenant(request.tenant_id)
        figures = await self.backend.index_stats(request.tenant_id)
        return storage_pb2.GetIndexStatsResponse(
            indexes=[
                storage_pb2.IndexStats(
                    index=f.index,
                    entries=f.entries,
                    bytes=f.bytes,
                    partial=f.partial,
                    backfill_target=f.backfill_target,
                    backfill_next=f.backfill_next,
                )
                for f in figures
            ]
        )

    async def AddUsage(
        self, request: storage_pb2.AddUsageRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.AddUsageResponse:
        # Counted by the services for many tenants at once, so with their system scope.
        touched(request.tenant_id)
        require_tenant(_scope(), request.tenant_id)
        total = await self.backend.add_usage(request.tenant_id, request.queries)
        return storage_pb2.AddUsageResponse(queries_this_hour=total)

    # -- stream lifecycle ----------------------------------------------------------------------------

    async def GetStreamMetadata(
        self, request: lifecycle_pb2.GetStreamMetadataRequest, context: grpc.aio.ServicerContext
    ) -> lifecycle_pb2.GetStreamMetadataResponse:
        await self._check(request.tenant_id)
        return await self.backend.get_stream_metadata(request.tenant_id, request.stream_id)

    async def SetStreamMetadata(
        self, request: lifecycle_pb2.SetStreamMetadataRequest, context: grpc.aio.ServicerContext
    ) -> lifecycle_pb2.SetStreamMetadataResponse:
        await self._check(request.tenant_id)
        try:
            version = await self.backend.set_stream_metadata(request)
        finally:  # a refused change may still have raced one that went through: caches start over
            await self.feed.publish([stream_change(request.tenant_id, request.stream_id)])
        return lifecycle_pb2.SetStreamMetadataResponse(metadata_version=version)

    async def DeleteStream(
        self, request: lifecycle_pb2.DeleteStreamRequest, context: grpc.aio.ServicerContext
    ) -> lifecycle_pb2.DeleteStreamResponse:
        await self._check(request.tenant_id)
        try:
            reply = await self.backend.delete_stream(request)
        finally:
            await self.feed.publish([stream_change(request.tenant_id, request.stream_id)])
        await self.groups.drop_removed(request.tenant_id)  # no consumer group keeps a copy of them
        return reply

    async def DeleteEvents(
        self, request: lifecycle_pb2.DeleteEventsRequest, context: grpc.aio.ServicerContext
    ) -> lifecycle_pb2.DeleteEventsResponse:
        await self._check(request.tenant_id)
        try:
            reply = await self.backend.delete_events(request)
        finally:  # events of any stream of the tenant may be gone: its caches start over
            if not request.dry_run:
                await self.feed.publish([stream_change(request.tenant_id)])
        if not request.dry_run:
            await self.groups.drop_removed(request.tenant_id)  # no consumer group keeps a copy of them
        return reply

    # -- batch reads --------------------------------------------------------------------------------

    async def BatchGetEvents(
        self, request: storage_pb2.BatchGetEventsRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.BatchGetEventsResponse:
        await self._check(request.tenant_id)
        if len(request.event_ids) > MAX_BATCH_IDS:
            raise InvalidArgument(
                f"at most {MAX_BATCH_IDS} event ids", violations=[("event_ids", f"must be at most {MAX_BATCH_IDS}")]
            )
        found: list[bytes] = []
        missing: list[str] = []
        unread: list[str] = []
        budget = min(request.max_bytes or MAX_BATCH_BYTES, MAX_BATCH_BYTES)
        with tracing.span("rocksdb.read", {"allsource.read": "events", "allsource.events": len(request.event_ids)}):
            for event_id in request.event_ids:
                if budget <= 0:
                    unread.append(event_id)
                    continue
                try:
                    data = await self.backend.get_event(request.tenant_id, event_id)
                except NotFound:
                    missing.append(event_id)
                    continue
                if found and len(data) > budget:
                    budget = 0
                    unread.append(event_id)
                    continue
                found.append(data)
                budget -= len(data)
        raw = codec.repeated_events(found)
        READ_BYTES.inc(len(raw))
        response = storage_pb2.BatchGetEventsResponse.FromString(raw)
        volatile: dict[str, bool] = {}
        for event in response.events:
            if event.stream_id not in volatile:
                volatile[event.stream_id] = await self.backend.volatile(request.tenant_id, event.stream_id)
            response.volatile.append(volatile[event.stream_id])
        response.missing_event_ids.extend(missing)
        response.unread_event_ids.extend(unread)
        return response

    async def ReadStreams(
        self, request: storage_pb2.ReadStreamsRequest, context: grpc.aio.ServicerContext
    ) -> storage_pb2.ReadStreamsResponse:
        await self._check(request.tenant_id)
        if len(request.reads) > MAX_BATCH_READS:
            raise InvalidArgument(
                f"at most {MAX_BATCH_READS} reads", violations=[("reads", f"must be at most {MAX_BATCH_READS}")]
            )
        for i, read in enumerate(request.reads):
            if read.tenant_id not in ("", request.tenant_id):
                raise PermissionDenied(
                    f"reads[{i}] names another tenant than the request", reason=Reason.TENANT_SCOPE_MISMATCH
                )
        response = storage_pb2.ReadStreamsResponse()
        budget = min(request.max_bytes or MAX_BATCH_BYTES, MAX_BATCH_BYTES)
        spent = ResourceExhausted(
            "the reads before this one took the call's byte bound; read this stream again",
            reason=Reason.BATCH_RESULT_TOO_LARGE,
        ).to_status()
        with tracing.span("rocksdb.read", {"allsource.read": "streams", "allsource.streams": len(request.reads)}):
            for read in request.reads:
                outcome = response.outcomes.add()
                if budget <= 0:
                    outcome.error.CopyFrom(spent)
                    continue
                read.tenant_id = request.tenant_id
                read.max_bytes = min(read.max_bytes or budget, budget)
                try:
                    piece = await self._read_stream(read)
                except AllSourceError as exc:
                    outcome.error.CopyFrom(exc.to_status())
                    continue
                raw = codec.repeated_events(piece.events)
                budget -= len(raw)
                READ_BYTES.inc(len(raw))
                outcome.slice.MergeFromString(raw)
                outcome.slice.stream_version = piece.stream_version
                outcome.slice.next_version = piece.next_version
                outcome.slice.volatile = piece.volatile
        return response

    # -- the commit feed (services.storage.feed) -------------------------------------------------------

    async def FollowCommits(
        self, request_iterator: AsyncIterator[storage_pb2.FollowCommitsRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[storage_pb2.FollowCommitsResponse]:
        touched(SYSTEM_TENANT)
        acks = request_iterator.__aiter__()
        try:
            await acks.__anext__()  # the opening message (a malformed one is refused as such)
        except StopAsyncIteration:
            return
        _require_system("follow the commit feed", admin_only=False)
        follower = self.feed.join()

        async def read_acks() -> None:
            try:
                async for ack in acks:
                    if ack.tenant_ids:
                        follower.register(ack.tenant_ids)
                    follower.ack(ack.sequence)
            finally:  # the follower went away, or half-closed: nobody waits for it any more
                follower.end("the follower stopped acknowledging")

        reader = asyncio.ensure_future(read_acks())
        try:
            async for message in until_closed(follower.messages(self.feed.heartbeat_s), self.closing):
                yield message
        finally:
            reader.cancel()
            self.feed.leave(follower)

    # -- consumer groups (services.storage.groups) ------------------------------------------------------

    async def CreateConsumerGroup(
        self, request: groups_pb2.CreateConsumerGroupRequest, context: grpc.aio.ServicerContext
    ) -> groups_pb2.CreateConsumerGroupResponse:
        await self._check(request.tenant_id)
        quota = request.max_groups if request.HasField("max_groups") else None
        group = await self.groups.create(request.tenant_id, request.group, quota)
        return groups_pb2.CreateConsumerGroupResponse(group=group)

    async def UpdateConsumerGroup(
        self, request: groups_pb2.UpdateConsumerGroupRequest, context: grpc.aio.ServicerContext
    ) -> groups_pb2.UpdateConsumerGroupResponse:
        await self._check(request.tenant_id)
        group = await self.groups.update(request.tenant_id, request.group, list(request.paths) or ["settings"])
        return groups_pb2.UpdateConsumerGroupResponse(group=group)

    async def DeleteConsumerGroup(
        self, request: groups_pb2.DeleteConsumerGroupRequest, context: grpc.aio.ServicerContext
    ) -> groups_pb2.DeleteConsumerGroupResponse:
        await self._check(request.tenant_id)
        await self.groups.delete(request.tenant_id, request.name)
        return groups_pb2.DeleteConsumerGroupResponse()

    async def ListConsumerGroups(
        self, request: groups_pb2.ListConsumerGroupsRequest, context: grpc.aio.ServicerContext
    ) -> groups_pb2.ListConsumerGroupsResponse:
        await self._check(request.tenant_id)
        groups, end = await self.groups.list_groups(request.tenant_id, request.after_name, _limit(request.limit))
        return groups_pb2.ListConsumerGroupsResponse(groups=groups, end=end)

    async def GetConsumerGroup(
        self, request: groups_pb2.GetConsumerGroupRequest, context: grpc.aio.ServicerContext
    ) -> groups_pb2.GetConsumerGroupResponse:
        await self._check(request.tenant_id)
        group = await self.groups.get(request.tenant_id, request.name)
        head = await self.backend.head_position(request.tenant_id)
        return groups_pb2.GetConsumerGroupResponse(group=group.group, status=group.status(head))

    async def Consume(
        self, request_iterator: AsyncIterator[groups_pb2.ConsumeRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[groups_pb2.ConsumeResponse]:
        iterator = request_iterator.__aiter__()
        try:
            first = await iterator.__anext__()
        except StopAsyncIteration:
            return
        await self._check(first.tenant_id)
        if first.request.WhichOneof("content") != "join":
            raise InvalidArgument(
                "the first message of a Consume stream is a join", reason=Reason.INVALID_CONSUME_MESSAGE
            )
        if self.memory is not None:
            self.memory.admit("Consume streams")

        async def requests() -> AsyncIterator[public_groups_pb2.ConsumeRequest]:
            async for message in iterator:
                yield message.request

        # The session's messages are serialized public ConsumeResponses (deliveries made of the stored
        # event bytes): wrapped as field 1 and parsed once in C, never rebuilt event by event.
        session = self.groups.consume(first.tenant_id, first.request.join, requests())
        async for message in until_closed(session, self.closing):
            yield groups_pb2.ConsumeResponse.FromString(b"\x0a" + varint(len(message)) + message)

    async def ListParked(
        self, request: groups_pb2.ListParkedRequest, context: grpc.aio.ServicerContext
    ) -> groups_pb2.ListParkedResponse:
        await self._check(request.tenant_id)
        events, end = await self.groups.list_parked(
            request.tenant_id, request.group, request.after_position, _limit(request.limit)
        )
        return groups_pb2.ListParkedResponse(events=events, end=end)

    async def ReplayParked(
        self, request: groups_pb2.ReplayParkedRequest, context: grpc.aio.ServicerContext
    ) -> groups_pb2.ReplayParkedResponse:
        await self._check(request.tenant_id)
        group = await self.groups.get(request.tenant_id, request.group)
        limit = min(request.max_events or MAX_REPLAY, MAX_REPLAY)
        return groups_pb2.ReplayParkedResponse(replayed=await group.replay(limit))

    async def tenant_replaced(self, tenant_id: str) -> None:
        """A tenant's data went away or was replaced whole (deleted, restored): its live consumer groups
        are dropped, and the query replicas' caches drop everything of it."""
        self.groups.forget_tenant(tenant_id)
        await self.feed.publish([stream_change(tenant_id)])

    # -- backups (services.storage.backup) -----------------------------------------------------------

    def _backups(self, what: str) -> BackupJobs:
        touched(SYSTEM_TENANT)
        _require_system(what)
        if self.backups is None:
            raise FailedPrecondition(
                f"the {self.backend.name} backend has no backups", reason=Reason.BACKUP_DESTINATION_FAILED
            )
        return self.backups

    async def CreateBackup(
        self, request: backup_pb2.CreateBackupRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[backup_pb2.CreateBackupResponse]:
        async for progress in self._backups("make backups").create(request):
            yield progress

    async def ListBackups(
        self, request: backup_pb2.ListBackupsRequest, context: grpc.aio.ServicerContext
    ) -> backup_pb2.ListBackupsResponse:
        return await self._backups("list backups").list(request)

    async def GetBackup(
        self, request: backup_pb2.GetBackupRequest, context: grpc.aio.ServicerContext
    ) -> backup_pb2.GetBackupResponse:
        return await self._backups("read backups").get(request)

    async def VerifyBackup(
        self, request: backup_pb2.VerifyBackupRequest, context: grpc.aio.ServicerContext
    ) -> backup_pb2.VerifyBackupResponse:
        return await self._backups("verify backups").verify(request)

    async def RestoreBackup(
        self, request: backup_pb2.RestoreBackupRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[backup_pb2.RestoreBackupResponse]:
        async for progress in self._backups("restore backups").restore(request):
            yield progress

    async def DeleteBackup(
        self, request: backup_pb2.DeleteBackupRequest, context: grpc.aio.ServicerContext
    ) -> backup_pb2.DeleteBackupResponse:
        return await self._backups("delete backups").delete(request)


def _record(r: Record) -> storage_pb2.Record:
    return storage_pb2.Record(namespace=r.namespace, key=r.key, value=r.value, revision=r.revision)


def _limit(value: int) -> int:
    return min(max(value, 1), MAX_LIMIT)
