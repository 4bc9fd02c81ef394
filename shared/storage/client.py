"""The client the public services use to reach the storage service.

Every call carries the caller's request id, trace context and a signed scope (the calling service, and
the tenant and end user the call is for; see shared.auth.scopes), has a deadline, and turns an upstream
error into an AllSourceError that re-emits the storage service's status unchanged (never a raw RpcError,
which the caller would see as UNKNOWN).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from typing import Any, TypeVar, cast

import grpc
from allsource.storage.v1 import backup_pb2, groups_pb2, lifecycle_pb2, storage_pb2, storage_pb2_grpc
from allsource.v1 import groups_pb2 as public_groups_pb2
from allsource.v1 import query_pb2
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shared.auth.principal import current as current_principal
from shared.auth.scopes import SCOPE_KEY, SYSTEM_TENANT, ScopeSigner
from shared.config.settings import Settings
from shared.core.errors import STATUS_DETAILS_KEY, DeadlineExceeded, from_rpc_error
from shared.core.reasons import Reason
from shared.rpc.breaker import CircuitBreaker
from shared.rpc.chain import REQUEST_ID_KEY, call_deadline
from shared.rpc.transport import open_channel
from shared.telemetry import tracing
from shared.telemetry.logs import request_id_var

# Events one batch read (BatchGetEvents, ReadStreams) answers at most, in bytes, whether they come from
# storage or from a query replica's cache (a plan's max_result_bytes may lower it; the first always goes).
BATCH_READ_BYTES = 4 * 1024 * 1024

STORAGE_SERVICE = storage_pb2.DESCRIPTOR.services_by_name["StorageService"].full_name
M = TypeVar("M", bound=Message)
R = TypeVar("R")


class StorageClient:
    """A channel to the storage service with typed-error calls."""

    def __init__(self, settings: Settings, service: str) -> None:
        secret = settings.internal.service_secret
        self.signer = ScopeSigner(
            secret.get_secret_value().encode() if secret else b"", service, settings.internal.scope_ttl_s
        )
        self.address = settings.storage.dial()
        self.breaker = CircuitBreaker(
            "storage", failure_threshold=settings.grpc.breaker_failures, open_s=settings.grpc.breaker_open_s
        )
        self.configure(settings)
        self._propagate = settings.tracing.enabled
        self.channel = open_channel(self.address, settings.grpc, settings.tls)
        self.stub = storage_pb2_grpc.StorageServiceStub(self.channel)
        self._health = health_pb2_grpc.HealthStub(self.channel)
        # Long-lived streams (subscriptions) ride connections of their own, never the one unary calls
        # use: a connection carries a bounded number of concurrent streams, and idle subscriptions must
        # not take the capacity every other call needs.
        self._stream_channels = [
            open_channel(self.address, settings.grpc, settings.tls, own_connection=True, stream_window=64 * 1024)
            for _ in range(settings.grpc.storage_stream_channels)
        ]
        self._streams_open = [0] * len(self._stream_channels)
        self._watch = [storage_pb2_grpc.StorageServiceStub(channel).WatchRecords for channel in self._stream_channels]
        self._follow = [storage_pb2_grpc.StorageServiceStub(channel).FollowCommits for channel in self._stream_channels]
        # Subscribe messages share allsource.v1.SubscribeResponse's wire format: parse them as that type
        # so the query service forwards them without conversion.
        self._subscribe = [
            channel.unary_stream(
                f"/{STORAGE_SERVICE}/Subscribe",
                request_serializer=storage_pb2.SubscribeRequest.SerializeToString,
                response_deserializer=query_pb2.SubscribeResponse.FromString,
            )
            for channel in self._stream_channels
        ]
        # Consumer groups' Consume streams are long-lived too: they ride the stream connections. Their
        # messages wrap the public ConsumeResponse as field 1: parsed as that type, forwarded unconverted.
        self._consume = [
            channel.stream_stream(
                f"/{STORAGE_SERVICE}/Consume",
                request_serializer=groups_pb2.ConsumeRequest.SerializeToString,
                response_deserializer=public_consume_response,
            )
            for channel in self._stream_channels
        ]
        # Reads return (message, raw bytes): the query service re-parses the bytes as its public type.
        self._raw_reads = {
            "ReadStream": self._reader("ReadStream", storage_pb2.ReadStreamRequest, storage_pb2.ReadStreamResponse),
            "ReadEvents": self._reader("ReadEvents", storage_pb2.ReadEventsRequest, storage_pb2.ReadEventsResponse),
            "GetEvent": self._reader("GetEvent", storage_pb2.GetEventRequest, storage_pb2.GetEventResponse),
        }
        # Append requests arrive already serialized (see services.ingest.coalescer).
        self._append_raw = self.channel.unary_unary(
            f"/{STORAGE_SERVICE}/Append",
            request_serializer=None,
            response_deserializer=storage_pb2.AppendResponse.FromString,
        )

    def configure(self, settings: Settings) -> None:
        """Take reloaded settings (deadlines, retries, the breaker's thresholds)."""
        g = settings.grpc
        self.timeout = g.storage_timeout_s
        self.deadline_margin_s = g.deadline_margin_s
        self.retries = g.storage_retries
        self.backoff_s = g.retry_backoff_s
        self.breaker.failure_threshold, self.breaker.open_s = g.breaker_failures, g.breaker_open_s

    def _reader(self, method: str, request_type: type[Message], response_type: type[Message]) -> Any:
        return self.channel.unary_unary(
            f"/{STORAGE_SERVICE}/{method}",
            request_serializer=request_type.SerializeToString,
            response_deserializer=lambda raw: (response_type.FromString(raw), raw),
        )

    def scope(self) -> str:
        """The scope of the current call: its principal's tenant, or the system scope outside one."""
        principal = current_principal()
        if principal is None:
            return self.signer.mint(SYSTEM_TENANT, "service")
        return self.signer.mint(principal.tenant_id, principal.ref)

    def system_scope(self) -> str:
        """A scope for work not done on behalf of one tenant (flags, auth records, statistics)."""
        return self.signer.mint(SYSTEM_TENANT, "service")

    def _metadata(self, scope: str | None = None, span: Any = None) -> tuple[tuple[str, str], ...]:
        request_id = request_id_var.get()
        metadata = [(SCOPE_KEY, scope or self.scope())]
        if request_id:
            metadata.append((REQUEST_ID_KEY, request_id))
        if span is not None:
            metadata += tracing.span_metadata(span.get_span_context())
        elif self._propagate:
            metadata += tracing.outgoing_metadata()
        return tuple(metadata)

    async def _unary(
        self,
        method: Any,
        request: Message | bytes,
        returns: type[R],
        *,
        timeout: float | None = None,
        system: bool,
        retry: bool = False,
    ) -> R:
        """One unary call (with the system scope when `system`), upstream errors turned into ours.

        It carries the caller's remaining deadline, goes through the circuit breaker, and when `retry`
        (the call is safe to repeat) is tried again after a jittered backoff if storage cannot be
        reached."""
        span = tracing.client_span(method) if tracing.active() else None
        metadata = self._metadata(self.system_scope() if system else None, span)
        attempts = 1 + (self.retries if retry else 0)
        try:
            for attempt in range(attempts):
                self.breaker.before_call()
                budget = self._budget(timeout)
                try:
                    answer = await method(request, timeout=budget, metadata=metadata)
                except grpc.aio.AioRpcError as err:
                    unreachable = _unreachable(err)
                    if unreachable:
                        self.breaker.failed()
                    else:
                        self.breaker.succeeded()  # storage answered, if only with an error
                    if not (unreachable and attempt + 1 < attempts and err.code() == grpc.StatusCode.UNAVAILABLE):
                        if span is not None:
                            tracing.end_rpc(span, err.code().name, "", err.details() or "")
                        raise from_rpc_error(err) from None
                    if span is not None:
                        span.add_event("retry", {"attempt": attempt + 1, "rpc.grpc.status_code": err.code().value[0]})
                    await asyncio.sleep(self.backoff_s * (2**attempt) * (0.5 + random.random()))
                    continue
                self.breaker.succeeded()
                if span is not None:
                    tracing.end_rpc(span, "OK", "", "")
                return cast(R, answer)
            raise AssertionError("unreachable")  # the loop returns or raises
        finally:
            if span is not None:
                span.end()

    def _budget(self, timeout: float | None) -> float:
        """This call's deadline: the configured one, or what the caller's deadline leaves, if less."""
        budget = timeout or self.timeout
        deadline = call_deadline.get()
        if deadline is not None:
            left = deadline - time.monotonic() - self.deadline_margin_s
            if left <= 0:
                raise DeadlineExceeded(
                    "the call's deadline passed before storage could be asked", reason=Reason.DEADLINE_EXCEEDED
                )
            budget = min(budget, left)
        return budget

    # -- the event log ------------------------------------------------------------------------------

    async def append_raw(self, request: bytes, *, idempotent: bool = False) -> storage_pb2.AppendResponse:
        """StorageService.Append with an already serialized AppendRequest; `idempotent` when every append
        in it carries a request id, so that a retry cannot write anything twice."""
        # Each operation carries its own scope; the call itself is the service's.
        returns = storage_pb2.AppendResponse
        return await self._unary(self._append_raw, request, returns, system=True, retry=idempotent)

    async def get_event(self, request: storage_pb2.GetEventRequest) -> tuple[storage_pb2.GetEventResponse, bytes]:
        """One event by id, parsed and as the bytes storage sent."""
        return cast(tuple[storage_pb2.GetEventResponse, bytes], await self._read("GetEvent", request))

    async def read_stream(self, request: storage_pb2.ReadStreamRequest) -> tuple[storage_pb2.ReadStreamResponse, bytes]:
        """A slice of one stream, parsed and as the bytes storage sent."""
        return cast(tuple[storage_pb2.ReadStreamResponse, bytes], await self._read("ReadStream", request))

    async def read_events(self, request: storage_pb2.ReadEventsRequest) -> tuple[storage_pb2.ReadEventsResponse, bytes]:
        """A run of filtered events, parsed and as the bytes storage sent."""
        return cast(tuple[storage_pb2.ReadEventsResponse, bytes], await self._read("ReadEvents", request))

    async def batch_get_events(self, request: storage_pb2.BatchGetEventsRequest) -> storage_pb2.BatchGetEventsResponse:
        """Several events by id in one call."""
        returns = storage_pb2.BatchGetEventsResponse
        return await self._unary(self.stub.BatchGetEvents, request, returns, system=False, retry=True)

    async def read_streams(self, request: storage_pb2.ReadStreamsRequest) -> storage_pb2.ReadStreamsResponse:
        """Slices of several streams in one call."""
        returns = storage_pb2.ReadStreamsResponse
        return await self._unary(self.stub.ReadStreams, request, returns, system=False, retry=True)

    async def _read(self, method: str, request: Message) -> tuple[Message, bytes]:
        return await self._unary(self._raw_reads[method], request, tuple, system=False, retry=True)

    async def list_streams(self, request: storage_pb2.ListStreamsRequest) -> storage_pb2.ListStreamsResponse:
        """Streams of a tenant in id order."""
        return await self._unary(
            self.stub.ListStreams, request, storage_pb2.ListStreamsResponse, system=False, retry=True
        )

    async def get_stream(self, request: storage_pb2.GetStreamRequest) -> storage_pb2.GetStreamResponse:
        """One stream's head, and its version at a time."""
        returns = storage_pb2.GetStreamResponse
        return await self._unary(self.stub.GetStream, request, returns, system=False, retry=True)

    # -- stream lifecycle ----------------------------------------------------------------------------

    async def get_stream_metadata(
        self, request: lifecycle_pb2.GetStreamMetadataRequest
    ) -> lifecycle_pb2.GetStreamMetadataResponse:
        """A stream's metadata and deletion state."""
        returns = lifecycle_pb2.GetStreamMetadataResponse
        return await self._unary(self.stub.GetStreamMetadata, request, returns, system=False, retry=True)

    async def set_stream_metadata(
        self, request: lifecycle_pb2.SetStreamMetadataRequest
    ) -> lifecycle_pb2.SetStreamMetadataResponse:
        """Replace a stream's metadata."""
        returns = lifecycle_pb2.SetStreamMetadataResponse
        return await self._unary(self.stub.SetStreamMetadata, request, returns, system=False)

    async def delete_stream(self, request: lifecycle_pb2.DeleteStreamRequest) -> lifecycle_pb2.DeleteStreamResponse:
        """Soft- or hard-delete a stream."""
        returns = lifecycle_pb2.DeleteStreamResponse
        return await self._unary(self.stub.DeleteStream, request, returns, system=False)

    async def delete_events(self, request: lifecycle_pb2.DeleteEventsRequest) -> lifecycle_pb2.DeleteEventsResponse:
        """Erase (or count) events by criteria."""
        returns = lifecycle_pb2.DeleteEventsResponse
        return await self._unary(self.stub.DeleteEvents, request, returns, system=False)

    # -- snapshots ----------------------------------------------------------------------------------

    async def get_snapshot(self, request: storage_pb2.GetSnapshotRequest) -> storage_pb2.GetSnapshotResponse:
        """The newest snapshot of a stream at or below a version."""
        return await self._unary(
            self.stub.GetSnapshot, request, storage_pb2.GetSnapshotResponse, system=False, retry=True
        )

    async def put_snapshot(self, request: storage_pb2.PutSnapshotRequest) -> storage_pb2.PutSnapshotResponse:
        """Store a snapshot of a stream."""
        return await self._unary(self.stub.PutSnapshot, request, storage_pb2.PutSnapshotResponse, system=False)

    # -- control-plane records (the admin and auth services' state) ----------------------------------

    async def put_record(self, request: storage_pb2.PutRecordRequest) -> storage_pb2.PutRecordResponse:
        """Write a record (compare-and-set with expected_revision)."""
        return await self._unary(self.stub.PutRecord, request, storage_pb2.PutRecordResponse, system=True)

    async def get_record(self, request: storage_pb2.GetRecordRequest) -> storage_pb2.GetRecordResponse:
        """One record."""
        returns = storage_pb2.GetRecordResponse
        return await self._unary(self.stub.GetRecord, request, returns, system=True, retry=True)

    async def list_records(
        self, request: storage_pb2.ListRecordsRequest, *, timeout: float | None = None
    ) -> storage_pb2.ListRecordsResponse:
        """Records of a namespace in key order."""
        return await self._unary(
            self.stub.ListRecords, request, storage_pb2.ListRecordsResponse, timeout=timeout, system=True, retry=True
        )

    async def delete_record(self, request: storage_pb2.DeleteRecordRequest) -> storage_pb2.DeleteRecordResponse:
        """Delete a record."""
        return await self._unary(self.stub.DeleteRecord, request, storage_pb2.DeleteRecordResponse, system=True)

    # -- tenants and usage ---------------------------------------------------------------------------

    async def put_tenant(self, request: storage_pb2.PutTenantRequest) -> storage_pb2.PutTenantResponse:
        """Create or replace a tenant (admin service only)."""
        return await self._unary(self.stub.PutTenant, request, storage_pb2.PutTenantResponse, system=True)

    async def get_tenant(self, request: storage_pb2.GetTenantRequest) -> storage_pb2.GetTenantResponse:
        """One tenant."""
        returns = storage_pb2.GetTenantResponse
        return await self._unary(self.stub.GetTenant, request, returns, system=True, retry=True)

    async def list_tenants(self, request: storage_pb2.ListTenantsRequest) -> storage_pb2.ListTenantsResponse:
        """Tenants in id order (admin service only)."""
        return await self._unary(
            self.stub.ListTenants, request, storage_pb2.ListTenantsResponse, system=True, retry=True
        )

    async def delete_tenant(self, request: storage_pb2.DeleteTenantRequest) -> storage_pb2.DeleteTenantResponse:
        """Delete a tenant and all of its data (admin service only)."""
        return await self._unary(self.stub.DeleteTenant, request, storage_pb2.DeleteTenantResponse, system=True)

    async def get_tenant_usage(self, request: storage_pb2.GetTenantUsageRequest) -> storage_pb2.GetTenantUsageResponse:
        """A tenant's usage, in the scope of the current call's tenant."""
        return await self._unary(
            self.stub.GetTenantUsage, request, storage_pb2.GetTenantUsageResponse, system=False, retry=True
        )

    async def get_index_stats(self, request: storage_pb2.GetIndexStatsRequest) -> storage_pb2.GetIndexStatsResponse:
        """A tenant's index figures, in the scope of the current call's tenant."""
        return await self._unary(
            self.stub.GetIndexStats, request, storage_pb2.GetIndexStatsResponse, system=False, retry=True
        )

    async def add_usage(self, request: storage_pb2.AddUsageRequest) -> storage_pb2.AddUsageResponse:
        """Add counted query calls to a tenant's usage."""
        return await self._unary(self.stub.AddUsage, request, storage_pb2.AddUsageResponse, system=True)

    async def get_stats(self, request: storage_pb2.GetStatsRequest, *, timeout: float) -> storage_pb2.GetStatsResponse:
        """Suite-wide statistics (admin service only)."""
        return await self._unary(
            self.stub.GetStats, request, storage_pb2.GetStatsResponse, timeout=timeout, system=True, retry=True
        )

    # -- consumer groups ------------------------------------------------------------------------------

    async def create_consumer_group(
        self, request: groups_pb2.CreateConsumerGroupRequest
    ) -> groups_pb2.CreateConsumerGroupResponse:
        """Create a consumer group."""
        returns = groups_pb2.CreateConsumerGroupResponse
        return await self._unary(self.stub.CreateConsumerGroup, request, returns, system=False)

    async def update_consumer_group(
        self, request: groups_pb2.UpdateConsumerGroupRequest
    ) -> groups_pb2.UpdateConsumerGroupResponse:
        """Change a consumer group's settings."""
        returns = groups_pb2.UpdateConsumerGroupResponse
        return await self._unary(self.stub.UpdateConsumerGroup, request, returns, system=False)

    async def delete_consumer_group(
        self, request: groups_pb2.DeleteConsumerGroupRequest
    ) -> groups_pb2.DeleteConsumerGroupResponse:
        """Delete a consumer group."""
        returns = groups_pb2.DeleteConsumerGroupResponse
        return await self._unary(self.stub.DeleteConsumerGroup, request, returns, system=False)

    async def list_consumer_groups(
        self, request: groups_pb2.ListConsumerGroupsRequest
    ) -> groups_pb2.ListConsumerGroupsResponse:
        """A tenant's consumer groups by name."""
        returns = groups_pb2.ListConsumerGroupsResponse
        return await self._unary(self.stub.ListConsumerGroups, request, returns, system=False, retry=True)

    async def get_consumer_group(
        self, request: groups_pb2.GetConsumerGroupRequest
    ) -> groups_pb2.GetConsumerGroupResponse:
        """One consumer group and its progress."""
        returns = groups_pb2.GetConsumerGroupResponse
        return await self._unary(self.stub.GetConsumerGroup, request, returns, system=False, retry=True)

    async def list_parked(self, request: groups_pb2.ListParkedRequest) -> groups_pb2.ListParkedResponse:
        """A consumer group's parked events by position."""
        returns = groups_pb2.ListParkedResponse
        return await self._unary(self.stub.ListParked, request, returns, system=False, retry=True)

    async def replay_parked(self, request: groups_pb2.ReplayParkedRequest) -> groups_pb2.ReplayParkedResponse:
        """Put a consumer group's parked events back into its flow."""
        returns = groups_pb2.ReplayParkedResponse
        return await self._unary(self.stub.ReplayParked, request, returns, system=False)

    async def consume(
        self, requests: AsyncIterator[groups_pb2.ConsumeRequest]
    ) -> AsyncIterator[public_groups_pb2.ConsumeResponse]:
        """A consumer's bidirectional stream into its group, on a stream connection; yields the public
        ConsumeResponse each storage message carries."""
        async for message in self._stream(self._consume, requests, self._metadata()):
            yield message

    # -- backups (admin service only; long calls: no deadline but the caller's) -------------------------

    async def create_backup(
        self, request: backup_pb2.CreateBackupRequest
    ) -> AsyncIterator[backup_pb2.CreateBackupResponse]:
        """Make a backup; yields its progress."""
        async for message in self._server_stream(self.stub.CreateBackup, request):
            yield message

    async def restore_backup(
        self, request: backup_pb2.RestoreBackupRequest
    ) -> AsyncIterator[backup_pb2.RestoreBackupResponse]:
        """Restore from a backup; yields its progress."""
        async for message in self._server_stream(self.stub.RestoreBackup, request):
            yield message

    async def list_backups(self, request: backup_pb2.ListBackupsRequest) -> backup_pb2.ListBackupsResponse:
        """A destination's backups."""
        returns = backup_pb2.ListBackupsResponse
        return await self._unary(self.stub.ListBackups, request, returns, system=True, retry=True, timeout=60.0)

    async def get_backup(self, request: backup_pb2.GetBackupRequest) -> backup_pb2.GetBackupResponse:
        """One backup."""
        returns = backup_pb2.GetBackupResponse
        return await self._unary(self.stub.GetBackup, request, returns, system=True, retry=True, timeout=60.0)

    async def verify_backup(self, request: backup_pb2.VerifyBackupRequest) -> backup_pb2.VerifyBackupResponse:
        """Check every chunk of a backup's chain."""
        returns = backup_pb2.VerifyBackupResponse
        return await self._unary(self.stub.VerifyBackup, request, returns, system=True, timeout=3600.0)

    async def delete_backup(self, request: backup_pb2.DeleteBackupRequest) -> backup_pb2.DeleteBackupResponse:
        """Delete a backup."""
        returns = backup_pb2.DeleteBackupResponse
        return await self._unary(self.stub.DeleteBackup, request, returns, system=True, timeout=300.0)

    async def _server_stream(self, method: Any, request: Message) -> AsyncIterator[Any]:
        """A server-streaming call with the system scope on the unary connection."""
        deadline = call_deadline.get()
        timeout = max(0.001, deadline - time.monotonic()) if deadline is not None else None
        call = method(request, metadata=self._metadata(self.system_scope()), timeout=timeout)
        try:
            async for message in call:
                yield message
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(err) from None
        finally:
            call.cancel()

    # -- live ---------------------------------------------------------------------------------------

    async def subscribe(self, request: storage_pb2.SubscribeRequest) -> AsyncIterator[query_pb2.SubscribeResponse]:
        """Follow a tenant's log; yields messages in the public SubscribeResponse type."""
        async for message in self._stream(self._subscribe, request, self._metadata()):
            yield message

    async def watch_records(
        self, request: storage_pb2.WatchRecordsRequest
    ) -> AsyncIterator[storage_pb2.WatchRecordsResponse]:
        """Follow a namespace of records (with the system scope)."""
        async for message in self._stream(self._watch, request, self._metadata(self.system_scope())):
            yield message

    async def follow_commits(
        self, requests: AsyncIterator[storage_pb2.FollowCommitsRequest]
    ) -> AsyncIterator[storage_pb2.FollowCommitsResponse]:
        """Follow the commit feed (with the system scope), acknowledging through `requests`."""
        async for message in self._stream(self._follow, requests, self._metadata(self.system_scope())):
            yield message

    async def _stream(
        self, methods: list[Any], request: Message | AsyncIterator[Any], metadata: Any
    ) -> AsyncIterator[Any]:
        lane = self._streams_open.index(min(self._streams_open))  # the stream connection least in use
        self._streams_open[lane] += 1
        call = methods[lane](request, metadata=metadata)
        try:
            async for message in call:
                yield message
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(err) from None
        finally:
            call.cancel()
            self._streams_open[lane] -= 1

    async def health(self, timeout: float = 1.0) -> tuple[bool, str, float]:
        """Whether storage reports SERVING, why not, and the round-trip time in seconds."""
        started = time.perf_counter()
        try:
            reply = await self._health.Check(health_pb2.HealthCheckRequest(service=STORAGE_SERVICE), timeout=timeout)
        except grpc.aio.AioRpcError as err:
            return False, f"storage at {self.address} unreachable: {err.code().name}", time.perf_counter() - started
        serving = reply.status == health_pb2.HealthCheckResponse.SERVING
        if serving:
            self.breaker.reset()  # storage is back: calls go through again at once
        detail = "" if serving else f"storage reports {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}"
        return serving, detail, time.perf_counter() - started

    async def close(self) -> None:
        """Close the channels."""
        for channel in (self.channel, *self._stream_channels):
            await channel.close()


def public_consume_response(raw: bytes) -> public_groups_pb2.ConsumeResponse:
    """A storage ConsumeResponse's `response` field (1), parsed straight from its bytes."""
    if raw[:1] == b"\x0a":
        length, start = 0, 1
        for shift in range(0, 35, 7):  # the varint length of field 1
            if start >= len(raw):
                break
            byte = raw[start]
            start += 1
            length |= (byte & 0x7F) << shift
            if not byte & 0x80:
                if start + length == len(raw):  # field 1 is the whole message
                    return public_groups_pb2.ConsumeResponse.FromString(raw[start:])
                break
    return groups_pb2.ConsumeResponse.FromString(raw).response


def _unreachable(err: grpc.aio.AioRpcError) -> bool:
    """Whether a failed call never got an answer from storage (no rich status: the transport failed or
    the deadline passed), as opposed to storage answering with an error."""
    if err.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return False
    return not any(key == STATUS_DETAILS_KEY for key, _ in err.trailing_metadata() or ())
