"""QueryService's GetStreamMetadata: a stream's metadata and deletion state, read from storage."""

from __future__ import annotations

import grpc
from allsource.storage.v1 import lifecycle_pb2 as storage_lifecycle
from allsource.v1 import lifecycle_pb2

from shared.config.settings import LimitsSettings
from shared.core.errors import InvalidArgument
from shared.core.reasons import Reason
from shared.core.text import text_problem
from shared.core.wire import recast
from shared.storage.client import StorageClient
from shared.tenancy.scope import require_stream, tenant_of


class MetadataReads:
    """GetStreamMetadata (mixed into QueryServicer)."""

    storage: StorageClient
    limits: LimitsSettings

    async def GetStreamMetadata(
        self, request: lifecycle_pb2.GetStreamMetadataRequest, context: grpc.aio.ServicerContext
    ) -> lifecycle_pb2.GetStreamMetadataResponse:
        problem = (
            text_problem(request.stream_id, self.limits.max_stream_id_bytes) if request.stream_id else "is required"
        )
        if problem:
            raise InvalidArgument(
                f"stream_id {problem}", reason=Reason.INVALID_STREAM_METADATA, violations=[("stream_id", problem)]
            )
        require_stream(request.stream_id)
        reply = await self.storage.get_stream_metadata(
            storage_lifecycle.GetStreamMetadataRequest(tenant_id=tenant_of(context), stream_id=request.stream_id)
        )
        return recast(reply, lifecycle_pb2.GetStreamMetadataResponse)
