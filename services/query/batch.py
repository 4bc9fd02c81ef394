"""QueryService's batch reads: BatchGetEvents and ReadStreams, one storage round trip each.

What the read cache holds answers first; only the rest goes to storage, in one call. Every id or read
gets a result of its own. An event the credential's scope hides answers exactly as an absent one (as
GetEvent does), so a scoped key cannot probe for ids; a stream outside the key's prefix is named by the
caller, so it is refused as such (SCOPE_RESTRICTED) without failing the other reads.
"""

from __future__ import annotations

import grpc
from allsource.storage.v1 import storage_pb2
from allsource.v1 import query_pb2
from google.rpc import status_pb2

from services.query.cache import Page, ReadCache, make_page
from services.query.freshness import HeadPolls, await_position
from shared.config.settings import LimitsSettings, QuerySettings
from shared.core import pagination
from shared.core.errors import AllSourceError, InvalidArgument, NotFound, ResourceExhausted
from shared.core.reasons import Reason
from shared.core.text import UUID_PATTERN, text_problem
from shared.limits.governor import current_limit
from shared.storage.client import BATCH_READ_BYTES, StorageClient
from shared.tenancy.scope import limited_to_types, require_stream, tenant_of, visible

_DIRECTIONS = set(query_pb2.ReadDirection.values())


def _not_found(event_id: str) -> status_pb2.Status:
    return NotFound(
        f"event {event_id} not found", reason=Reason.EVENT_NOT_FOUND, metadata={"event_id": event_id}
    ).to_status()


def _budget() -> int:
    """The bytes of events one batch read answers at most: the plan's max_result_bytes, within the bound."""
    return min(current_limit("max_result_bytes") or BATCH_READ_BYTES, BATCH_READ_BYTES)


def _too_large(what: str) -> status_pb2.Status:
    return ResourceExhausted(
        f"the results before this one took the call's byte bound; ask for {what} again",
        reason=Reason.BATCH_RESULT_TOO_LARGE,
    ).to_status()


class BatchReads:
    """BatchGetEvents and ReadStreams (mixed into QueryServicer)."""

    storage: StorageClient
    settings: QuerySettings
    limits: LimitsSettings
    cache: ReadCache
    heads: HeadPolls

    async def _fresh(self, tenant: str, min_position: int) -> None:
        """Wait, boundedly, until this replica has seen the tenant's log reach min_position (0: no wait)."""
        await await_position(self.cache, self.heads, tenant, min_position, self.settings.min_position_wait_ms / 1000)

    def _check_ids(self, event_ids: list[str]) -> None:
        violations = []
        most = self.settings.max_batch_event_ids
        if not event_ids:
            violations.append(("event_ids", "must name at least one event"))
        elif len(event_ids) > most:
            violations.append(("event_ids", f"must name at most {most} events"))
        else:
            seen: set[str] = set()
            for i, event_id in enumerate(event_ids):
                if not UUID_PATTERN.fullmatch(event_id):
                    violations.append((f"event_ids[{i}]", "must be a UUID in 8-4-4-4-12 form"))
                elif event_id.lower() in seen:
                    violations.append((f"event_ids[{i}]", "is named twice"))
                seen.add(event_id.lower())
        if violations:
            raise InvalidArgument("event_ids are invalid", reason=Reason.INVALID_EVENT_ID, violations=violations)

    async def BatchGetEvents(
        self, request: query_pb2.BatchGetEventsRequest, context: grpc.aio.ServicerContext
    ) -> query_pb2.BatchGetEventsResponse:
        self._check_ids(list(request.event_ids))
        tenant = tenant_of(context)
        await self._fresh(tenant, request.min_position)
        ids = [event_id.lower() for event_id in request.event_ids]
        events: dict[str, bytes] = {}
        for event_id in ids:
            data = self.cache.get(tenant, "event", ("e", event_id))
            if data is not None:
                events[event_id] = data
        unread: set[str] = set()
        wanted = [event_id for event_id in ids if event_id not in events]
        if wanted:
            ticket = self.cache.ticket(tenant)
            try:
                reply = await self.storage.batch_get_events(
                    storage_pb2.BatchGetEventsRequest(
                        tenant_id=tenant, event_ids=wanted, max_bytes=current_limit("max_result_bytes") or 0
                    )
                )
                unread = set(reply.unread_event_ids)
                absent = unread | set(reply.missing_event_ids)
                found = [event_id for event_id in wanted if event_id not in absent]
                for event_id, event, volatile in zip(found, reply.events, reply.volatile, strict=True):
                    data = event.SerializeToString()
                    events[event_id] = data
                    if not volatile:
                        self.cache.keep(ticket, "event", ("e", event_id), data, len(data), event.stream_id)
            finally:
                self.cache.done(ticket)
        response = query_pb2.BatchGetEventsResponse()
        # The call's byte bound holds for events from the cache as for those from storage (the first goes).
        budget, used = _budget(), 0
        for event_id in ids:
            result = response.results.add(event_id=event_id)
            data = events.get(event_id)
            if data is not None and used and used + len(data) > budget:
                unread.add(event_id)
                data = None
            if data is not None:
                used += len(data)
                result.event.MergeFromString(data)
                if visible(result.event):
                    continue
                result.ClearField("event")  # out of the credential's scope: answered as absent
            result.error.CopyFrom(_too_large(f"event {event_id}") if event_id in unread else _not_found(event_id))
        return response

    def _check_reads(self, reads: list[query_pb2.StreamRead]) -> None:
        violations = []
        most = self.settings.max_batch_streams
        if not reads:
            violations.append(("reads", "must name at least one stream"))
        elif len(reads) > most:
            violations.append(("reads", f"must name at most {most} streams"))
        else:
            for i, read in enumerate(reads):
                if problem := text_problem(read.stream_id, self.limits.max_stream_id_bytes):
                    violations.append((f"reads[{i}].stream_id", problem))
                if read.direction not in _DIRECTIONS:
                    violations.append((f"reads[{i}].direction", "must be FORWARD or BACKWARD"))
                if read.limit < 0:
                    violations.append((f"reads[{i}].limit", "must not be negative"))
        if violations:
            raise InvalidArgument("the reads are invalid", violations=violations)

    async def ReadStreams(
        self, request: query_pb2.ReadStreamsRequest, context: grpc.aio.ServicerContext
    ) -> query_pb2.ReadStreamsResponse:
        reads = list(request.reads)
        self._check_reads(reads)
        tenant = tenant_of(context)
        await self._fresh(tenant, request.min_position)
        max_bytes = current_limit("max_result_bytes") or 0
        pages: dict[int, Page] = {}
        errors: dict[int, status_pb2.Status] = {}
        asks: list[tuple[int, tuple[str, str, bool, int, int, int], storage_pb2.ReadStreamRequest]] = []
        for i, read in enumerate(reads):
            try:
                require_stream(read.stream_id)
            except AllSourceError as exc:
                errors[i] = exc.to_status()
                continue
            backward = read.direction == query_pb2.READ_DIRECTION_BACKWARD
            size = pagination.page_size(read.limit, self.settings.default_page_size, self.settings.max_page_size)
            key = ("p", read.stream_id, backward, read.from_version, size, max_bytes)
            page = self.cache.get(tenant, "page", key)
            if page is not None:
                pages[i] = page
                continue
            ask = storage_pb2.ReadStreamRequest(
                stream_id=read.stream_id,
                backward=backward,
                from_version=read.from_version,
                limit=size,
                max_bytes=max_bytes,
            )
            asks.append((i, key, ask))
        if asks:
            tickets = [self.cache.ticket(tenant, ask.stream_id, heads=True) for _, _, ask in asks]
            try:
                reply = await self.storage.read_streams(
                    storage_pb2.ReadStreamsRequest(
                        tenant_id=tenant, reads=[ask for _, _, ask in asks], max_bytes=max_bytes
                    )
                )
                for (i, key, ask), ticket, outcome in zip(asks, tickets, reply.outcomes, strict=True):
                    if outcome.HasField("error"):
                        errors[i] = outcome.error
                        continue
                    piece = outcome.slice
                    page = make_page(piece, piece.SerializeToString(), ask.backward, ask.from_version)
                    pages[i] = page
                    if not piece.volatile:
                        self.cache.keep(ticket, "page", key, page, len(page.events), ask.stream_id)
            finally:
                for ticket in tickets:
                    self.cache.done(ticket)
        response = query_pb2.ReadStreamsResponse()
        budget, used = _budget(), 0
        for i, read in enumerate(reads):
            if i in errors:
                response.results.add(stream_id=read.stream_id, error=errors[i])
                continue
            page = pages[i]
            if used and used + len(page.events) > budget:  # pages from the cache count as storage's do
                response.results.add(stream_id=read.stream_id, error=_too_large(f"stream {read.stream_id}"))
                continue
            used += len(page.events)
            result = query_pb2.StreamReadResult.FromString(page.events)
            if limited_to_types():
                kept = [event for event in result.events if visible(event)]
                del result.events[:]
                result.events.extend(kept)
            result.stream_id = read.stream_id
            result.stream_version = page.stream_version
            result.next_version = page.next_version
            response.results.append(result)
        return response
