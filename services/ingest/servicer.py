"""IngestService: validate, check the tenant's quotas, then append through the coalescer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
from allsource.v1 import ingest_pb2, ingest_pb2_grpc
from opentelemetry import trace

from services.ingest.coalescer import AppendCoalescer
from services.ingest.lifecycle import LifecycleHandlers
from services.ingest.validation import AppendValidator
from shared.core.errors import AllSourceError
from shared.core.reasons import Reason
from shared.limits.governor import WARNING_KEY, Governor, charge, current_limit
from shared.limits.plans import exceeded
from shared.rpc.chain import add_trailing
from shared.storage.client import StorageClient
from shared.telemetry import tracing
from shared.tenancy.scope import require_stream, require_types, tenant_of


@dataclass(slots=True)
class _Slot:
    index: int
    correlation_id: str
    result: asyncio.Future[ingest_pb2.AppendEventsResponse]


def _in_scope(request: ingest_pb2.AppendEventsRequest) -> None:
    require_stream(request.stream_id)
    require_types([event.event_type for event in request.events])


def _event_sizes(request: ingest_pb2.AppendEventsRequest, tenant_id: str, prefix: str = "") -> None:
    """The tenant's max_event_bytes quota (the suite's own bound is checked by validation)."""
    limit = current_limit("max_event_bytes")
    if limit is None:
        return
    for i, event in enumerate(request.events):
        if len(event.payload) > limit:
            raise exceeded(
                tenant_id,
                "max_event_bytes",
                limit,
                len(event.payload),
                f"{prefix}events[{i}].payload has {len(event.payload)} bytes; the tenant's events may have {limit}",
            )


class IngestServicer(LifecycleHandlers, ingest_pb2_grpc.IngestServiceServicer):
    """The public append API, and the stream lifecycle RPCs (services.ingest.lifecycle)."""

    def __init__(
        self,
        validator: AppendValidator,
        coalescer: AppendCoalescer,
        batch_window: int,
        governor: Governor | None = None,
        storage: StorageClient | None = None,
    ) -> None:
        self.storage = storage
        self.validator = validator
        self.coalescer = coalescer
        self.batch_window = batch_window
        self.governor = governor

    async def _append(
        self, tenant: str, request: ingest_pb2.AppendEventsRequest
    ) -> tuple[ingest_pb2.AppendEventsResponse, str]:
        try:
            response, warning = await self.coalescer.append(tenant, request)
        except AllSourceError as exc:
            if exc.reason == Reason.QUOTA_EXCEEDED and self.governor is not None:
                self.governor.remember(tenant, exc)  # used up: refused at admission until the window resets
            raise
        if warning and self.governor is not None:
            self.governor.warn(tenant, warning.split(":", 1)[0])  # the log line (once a minute per quota)
        return response, warning

    async def AppendEvents(
        self, request: ingest_pb2.AppendEventsRequest, context: grpc.aio.ServicerContext
    ) -> ingest_pb2.AppendEventsResponse:
        tenant = tenant_of(context)
        if tracing.active():
            self._validate_traced(request, tenant)
        else:
            self.validator.check(request, tenant=tenant)
            _in_scope(request)
            _event_sizes(request, tenant)
        response, warning = await self._append(tenant, request)
        if warning:
            add_trailing(context, WARNING_KEY, warning)
        return response

    def _validate_traced(self, request: ingest_pb2.AppendEventsRequest, tenant: str) -> None:
        current = trace.get_current_span()
        current.set_attribute("allsource.stream_id", request.stream_id)
        current.set_attribute("allsource.events", len(request.events))
        with tracing.span("validation", {"allsource.events": len(request.events)}):
            self.validator.check(request, tenant=tenant)
            _in_scope(request)
            _event_sizes(request, tenant)

    async def BatchAppend(
        self, request_iterator: AsyncIterator[ingest_pb2.BatchAppendRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[ingest_pb2.BatchAppendResponse]:
        tenant = tenant_of(context)
        # Requests are read ahead while earlier ones are in flight; when `batch_window` are unanswered
        # the reader stops, and HTTP/2 flow control holds the client back.
        slots: asyncio.Queue[_Slot | BaseException | None] = asyncio.Queue(maxsize=self.batch_window)
        warned = ""

        async def start(
            request: ingest_pb2.AppendEventsRequest, before: asyncio.Future[None] | None, paced: asyncio.Future[None]
        ) -> ingest_pb2.AppendEventsResponse:
            nonlocal warned
            try:
                self.validator.check(request, prefix="append.", tenant=tenant)
                _in_scope(request)
                _event_sizes(request, tenant, "append.")
                if before is not None:  # paced in the stream's order: a small request never overtakes
                    await before  # a big one still waiting off its rate, so one stream's appends stay in order
                await charge(len(request.events))  # each request pays its events (paced past the rate)
            finally:
                paced.set_result(None)  # the next may go once this one is queued (below, before any await)
            response, warning = await self._append(tenant, request)
            warned = warning or warned
            return response

        async def read() -> None:
            try:
                index = 0
                before: asyncio.Future[None] | None = None
                async for message in request_iterator:
                    paced: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                    future = asyncio.ensure_future(start(message.append, before, paced))
                    before = paced
                    await slots.put(_Slot(index, message.correlation_id, future))
                    index += 1
                await slots.put(None)
            except BaseException as exc:  # the client went away or sent garbage
                await slots.put(exc)
                raise

        reader = asyncio.ensure_future(read())
        try:
            while True:
                slot = await slots.get()
                if slot is None:
                    break
                if isinstance(slot, BaseException):
                    raise slot
                response = ingest_pb2.BatchAppendResponse(request_index=slot.index, correlation_id=slot.correlation_id)
                try:
                    response.success.CopyFrom(await slot.result)
                except AllSourceError as exc:
                    response.error.CopyFrom(exc.to_status())
                yield response
        finally:
            reader.cancel()
        if warned:
            add_trailing(context, WARNING_KEY, warned)  # the stream ends with the latest warning
