"""Coalescing of concurrent appends into few storage calls.

A gRPC call costs far more than the work of one small append, so the ingest service never makes one
storage call per client call. Appends wait in a queue; when no storage call is running, a new call takes
everything queued (up to a count and byte bound). Under light load an append goes out at once; under
heavy load hundreds share one call, and the storage writer merges them into one WAL sync. Each append
still succeeds or fails on its own.

Appends to one stream are committed in the order they were queued: a second concurrent call never
carries a stream that a call in flight carries (two calls can reach storage in either order), so those
appends wait for the next call while appends to other streams may go ahead.

A second call (up to `in_flight`) starts only when at least `parallel_bytes` are queued: bulk ingest
then keeps storage busy while the next call is assembled, while small appends keep batching behind a
single call (measured here: one call in flight gives 35% more single appends per second than two).

Under load (the previous call carried several appends) the next call waits up to `linger_s` for more
appends to queue, like PostgreSQL's commit_delay: a storage call costs far more CPU than the small
appends it carries, so fuller calls leave more CPU for the appends themselves. It waits for as many
appends as the previous call carried plus those already queued (at most `linger_until`): the writers
just answered are the ones likely to come back, so a few sequential writers are held only until they
have, while under many concurrent clients calls grow to `linger_until` (32 clients here: about 15
appends per call instead of 8, +10-15% single appends/s). An idle store never waits.

The storage request is assembled from each append's serialized bytes; nothing is re-encoded.

Tenants share the queue fairly (DECISIONS: fairness): a call takes the waiting appends tenant by tenant
in turn (each tenant's in arrival order), so one tenant's backlog does not push another's append into
later calls; and one tenant's waiting appends hold at most `max_queued_bytes_per_tenant` of the queue's
`max_queued_bytes`, so its backlog cannot get everyone else's appends refused.

Tracing: a storage call carrying several public calls belongs to none of their traces. It gets a span
of its own (`ingest.coalesced_append`) starting a new trace, linked to the span of every call it
carries (recorded when any of them is), and each carried call's span names the storage call it rode in
(`allsource.storage_call`, trace id / span id). A call that travels alone continues its own trace: the
storage call's client span is its child. Either way a recorded call gets a `coalesce.wait` child
covering its time in the queue.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from dataclasses import dataclass
from typing import Any

from allsource.storage.v1 import storage_pb2
from allsource.v1 import ingest_pb2
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from shared.core.errors import AllSourceError, Unavailable, from_status
from shared.core.reasons import Reason
from shared.core.wire import recast, varint
from shared.limits.governor import share_exceeded
from shared.rpc.chain import call_deadline
from shared.storage.client import StorageClient
from shared.telemetry import tracing
from shared.telemetry.metrics import COALESCED


@dataclass(slots=True)
class _Waiting:
    operation: bytes
    future: asyncio.Future[storage_pb2.AppendOutcome]
    stream: tuple[str, str]  # (tenant, stream id)
    # Repeating it cannot write twice: it has a request id, or every event has its own id.
    idempotent: bool
    deadline: float | None  # when its caller stops waiting (time.monotonic())
    span: Any  # the span of the call it came in (recorded or not)
    queued_ns: int  # when it was queued (time.time_ns()), for its coalesce.wait span when recorded


def operation_bytes(tenant_id: str, request: ingest_pb2.AppendEventsRequest, scope: str = "") -> bytes:
    """One serialized AppendOperation (field 1 of AppendRequest), tag and length included."""
    tenant = tenant_id.encode()
    body = request.SerializeToString()
    signed = scope.encode()
    inner = b"\x0a" + varint(len(tenant)) + tenant + b"\x12" + varint(len(body)) + body
    if signed:
        inner += b"\x1a" + varint(len(signed)) + signed
    return b"\x0a" + varint(len(inner)) + inner


class AppendCoalescer:
    """Sends queued appends to storage in shared calls, at most `in_flight` at a time."""

    def __init__(
        self,
        storage: StorageClient,
        *,
        in_flight: int,
        max_appends: int,
        max_bytes: int,
        parallel_bytes: int,
        linger_s: float = 0.0,
        linger_until: int = 16,
        max_queued_bytes: int = 64 * 1024 * 1024,
        max_queued_bytes_per_tenant: int = 16 * 1024 * 1024,
    ) -> None:
        self.max_queued_bytes = max_queued_bytes
        self.max_queued_bytes_per_tenant = max_queued_bytes_per_tenant
        self.linger_s = linger_s  # commit delay, see the module doc
        self.linger_until = linger_until
        self._lingering = False
        self._linger_target = 0  # how many queued appends end the current wait
        self._linger_timer: asyncio.TimerHandle | None = None
        self._last_batch = 0
        self.storage = storage
        self.in_flight_limit = in_flight
        self.parallel_bytes = parallel_bytes
        self.max_appends = max_appends
        self.max_bytes = max_bytes
        self._queue: list[_Waiting] = []
        self._queued_bytes = 0
        self._tenant_bytes: dict[str, int] = {}  # queued bytes per tenant (only tenants with some queued)
        self._in_flight = 0
        self._busy: dict[tuple[str, str], int] = {}  # streams in calls in flight -> how many calls
        self._sending: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks
        self.calls = 0
        self.appends = 0

    async def append(
        self, tenant_id: str, request: ingest_pb2.AppendEventsRequest
    ) -> tuple[ingest_pb2.AppendEventsResponse, str]:
        """Append through storage; raises the append's own error if it failed. Returns the response and
        storage's quota warning for the tenant ("" when none)."""
        operation = operation_bytes(tenant_id, request, self.storage.scope())
        if self._queued_bytes + len(operation) > self.max_queued_bytes and self._queue:
            # Bounded memory whatever the clients do: past the bound an append is refused at once.
            raise Unavailable(
                "too many appends are waiting for storage; retry shortly",
                reason=Reason.OVERLOADED,
                metadata={"limit": "ingest.max_queued_bytes", "value": str(self.max_queued_bytes)},
                retry_after=0.2 * (1 + random.random()),
            )
        mine = self._tenant_bytes.get(tenant_id, 0)
        if mine and mine + len(operation) > self.max_queued_bytes_per_tenant:
            # A tenant's backlog takes at most its share: the others' appends still queue.
            limit = self.max_queued_bytes_per_tenant
            held = f"{mine} bytes of appends waiting for storage"
            retry = 0.2 * (1 + random.random())
            raise share_exceeded(tenant_id, "ingest.max_queued_bytes_per_tenant", limit, held, "queued_bytes", retry)
        future: asyncio.Future[storage_pb2.AppendOutcome] = asyncio.get_running_loop().create_future()
        idempotent = bool(request.request_id) or all(event.event_id for event in request.events)
        span = trace.get_current_span()
        self._queue.append(
            _Waiting(
                operation,
                future,
                (tenant_id, request.stream_id),
                idempotent,
                call_deadline.get(),
                span,
                time.time_ns() if span.is_recording() else 0,
            )
        )
        self._queued_bytes += len(operation)
        self._tenant_bytes[tenant_id] = mine + len(operation)
        self._flush()
        outcome = await future
        if outcome.HasField("error"):
            raise from_status(outcome.error)
        # The storage service's AppendResult has AppendEventsResponse's wire format.
        return recast(outcome.success, ingest_pb2.AppendEventsResponse), outcome.quota_warning

    def _flush(self) -> None:
        if self.linger_s and self._in_flight == 0 and self._last_batch > 1 and not self._lingering:
            target = min(self.linger_until, self._last_batch + len(self._queue))
            if len(self._queue) < target and self._queued_bytes < self.parallel_bytes:  # bulk never waits
                # Under load (the last call carried several appends) wait briefly for more to join.
                self._lingering = True
                self._linger_target = target
                self._linger_timer = asyncio.get_running_loop().call_later(self.linger_s, self._end_linger)
                return
        if self._lingering and len(self._queue) < self._linger_target and self._queued_bytes < self.parallel_bytes:
            return
        while self._queue and (
            self._in_flight == 0
            or (self._in_flight < self.in_flight_limit and self._queued_bytes >= self.parallel_bytes)
        ):
            batch: list[_Waiting] = []
            held_streams: set[tuple[str, str]] = set()
            size = 0
            for waiting in _in_turns(self._queue):
                if batch and (len(batch) >= self.max_appends or size + len(waiting.operation) > self.max_bytes):
                    break  # the call is full
                if waiting.stream in self._busy or waiting.stream in held_streams:
                    held_streams.add(waiting.stream)  # keeps its place behind the same stream's earlier appends
                    continue
                batch.append(waiting)
                size += len(waiting.operation)
            if not batch:
                return  # everything queued waits for a stream in flight
            if len(batch) == len(self._queue):
                held: list[_Waiting] = []
            else:
                taken = set(map(id, batch))
                held = [w for w in self._queue if id(w) not in taken]  # in arrival order
            for waiting in batch:
                tenant = waiting.stream[0]
                left = self._tenant_bytes[tenant] - len(waiting.operation)
                if left:
                    self._tenant_bytes[tenant] = left
                else:
                    del self._tenant_bytes[tenant]
            if self._lingering:
                self._lingering = False
                if self._linger_timer is not None:
                    self._linger_timer.cancel()  # or it would cut the next wait short
            self._last_batch = len(batch)
            self._queue = held
            self._queued_bytes -= size
            self._in_flight += 1
            for waiting in batch:
                self._busy[waiting.stream] = self._busy.get(waiting.stream, 0) + 1
            task = asyncio.ensure_future(self._send(batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    def _end_linger(self) -> None:
        if self._lingering:
            self._lingering = False
            self._last_batch = 0
            self._flush()

    async def _send(self, batch: list[_Waiting]) -> None:
        # The call carries the latest of its appends' deadlines: it is worth making while anyone waits.
        deadlines = [w.deadline for w in batch]
        call_deadline.set(None if None in deadlines else max(d for d in deadlines if d is not None))
        COALESCED.observe(len(batch))
        # This task was started from one carried call's context. A call that travels alone continues its
        # trace; a call carrying several gets a trace of its own, linked to each of theirs.
        if len(batch) == 1:
            linked = batch[0].span  # the storage call's client span is the call's own child
        else:
            linked = tracing.linked_span(
                "ingest.coalesced_append",
                [w.span.get_span_context() for w in batch],
                {"allsource.appends": len(batch)},
                SpanKind.INTERNAL,
            )
        tracing.attach(linked)
        if linked.is_recording():
            _note_ride(batch, linked)
        try:
            response = await self.storage.append_raw(
                b"".join(w.operation for w in batch), idempotent=all(w.idempotent for w in batch)
            )
        except AllSourceError as exc:
            for waiting in batch:
                if not waiting.future.done():
                    waiting.future.set_exception(exc)
        except BaseException as exc:  # never leave a caller waiting forever
            for waiting in batch:
                if not waiting.future.done():
                    waiting.future.set_exception(exc)
            raise
        else:
            for waiting, outcome in zip(batch, response.outcomes, strict=True):
                if not waiting.future.done():
                    waiting.future.set_result(outcome)
        finally:
            if len(batch) > 1:
                linked.end()
            self.calls += 1
            self.appends += len(batch)
            self._in_flight -= 1
            for waiting in batch:
                left = self._busy[waiting.stream] - 1
                if left:
                    self._busy[waiting.stream] = left
                else:
                    del self._busy[waiting.stream]
            self._flush()


def _in_turns(queue: list[_Waiting]) -> list[_Waiting]:
    """The waiting appends in the order storage calls take them: the tenants in turn (the first append of
    each, then the second of each...), each tenant's in arrival order; the queue itself when one tenant
    has them all. So one tenant's backlog does not push another's append into later calls."""
    first = queue[0].stream[0] if queue else ""
    if all(w.stream[0] == first for w in queue):
        return queue
    by_tenant: dict[str, list[_Waiting]] = {}
    for waiting in queue:
        by_tenant.setdefault(waiting.stream[0], []).append(waiting)
    return [w for turn in itertools.zip_longest(*by_tenant.values()) for w in turn if w is not None]


def _note_ride(batch: list[_Waiting], linked: Any) -> None:
    """Each recorded carried call: the storage call it rode in, and its wait in the queue."""
    ctx = linked.get_span_context()
    ride = f"{ctx.trace_id:032x}/{ctx.span_id:016x}" if len(batch) > 1 else ""
    now = time.time_ns()
    for waiting in batch:
        span = waiting.span
        if span.is_recording():
            if ride:
                span.set_attribute("allsource.storage_call", ride)
            tracing.leaf(span, "coalesce.wait", {"allsource.appends_in_call": len(batch)}, waiting.queued_ns, now)
