"""IngestService's stream lifecycle RPCs: SetStreamMetadata, DeleteStream and DeleteEvents.

Each validates and bounds its request (BadRequest violations name the field), holds it to the
credential's scope, and forwards it to storage, which owns the records and the erasure.
"""

from __future__ import annotations

import grpc
from allsource.storage.v1 import lifecycle_pb2 as storage_lifecycle
from allsource.v1 import ingest_pb2, lifecycle_pb2

from services.ingest.validation import AppendValidator
from shared.config.settings import LimitsSettings
from shared.core.errors import InvalidArgument
from shared.core.reasons import Reason
from shared.core.text import duration_problem, text_problem, timestamp_problem
from shared.core.wire import recast
from shared.storage.client import StorageClient
from shared.tenancy.scope import require_stream, require_types, require_whole_streams, tenant_of

MAX_CUSTOM_ENTRIES = 64
MAX_CUSTOM_KEY_BYTES = 128
MAX_CUSTOM_BYTES = 16 * 1024
MAX_PREFIX_BYTES = 256
MAX_TYPES = 100
MAX_TYPE_BYTES = 256


def _stream_id(stream_id: str, limits: LimitsSettings, reason: str) -> None:
    problem = text_problem(stream_id, limits.max_stream_id_bytes) if stream_id else "is required"
    if problem:
        raise InvalidArgument(f"stream_id {problem}", reason=reason, violations=[("stream_id", problem)])
    require_stream(stream_id)


def check_metadata(metadata: lifecycle_pb2.StreamMetadata) -> None:
    """Bounds of stream metadata (INVALID_STREAM_METADATA with a violation per field)."""
    out: list[tuple[str, str]] = []
    if problem := duration_problem(metadata.max_age):
        out.append(("metadata.max_age", problem))
    if len(metadata.custom) > MAX_CUSTOM_ENTRIES:
        out.append(("metadata.custom", f"has {len(metadata.custom)} entries; at most {MAX_CUSTOM_ENTRIES}"))
    size = 0
    for key, value in metadata.custom.items():
        if not key or len(key.encode()) > MAX_CUSTOM_KEY_BYTES:
            out.append((f"metadata.custom[{key[:40]!r}]", f"keys have 1 to {MAX_CUSTOM_KEY_BYTES} bytes"))
        size += len(key.encode()) + len(value.encode())
    if size > MAX_CUSTOM_BYTES:
        out.append(("metadata.custom", f"has {size} bytes of keys and values; at most {MAX_CUSTOM_BYTES}"))
    if out:
        raise InvalidArgument("the stream metadata is invalid", reason=Reason.INVALID_STREAM_METADATA, violations=out)


def check_criteria(request: lifecycle_pb2.DeleteEventsRequest) -> None:
    """Bounds of DeleteEvents criteria (INVALID_DELETE_CRITERIA)."""
    out: list[tuple[str, str]] = []
    if not (request.stream_id_prefix or request.event_types or request.HasField("start_time")) and not (
        request.HasField("end_time")
    ):
        out.append(("stream_id_prefix", "at least one criterion is required"))
    if len(request.stream_id_prefix.encode()) > MAX_PREFIX_BYTES:
        out.append(("stream_id_prefix", f"at most {MAX_PREFIX_BYTES} bytes"))
    if len(request.event_types) > MAX_TYPES:
        out.append(("event_types", f"at most {MAX_TYPES} types"))
    for i, event_type in enumerate(request.event_types):
        if not event_type or len(event_type.encode()) > MAX_TYPE_BYTES:
            out.append((f"event_types[{i}]", f"1 to {MAX_TYPE_BYTES} bytes"))
    for name in ("start_time", "end_time"):
        if request.HasField(name) and (problem := timestamp_problem(getattr(request, name))):
            out.append((name, problem))
    if out:
        raise InvalidArgument(
            "the deletion criteria are invalid", reason=Reason.INVALID_DELETE_CRITERIA, violations=out
        )


class LifecycleHandlers:
    """The lifecycle RPCs of IngestService (mixed into IngestServicer)."""

    storage: StorageClient | None
    validator: AppendValidator

    def _storage(self) -> StorageClient:
        assert self.storage is not None, "IngestServicer was built without a storage client"
        return self.storage

    async def SetStreamMetadata(
        self, request: lifecycle_pb2.SetStreamMetadataRequest, context: grpc.aio.ServicerContext
    ) -> lifecycle_pb2.SetStreamMetadataResponse:
        _stream_id(request.stream_id, self.validator.limits, Reason.INVALID_STREAM_METADATA)
        check_metadata(request.metadata)
        forwarded = storage_lifecycle.SetStreamMetadataRequest(
            tenant_id=tenant_of(context),
            stream_id=request.stream_id,
            metadata=recast(request.metadata, storage_lifecycle.StreamMetadata),
        )
        if request.HasField("expected_metadata_version"):
            forwarded.expected_metadata_version = request.expected_metadata_version
        reply = await self._storage().set_stream_metadata(forwarded)
        return lifecycle_pb2.SetStreamMetadataResponse(metadata_version=reply.metadata_version)

    async def DeleteStream(
        self, request: ingest_pb2.DeleteStreamRequest, context: grpc.aio.ServicerContext
    ) -> ingest_pb2.DeleteStreamResponse:
        _stream_id(request.stream_id, self.validator.limits, Reason.INVALID_APPEND)
        require_whole_streams("delete a stream")
        forwarded = storage_lifecycle.DeleteStreamRequest(
            tenant_id=tenant_of(context), stream_id=request.stream_id, hard=request.hard
        )
        forwarded.expected_version.kind = request.expected_version.kind  # type: ignore[assignment]
        forwarded.expected_version.version = request.expected_version.version
        reply = await self._storage().delete_stream(forwarded)
        return ingest_pb2.DeleteStreamResponse(stream_version=reply.stream_version, events_deleted=reply.events_deleted)

    async def DeleteEvents(
        self, request: lifecycle_pb2.DeleteEventsRequest, context: grpc.aio.ServicerContext
    ) -> lifecycle_pb2.DeleteEventsResponse:
        check_criteria(request)
        if request.stream_id_prefix:
            require_stream(request.stream_id_prefix)
        else:
            require_stream("")
        require_types(list(request.event_types))
        if not request.event_types:
            require_whole_streams("erase events of every type")
        forwarded = storage_lifecycle.DeleteEventsRequest(
            tenant_id=tenant_of(context),
            stream_id_prefix=request.stream_id_prefix,
            event_types=request.event_types,
            dry_run=request.dry_run,
        )
        for name in ("start_time", "end_time"):
            if request.HasField(name):
                getattr(forwarded, name).CopyFrom(getattr(request, name))
        reply = await self._storage().delete_events(forwarded)
        return recast(reply, lifecycle_pb2.DeleteEventsResponse)
