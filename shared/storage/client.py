"""The client the public services use to reach the storage service.

Every call carries the caller's request id, trace context and a signed scope (the calling service, and
the tenant and end user the call is for; see shared.auth.scopes), has a deadline, and turns an upstream
error into an AllSourceError that re-emits the storage service's status unchanged (never a raw RpcError,
which the caller would see as UNKNOWN).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import grpc
from allsource.storage.v1 import storage_pb2, storage_pb2_grpc
from allsource.v1 import query_pb2, tenant_pb2
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shared.auth.principal import current as current_principal
from shared.auth.scopes import SCOPE_KEY, SYSTEM_TENANT, ScopeSigner
from shared.config.settings import Settings
from shared.core.errors import AllSourceError, from_rpc_error
from shared.core.reasons import Reason
from shared.rpc.chain import REQUEST_ID_KEY
from shared.rpc.transport import open_channel
from shared.telemetry import tracing
from shared.telemetry.logs import request_id_var

STORAGE_SERVICE = storage_pb2.DESCRIPTOR.services_by_name["StorageService"].full_name
M = TypeVar("M", bound=Message)


class StorageClient:
    """A channel to the storage service with typed-error calls."""

    def __init__(self, settings: Settings, service: str) -> None:
        secret = settings.internal.service_secret
        self.signer = ScopeSigner(
            secret.get_secret_value().encode() if secret else b"", service, settings.internal.scope_ttl_s
        )
        self.address = settings.storage.dial()
        self.timeout = settings.grpc.storage_timeout_s
        self._propagate = tracing.propagating(settings.tracing)
        self.channel = open_channel(
            self.address, settings.grpc, settings.tls, interceptors=tracing.client_interceptors(settings.tracing)
        )
        self.stub = storage_pb2_grpc.StorageServiceStub(self.channel)
        self._health = health_pb2_grpc.HealthStub(self.channel)
        # Subscribe messages share allsource.v1.SubscribeResponse's wire format: parse them as that type
        # so the query service forwards them without conversion.
        self._subscribe = self.channel.unary_stream(
            f"/{STORAGE_SERVICE}/Subscribe",
            request_serializer=storage_pb2.SubscribeRequest.SerializeToString,
            response_deserializer=query_pb2.SubscribeResponse.FromString,
        )
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

    def _metadata(self, scope: str | None = None) -> tuple[tuple[str, str], ...]:
        request_id = request_id_var.get()
        metadata = [(SCOPE_KEY, scope or self.scope())]
        if request_id:
            metadata.append((REQUEST_ID_KEY, request_id))
        if self._propagate:
            metadata += tracing.outgoing_metadata()
        return tuple(metadata)

    async def call(self, method: str, request: Message, *, timeout: float | None = None, system: bool = False) -> Any:
        """Call a unary StorageService method by name (with the system scope when `system`)."""
        scope = self.system_scope() if system else None
        try:
            return await getattr(self.stub, method)(
                request, timeout=timeout or self.timeout, metadata=self._metadata(scope)
            )
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(err) from None

    async def read(self, method: str, request: Message) -> tuple[Any, bytes]:
        """A read (ReadStream, ReadEvents, GetEvent) returning the parsed response and its bytes."""
        try:
            return await self._raw_reads[method](request, timeout=self.timeout, metadata=self._metadata())
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(err) from None

    async def append_raw(self, request: bytes) -> storage_pb2.AppendResponse:
        """StorageService.Append with an already serialized AppendRequest."""
        try:
            # Each operation carries its own scope; the call itself is the service's.
            return await self._append_raw(request, timeout=self.timeout, metadata=self._metadata(self.system_scope()))
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(err) from None

    async def subscribe(self, request: storage_pb2.SubscribeRequest) -> AsyncIterator[query_pb2.SubscribeResponse]:
        """Follow a tenant's log; yields messages in the public SubscribeResponse type."""
        call = self._subscribe(request, metadata=self._metadata())
        try:
            async for message in call:
                yield message
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(err) from None
        finally:
            call.cancel()

    async def health(self, timeout: float = 1.0) -> tuple[bool, str, float]:
        """Whether storage reports SERVING, why not, and the round-trip time in seconds."""
        started = time.perf_counter()
        try:
            reply = await self._health.Check(health_pb2.HealthCheckRequest(service=STORAGE_SERVICE), timeout=timeout)
        except grpc.aio.AioRpcError as err:
            return False, f"storage at {self.address} unreachable: {err.code().name}", time.perf_counter() - started
        serving = reply.status == health_pb2.HealthCheckResponse.SERVING
        detail = "" if serving else f"storage reports {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}"
        return serving, detail, time.perf_counter() - started

    async def close(self) -> None:
        """Close the channel."""
        await self.channel.close()


class StorageRecords:
    """Control-plane records through the storage service, with the system scope (shared.auth.state.RecordStore)."""

    def __init__(self, storage: StorageClient) -> None:
        self.storage = storage

    async def get(self, tenant_id: str, namespace: str, key: str) -> tuple[bytes, int] | None:
        try:
            reply = await self.storage.call(
                "GetRecord",
                storage_pb2.GetRecordRequest(tenant_id=tenant_id, namespace=namespace, key=key),
                system=True,
            )
        except AllSourceError as exc:
            # A record of a tenant that does not exist is as absent as any other (so that, for example,
            # a login to an unknown tenant looks exactly like a wrong password).
            if exc.reason in (Reason.RECORD_NOT_FOUND, Reason.TENANT_NOT_FOUND):
                return None
            raise
        return reply.record.value, reply.record.revision

    async def list(self, tenant_id: str, namespace: str, after: str, limit: int) -> list[tuple[str, bytes, int]]:
        reply = await self.storage.call(
            "ListRecords",
            storage_pb2.ListRecordsRequest(tenant_id=tenant_id, namespace=namespace, after_key=after, limit=limit),
            system=True,
        )
        return [(r.key, r.value, r.revision) for r in reply.records]

    async def put(
        self, tenant_id: str, namespace: str, key: str, value: bytes, expected_revision: int | None = None
    ) -> int:
        request = storage_pb2.PutRecordRequest(
            tenant_id=tenant_id, record=storage_pb2.Record(namespace=namespace, key=key, value=value)
        )
        if expected_revision is not None:
            request.expected_revision = expected_revision
        reply = await self.storage.call("PutRecord", request, system=True)
        return int(reply.record.revision)

    async def delete(self, tenant_id: str, namespace: str, key: str, expected_revision: int | None = None) -> bool:
        request = storage_pb2.DeleteRecordRequest(tenant_id=tenant_id, namespace=namespace, key=key)
        if expected_revision is not None:
            request.expected_revision = expected_revision
        reply = await self.storage.call("DeleteRecord", request, system=True)
        return bool(reply.deleted)

    async def tenant(self, tenant_id: str) -> tenant_pb2.Tenant | None:
        """A tenant, or None when it does not exist."""
        try:
            reply = await self.storage.call("GetTenant", storage_pb2.GetTenantRequest(tenant_id=tenant_id), system=True)
        except AllSourceError as exc:
            if exc.reason == Reason.TENANT_NOT_FOUND:
                return None
            raise
        return reply.tenant
