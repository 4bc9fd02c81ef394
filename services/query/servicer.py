"""QueryService: reads, filtered listing, bulk streaming, folded state and subscriptions, via storage."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TypeVar

import grpc
from allsource.storage.v1 import model_pb2, storage_pb2
from allsource.v1 import event_pb2, query_pb2, query_pb2_grpc
from google.protobuf.message import Message

from services.query.batch import BatchReads
from services.query.cache import Page, ReadCache, make_page
from services.query.freshness import HeadPolls
from services.query.groups import ConsumerGroupRPCs
from services.query.lifecycle import MetadataReads
from services.query.relay import SubscriptionRelay
from services.query.state import fold_stream
from services.query.subscriptions import StreamSlots
from shared.config.settings import LimitsSettings, MemorySettings, QuerySettings
from shared.core import pagination
from shared.core.errors import AllSourceError, InvalidArgument, NotFound
from shared.core.reasons import Reason
from shared.core.text import CONTROL, UUID_PATTERN, text_problem, timestamp_problem
from shared.core.wire import Prebuilt, recast, varint
from shared.limits.governor import charge, current_limit
from shared.limits.memory import MemoryMonitor
from shared.rpc.streams import Closing, until_closed
from shared.storage.client import StorageClient
from shared.telemetry import tracing
from shared.tenancy.scope import (
    limited_to_types,
    narrow,
    require_stream,
    require_whole_streams,
    tenant_of,
    visible,
)

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)
STREAM_BATCH_DEFAULT, STREAM_BATCH_MAX = 500, 2000
MAX_CHECKPOINT_EVERY = 100_000  # Subscribe.checkpoint_every_events: how far storage scans in one go
MAX_SCAN = 10_000
_DIRECTIONS = set(query_pb2.ReadDirection.values())


def forward(public_type: type[M], raw: bytes) -> M:
    """Parse a storage read response as the public response type (field 1, the events, is shared)."""
    message = public_type.FromString(raw)
    message.DiscardUnknownFields()
    return message


def prefix_problem(prefix: str, max_bytes: int) -> str | None:
    """What is wrong with a stream-id prefix (empty is fine), or None; sizes are checked first."""
    if len(prefix) > max_bytes or len(prefix.encode()) > max_bytes:
        return f"must be at most {max_bytes} bytes of UTF-8"
    if CONTROL.search(prefix):
        return "must not contain control characters"
    return None


def check_filter(f: event_pb2.EventFilter, limits: LimitsSettings, path: str = "filter") -> None:
    """Reject contradictory, malformed or oversized filters (every field is bounded, see LimitsSettings)."""
    path = f"{path}." if path else ""
    violations = []
    if f.stream_id and f.stream_id_prefix:
        violations.append((f"{path}stream_id_prefix", "must be empty when stream_id is set"))
    if f.stream_id and (problem := text_problem(f.stream_id, limits.max_stream_id_bytes)):
        violations.append((f"{path}stream_id", problem))
    if problem := prefix_problem(f.stream_id_prefix, limits.max_stream_id_bytes):
        violations.append((f"{path}stream_id_prefix", problem))
    if len(f.event_types) > limits.max_filter_event_types:
        violations.append((f"{path}event_types", f"must name at most {limits.max_filter_event_types} event types"))
    else:
        for i, event_type in enumerate(f.event_types):
            if problem := text_problem(event_type, limits.max_event_type_bytes):
                violations.append((f"{path}event_types[{i}]", problem))
    for name in ("start_time", "end_time"):
        if f.HasField(name) and (problem := timestamp_problem(getattr(f, name))):
            violations.append((f"{path}{name}", problem))
    if (
        f.HasField("start_time")
        and f.HasField("end_time")
        and f.end_time.ToNanoseconds() <= f.start_time.ToNanoseconds()
    ):
        violations.append((f"{path}end_time", "must be after start_time"))
    if f.to_position and f.from_position > f.to_position:
        violations.append((f"{path}to_position", "must not be below from_position"))
    if violations:
        raise InvalidArgument("the filter is invalid", reason=Reason.INVALID_FILTER, violations=violations)


def check_stream_id(stream_id: str, limits: LimitsSettings) -> None:
    """Reject an empty, malformed or oversized stream id."""
    if problem := text_problem(stream_id, limits.max_stream_id_bytes):
        raise InvalidArgument(f"stream_id {problem}", violations=[("stream_id", problem)])


class QueryServicer(MetadataReads, ConsumerGroupRPCs, BatchReads, query_pb2_grpc.QueryServiceServicer):
    """The public read API, GetStreamMetadata (services.query.lifecycle) and consumer groups
    (services.query.groups)."""

    def __init__(
        self, storage: StorageClient, settings: QuerySettings, limits: LimitsSettings, memory: MemorySettings
    ) -> None:
        self.storage = storage
        self.settings = settings
        self.limits = limits
        self.subscriptions = StreamSlots(settings, "subscriptions", "live subscriptions")
        self.consume_slots = StreamSlots(settings, "consume_streams", "Consume streams")
        self.exports = StreamSlots(settings, "exports", "exports (StreamEvents)")
        self.cache = ReadCache(
            max_bytes=settings.cache_bytes,
            max_bytes_per_tenant=settings.cache_bytes_per_tenant,
            enabled=settings.cache_enabled,
        )
        self.heads = HeadPolls(storage)  # for reads with min_position (services.query.freshness)
        self.memory = MemoryMonitor(memory, self.cache.shed, self.cache.relieve, service="query")
        self.closing = Closing()

    def _page_size(self, requested: int) -> int:
        return pagination.page_size(requested, self.settings.default_page_size, self.settings.max_page_size)

    async def GetEvent(
        self, request: query_pb2.GetEventRequest, context: grpc.aio.ServicerContext
    ) -> query_pb2.GetEventResponse:
        if not UUID_PATTERN.fullmatch(request.event_id):
            raise InvalidArgument(
                "event_id must be a UUID",
                reason=Reason.INVALID_EVENT_ID,
                violations=[("event_id", "must be a UUID in 8-4-4-4-12 form")],
            )
        tenant, event_id = tenant_of(context), request.event_id.lower()
        await self._fresh(tenant, request.min_position)
        data = self.cache.get(tenant, "event", ("e", event_id))
        if data is not None:
            response = query_pb2.GetEventResponse.FromString(b"\x0a" + varint(len(data)) + data)
            if not visible(response.event):
                raise NotFound(
                    f"event {event_id} not found", reason=Reason.EVENT_NOT_FOUND, metadata={"event_id": event_id}
                )
            return response
        ticket = self.cache.ticket(tenant)
        try:
            found, raw = await self.storage.get_event(storage_pb2.GetEventRequest(tenant_id=tenant, event_id=event_id))
        except AllSourceError as exc:
            cached = self.cache.peek_event(tenant, event_id) if exc.code == grpc.StatusCode.UNAVAILABLE else None
            if cached is None:
                raise
            # Storage cannot be reached: an event read before still answers (events never change).
            log.info("served a cached event while storage is unavailable", extra={"event_id": event_id})
            raw = b"\x0a" + varint(len(cached)) + cached
            found = storage_pb2.GetEventResponse.FromString(raw)
        else:
            if not found.volatile:
                data = found.event.SerializeToString()
                self.cache.keep(ticket, "event", ("e", event_id), data, len(data), found.event.stream_id)
        finally:
            self.cache.done(ticket)
        if not visible(found.event):
            # Answer exactly as storage answers an absent event, so a scoped key cannot probe for ids.
            raise NotFound(
                f"event {event_id} not found", reason=Reason.EVENT_NOT_FOUND, metadata={"event_id": event_id}
            )
        return forward(query_pb2.GetEventResponse, raw)

    async def ReadStream(
        self, request: query_pb2.ReadStreamRequest, context: grpc.aio.ServicerContext
    ) -> query_pb2.ReadStreamResponse:
        check_stream_id(request.stream_id, self.limits)
        require_stream(request.stream_id)
        if request.direction not in _DIRECTIONS:
            raise InvalidArgument(
                "direction is not a known ReadDirection", violations=[("direction", "must be FORWARD or BACKWARD")]
            )
        tenant = tenant_of(context)
        size = self._page_size(request.page_size)
        backward = request.direction == query_pb2.READ_DIRECTION_BACKWARD

        # The digest a page token is bound to, made only when a token is read or written (most reads
        # are of one page: it was 6% of a cached read's time in the query service).
        def bound() -> str:
            return pagination.fingerprint("ReadStream", tenant, request.stream_id, backward, request.from_version)

        from_version = request.from_version
        if request.page_token:
            from_version = pagination.cursor_int(pagination.decode(request.page_token, bound()), "v")
        await self._fresh(tenant, request.min_position)
        page = await self._page(tenant, request.stream_id, backward, from_version, size)
        token = pagination.encode(bound(), {"v": page.next_version}) if page.next_version else ""
        if not limited_to_types():
            # The page's event bytes go out as they came: field 1, then next_page_token (2) and
            # stream_version (3) encoded by hand; no message is built.
            encoded = token.encode()
            tail = b"\x12" + varint(len(encoded)) + encoded if encoded else b""
            if page.stream_version:
                tail += b"\x18" + varint(page.stream_version)
            return Prebuilt(page.events + tail, page.count)  # type: ignore[return-value]
        # A key limited to event types reads the stream's events of those types only.
        response = forward(query_pb2.ReadStreamResponse, page.events)
        kept = [event for event in response.events if visible(event)]
        del response.events[:]
        response.events.extend(kept)
        response.stream_version = page.stream_version
        response.next_page_token = token
        return response

    async def _page(self, tenant: str, stream_id: str, backward: bool, from_version: int, size: int) -> Page:
        """A slice of a stream, from the read cache or from storage (and then kept)."""
        max_bytes = current_limit("max_result_bytes") or 0
        key = ("p", stream_id, backward, from_version, size, max_bytes)
        page: Page | None = self.cache.get(tenant, "page", key)
        if page is not None:
            return page
        ticket = self.cache.ticket(tenant, stream_id, heads=True)
        try:
            piece, raw = await self.storage.read_stream(
                storage_pb2.ReadStreamRequest(
                    tenant_id=tenant,
                    stream_id=stream_id,
                    backward=backward,
                    from_version=from_version,
                    limit=size,
                    max_bytes=max_bytes,
                ),
            )
            page = make_page(piece, raw, backward, from_version)
            if not piece.volatile:
                self.cache.keep(ticket, "page", key, page, len(page.events), stream_id)
        finally:
            self.cache.done(ticket)
        return page

    async def ListEvents(
        self, request: query_pb2.ListEventsRequest, context: grpc.aio.ServicerContext
    ) -> query_pb2.ListEventsResponse:
        check_filter(request.filter, self.limits)
        narrow(request.filter)
        tenant = tenant_of(context)
        size = self._page_size(request.page_size)
        # explain is bound too (any parameter but page_size is); left out when false, so tokens stay as before.
        explained = ("explain",) if request.explain else ()
        bound = pagination.fingerprint(
            "ListEvents", tenant, request.filter.SerializeToString(deterministic=True), *explained
        )
        after = 0
        if request.page_token:
            after = pagination.cursor_int(pagination.decode(request.page_token, bound), "p")
        await self._fresh(tenant, request.min_position)
        run, raw = await self.storage.read_events(
            storage_pb2.ReadEventsRequest(
                tenant_id=tenant,
                filter=recast(request.filter, model_pb2.EventFilter),
                after_position=after,
                limit=size,
                max_scan=MAX_SCAN,
                max_bytes=current_limit("max_result_bytes") or 0,
            ),
        )
        response = forward(query_pb2.ListEventsResponse, raw)
        response.next_page_token = "" if run.end_of_range else pagination.encode(bound, {"p": run.scanned_to_position})
        if request.explain:
            response.plan.index, response.plan.keys_examined = run.index, run.keys_examined
        return response

    async def StreamEvents(
        self, request: query_pb2.StreamEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[query_pb2.StreamEventsResponse]:
        check_filter(request.filter, self.limits)
        tenant = tenant_of(context)
        batch = pagination.page_size(request.batch_size, STREAM_BATCH_DEFAULT, STREAM_BATCH_MAX, "batch_size")
        event_filter = event_pb2.EventFilter()
        event_filter.CopyFrom(request.filter)
        narrow(event_filter)
        max_bytes = current_limit("max_result_bytes") or 0
        with self.exports.hold(tenant):  # each keeps storage scanning while it is open
            after = 0
            while True:
                run, raw = await self.storage.read_events(
                    storage_pb2.ReadEventsRequest(
                        tenant_id=tenant,
                        filter=recast(event_filter, model_pb2.EventFilter),
                        after_position=after,
                        limit=batch,
                        max_scan=MAX_SCAN,
                        max_bytes=max_bytes,
                    ),
                )
                if run.events:
                    await charge(len(run.events))  # each batch pays its events (paced past the rate)
                    yield forward(query_pb2.StreamEventsResponse, raw)
                if not event_filter.to_position:
                    # Stream what was committed when the call started; a live feed is what Subscribe is for.
                    if not run.head_position:
                        return
                    event_filter.to_position = run.head_position
                if run.end_of_range or run.scanned_to_position <= after:
                    return
                after = run.scanned_to_position

    async def GetEntityState(
        self, request: query_pb2.GetEntityStateRequest, context: grpc.aio.ServicerContext
    ) -> query_pb2.GetEntityStateResponse:
        check_stream_id(request.stream_id, self.limits)
        require_stream(request.stream_id)
        require_whole_streams("read folded entity state")
        as_of = request.WhichOneof("as_of")
        if as_of == "as_of_time" and (problem := timestamp_problem(request.as_of_time)):
            raise InvalidArgument(f"as_of_time {problem}", violations=[("as_of_time", problem)])
        await self._fresh(tenant_of(context), request.min_position)
        with tracing.span("entity_state.fold", {"allsource.stream_id": request.stream_id}, current=True) as span:
            state = await fold_stream(
                self.storage,
                self.cache,
                tenant_of(context),
                request.stream_id,
                as_of_version=request.as_of_version if as_of == "as_of_version" else None,
                as_of_time=request.as_of_time if as_of == "as_of_time" else None,
                snapshot_after=self.settings.snapshot_after_events,
                max_bytes=self.settings.max_entity_state_bytes,
            )
            if span is not None:
                span.set_attribute("allsource.version", state.version)
        return state

    async def Subscribe(
        self, request: query_pb2.SubscribeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[query_pb2.SubscribeResponse]:
        check_filter(
            event_pb2.EventFilter(event_types=request.event_types, stream_id_prefix=request.stream_id_prefix),
            self.limits,
            "",
        )
        if request.from_end and request.after_position:
            raise InvalidArgument(
                "from_end and after_position are exclusive",
                violations=[("from_end", "must be false when after_position is set")],
            )
        if request.max_batch_size < 0:
            raise InvalidArgument(
                "max_batch_size must not be negative", violations=[("max_batch_size", "must not be negative")]
            )
        if request.checkpoint_every_events > MAX_CHECKPOINT_EVERY:
            # It is how far storage scans in one go for this subscription: bounded like every scan.
            raise InvalidArgument(
                f"checkpoint_every_events must be at most {MAX_CHECKPOINT_EVERY}",
                violations=[("checkpoint_every_events", f"must be at most {MAX_CHECKPOINT_EVERY}")],
            )
        interval = self.settings.checkpoint_interval_s
        if request.HasField("checkpoint_interval"):
            interval = request.checkpoint_interval.ToNanoseconds() / 1e9
            if not 0.05 <= interval <= 3600:
                raise InvalidArgument(
                    "checkpoint_interval must be between 50 ms and one hour",
                    violations=[("checkpoint_interval", "must be between 50 ms and one hour")],
                )
        scoped = event_pb2.EventFilter(event_types=request.event_types, stream_id_prefix=request.stream_id_prefix)
        narrow(scoped)
        upstream = storage_pb2.SubscribeRequest(
            tenant_id=tenant_of(context),
            after_position=request.after_position,
            from_end=request.from_end,
            event_types=scoped.event_types,
            stream_id_prefix=scoped.stream_id_prefix,
            checkpoint_every_events=request.checkpoint_every_events or self.settings.checkpoint_every_events,
            checkpoint_interval_ms=int(interval * 1000),
            max_batch_size=min(request.max_batch_size or STREAM_BATCH_DEFAULT, STREAM_BATCH_MAX),
            max_message_bytes=min(
                self.settings.subscriber_buffer_bytes,
                current_limit("max_result_bytes") or self.settings.subscriber_buffer_bytes,
            ),
        )
        self.memory.admit("subscriptions")
        with self.subscriptions.hold(upstream.tenant_id):
            relay = SubscriptionRelay(
                self.storage.subscribe(upstream),
                buffer_bytes=self.settings.subscriber_buffer_bytes,
                stall_s=self.settings.subscriber_stall_s,
                start=request.after_position,
            )
            traced = tracing.active()
            async for message in until_closed(relay.__aiter__(), self.closing):
                if traced:
                    delivery = tracing.delivery_span(message)
                    yield message  # delivered once the client's flow control takes it
                    delivery.end()
                else:
                    yield message

    async def ListStreams(
        self, request: query_pb2.ListStreamsRequest, context: grpc.aio.ServicerContext
    ) -> query_pb2.ListStreamsResponse:
        if problem := prefix_problem(request.stream_id_prefix, self.limits.max_stream_id_bytes):
            raise InvalidArgument(
                f"stream_id_prefix {problem}", reason=Reason.INVALID_FILTER, violations=[("stream_id_prefix", problem)]
            )
        scoped = event_pb2.EventFilter(stream_id_prefix=request.stream_id_prefix)
        narrow(scoped)
        tenant = tenant_of(context)
        size = self._page_size(request.page_size)
        bound = pagination.fingerprint("ListStreams", tenant, scoped.stream_id_prefix)
        after = ""
        if request.page_token:
            after = pagination.cursor_str(pagination.decode(request.page_token, bound), "s")
        reply = await self.storage.list_streams(
            storage_pb2.ListStreamsRequest(
                tenant_id=tenant, stream_id_prefix=scoped.stream_id_prefix, after_stream_id=after, limit=size
            ),
        )
        token = ""
        if not reply.end and reply.streams:
            token = pagination.encode(bound, {"s": reply.streams[-1].stream_id})
        return query_pb2.ListStreamsResponse(
            streams=[recast(s, event_pb2.StreamInfo) for s in reply.streams], next_page_token=token
        )
