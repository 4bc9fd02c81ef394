"""The client the public services use to reach the storage service.

Every call carries the caller's request id and trace context, has a deadline, and turns an upstream
error into an AllSourceError that re-emits the storage service's status unchanged (never a raw RpcError,
which the caller would see as UNKNOWN).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import grpc
from allsource.storage.v1 import storage_pb2, storage_pb2_grpc
from allsource.v1 import query_pb2
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shared import tracing
from shared.errors import from_rpc_error
from shared.interceptors import REQUEST_ID_KEY
from shared.logs import request_id_var
from shared.settings import Settings
from shared.transport import open_channel

STORAGE_SERVICE = storage_pb2.DESCRIPTOR.services_by_name["StorageService"].full_name
M = TypeVar("M", bound=Message)


class StorageClient:
    """A channel to the storage service with typed-error calls."""

    def __init__(self, settings: Settings) -> None:
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

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        request_id = request_id_var.get()
        metadata = [(REQUEST_ID_KEY, request_id)] if request_id else []
        if self._propagate:
            metadata += tracing.outgoing_metadata()
        return tuple(metadata)

    async def call(self, method: str, request: Message, *, timeout: float | None = None) -> Any:
        """Call a unary StorageService method by name."""
        try:
            return await getattr(self.stub, method)(request, timeout=timeout or self.timeout, metadata=self._metadata())
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
            return await self._append_raw(request, timeout=self.timeout, metadata=self._metadata())
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
