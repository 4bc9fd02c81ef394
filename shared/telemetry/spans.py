"""A lean OpenTelemetry tracer: the API's Span and Tracer, recorded and exported at a few microseconds a span.

Why not the OpenTelemetry SDK: measured on this machine, an SDK span costs about 50 us to create and
end and its OTLP exporter about 80 us more to encode it (attribute cleaning, bounded containers, a
generic encoder), so recording every call's handful of spans cost more than half of a small append's
throughput. These spans are plain slotted objects; leaf spans (Child) live inside their parent; an OTLP
exporter writes each span as protobuf bytes when it ends, and the export thread only joins and sends
them (docs/PERFORMANCE.md, "Tracing and metrics", says what each choice bought). They implement the OpenTelemetry *API*
(`opentelemetry.trace.Span`, `Tracer`, `TracerProvider`), so context propagation, `trace.use_span` and
opentelemetry-instrumentation-grpc work with them unchanged.

What is kept of the SDK's behaviour: parent-based sampling decided when a span starts (shared.telemetry.
tracing.Sampler), a bounded queue drained by one thread in batches (spans past the bound are dropped and
counted, so a dead collector costs bounded memory and never blocks a call), OTLP over gRPC or HTTP,
Zipkin v2 JSON, and the console.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import random
import struct
import sys
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import orjson
from opentelemetry import trace
from opentelemetry.trace import (
    INVALID_SPAN_CONTEXT,
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

from shared.core.wire import varint

log = logging.getLogger("allsource.tracing")
SAMPLED = TraceFlags(1)
UNSAMPLED = TraceFlags(0)


class Span(trace.Span):
    """One recorded span."""

    __slots__ = (
        "_ctx",
        "_ended",
        "_on_end",
        "attributes",
        "children",
        "end_ns",
        "events",
        "kind",
        "links",
        "name",
        "parent_id",
        "start_ns",
        "status_code",
        "status_message",
    )

    def __init__(
        self,
        name: str,
        ctx: SpanContext,
        parent_id: int,
        kind: SpanKind,
        attributes: dict[str, Any] | None,
        links: list[SpanContext],
        start_ns: int,
        on_end: Callable[[Span], None],
    ) -> None:
        self.name = name
        self._ctx = ctx
        self.parent_id = parent_id
        self.kind = kind
        self.attributes = dict(attributes) if attributes else {}
        self.links = links
        self.events: list[tuple[str, dict[str, Any], int]] = []
        self.start_ns = start_ns
        self.end_ns = 0
        self.status_code = StatusCode.UNSET
        self.status_message = ""
        self.children: list[Child] = []
        self._ended = False
        self._on_end = on_end

    def child(self, name: str, attributes: dict[str, Any] | None = None, start_ns: int = 0) -> Child:
        """A leaf span under this one (authentication, validation, a RocksDB read...), kept with it."""
        return Child(self, name, attributes, start_ns or time.time_ns())

    def get_span_context(self) -> SpanContext:
        return self._ctx

    def set_attributes(self, attributes: Any) -> None:
        if not self._ended:
            self.attributes.update(attributes)

    def set_attribute(self, key: str, value: Any) -> None:
        if not self._ended:
            self.attributes[key] = value

    def add_event(self, name: str, attributes: Any = None, timestamp: int | None = None) -> None:
        if not self._ended and len(self.events) < 128:
            self.events.append((name, dict(attributes or {}), timestamp or time.time_ns()))

    def add_link(self, context: SpanContext, attributes: Any = None) -> None:
        if not self._ended and context.is_valid and len(self.links) < 1024:
            self.links.append(context)

    def update_name(self, name: str) -> None:
        self.name = name

    def is_recording(self) -> bool:
        return not self._ended

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self._ended or self.status_code is StatusCode.OK:
            return  # OK is final (the specification's rule)
        if isinstance(status, Status):
            self.status_code, self.status_message = status.status_code, status.description or ""
        else:
            self.status_code, self.status_message = status, description or ""

    def record_exception(
        self, exception: BaseException, attributes: Any = None, timestamp: int | None = None, escaped: bool = False
    ) -> None:
        self.add_event(
            "exception",
            {"exception.type": type(exception).__name__, "exception.message": str(exception), **(attributes or {})},
            timestamp,
        )

    def end(self, end_time: int | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        self.end_ns = end_time or time.time_ns()
        self._on_end(self)


MAX_CHILDREN = 256


class Child(trace.Span):
    """A leaf span: a child of a recorded span that starts no span of its own beneath it.

    Most of a call's spans are leaves (authentication, admission, validation, the coalescing wait, a
    RocksDB read). A leaf makes no SpanContext unless asked for one and takes no place in the export
    queue: it ends into its parent's `children` and is written with it, sharing its parent's trace id
    and flags in the encoding. A leaf that ends after its parent did is exported on its own."""

    __slots__ = ("_ended", "_rid", "attributes", "end_ns", "events", "name", "parent", "start_ns",
                 "status_code", "status_message")  # fmt: skip
    kind = SpanKind.INTERNAL
    links: tuple[SpanContext, ...] = ()

    def __init__(self, parent: Span, name: str, attributes: dict[str, Any] | None, start_ns: int) -> None:
        self.parent = parent
        self.name = name
        # The span id's bytes as a little-endian number, so that the encoder packs it with the times.
        self._rid = random.getrandbits(64) or 1
        self.attributes = dict(attributes) if attributes else {}
        self.events: list[tuple[str, dict[str, Any], int]] = []
        self.start_ns = start_ns
        self.end_ns = 0
        self.status_code = StatusCode.UNSET
        self.status_message = ""
        self._ended = False

    @property
    def span_id(self) -> int:
        return int.from_bytes(self._rid.to_bytes(8, "little"), "big")

    @property
    def parent_id(self) -> int:
        return int(self.parent._ctx.span_id)

    @property
    def _ctx(self) -> SpanContext:
        return self.get_span_context()

    def get_span_context(self) -> SpanContext:
        ctx = self.parent._ctx
        return SpanContext(ctx.trace_id, self.span_id, False, ctx.trace_flags, ctx.trace_state)

    set_attributes = Span.set_attributes
    set_attribute = Span.set_attribute
    add_event = Span.add_event
    update_name = Span.update_name
    is_recording = Span.is_recording
    set_status = Span.set_status
    record_exception = Span.record_exception

    def add_link(self, context: SpanContext, attributes: Any = None) -> None:
        pass  # a leaf has no links

    def end(self, end_time: int | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        self.end_ns = end_time or time.time_ns()
        parent = self.parent
        if not parent._ended:
            if len(parent.children) < MAX_CHILDREN:
                parent.children.append(self)
        else:
            parent._on_end(self)  # type: ignore[arg-type]  # the queue takes leaves too


def flatten(spans: Sequence[Span | Child]) -> list[Span | Child]:
    """Each span preceded by the leaves kept with it, in the order they ended."""
    out: list[Span | Child] = []
    for s in spans:
        if type(s) is Span:
            out.extend(s.children)
        out.append(s)
    return out


class Tracer(trace.Tracer):
    """Starts spans: sampled ones recorded, the others non-recording spans that carry the trace on."""

    def __init__(self, decide: Callable[[SpanContext, int, Any], bool], on_end: Callable[[Span], None]) -> None:
        self._decide = decide  # (parent, trace id, attributes) -> sampled
        self._on_end = on_end

    def start_root(self, name: str, kind: SpanKind, attributes: dict[str, Any]) -> trace.Span:
        """start_span for a span with no parent (a call that carried no trace), without the context lookup."""
        trace_id = random.getrandbits(128) or 1
        span_id = random.getrandbits(64) or 1
        if not self._decide(INVALID_SPAN_CONTEXT, trace_id, attributes):
            return NonRecordingSpan(SpanContext(trace_id, span_id, False, UNSAMPLED, None))
        ctx = SpanContext(trace_id, span_id, False, SAMPLED, None)
        return Span(name, ctx, 0, kind, attributes, [], time.time_ns(), self._on_end)

    def start_span(
        self,
        name: str,
        context: Any = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Any = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        parent = trace.get_current_span(context).get_span_context()
        if parent.is_valid:
            trace_id, state, parent_id = parent.trace_id, parent.trace_state, parent.span_id
        else:
            trace_id, state, parent_id = random.getrandbits(128) or 1, None, 0
        span_id = random.getrandbits(64) or 1
        if not self._decide(parent, trace_id, attributes):
            return NonRecordingSpan(SpanContext(trace_id, span_id, False, UNSAMPLED, state))
        return Span(
            name,
            SpanContext(trace_id, span_id, False, SAMPLED, state),
            parent_id,
            kind,
            attributes,
            [link.context for link in links or () if link.context.is_valid],
            start_time or time.time_ns(),
            self._on_end,
        )

    @contextlib.contextmanager
    def start_as_current_span(  # type: ignore[override]  # the API declares its own context-manager type
        self,
        name: str,
        context: Any = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Any = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[trace.Span]:
        span = self.start_span(name, context, kind, attributes, links, start_time)
        with trace.use_span(
            span,
            end_on_exit=end_on_exit,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        ) as current:
            yield current


class TracerProvider(trace.TracerProvider):
    """One tracer for the process (the instrumentation scope is the suite itself)."""

    def __init__(self, tracer: Tracer, processor: BatchProcessor) -> None:
        self.tracer = tracer
        self.processor = processor

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return self.tracer

    def shutdown(self) -> None:
        self.processor.shutdown()


# -- the queue and its thread ---------------------------------------------------------------------------


class BatchProcessor:
    """Ended spans wait in a bounded queue; one thread exports them in batches.

    The span's thread only appends to the queue: no lock, no event to set. A lock or an event shared
    with the export thread would make the event loop's thread wait, now and then, for the export thread
    to hand back the interpreter lock (milliseconds). The export thread looks at the queue every
    POLL_S instead. The count of queued spans is `added - removed`, each written by one side."""

    POLL_S = 0.05

    def __init__(self, exporter: Exporter, *, max_queued: int, batch: int, delay_s: float = 1.0) -> None:
        self.exporter = exporter
        self.max_queued = max_queued
        self.batch = batch
        self.delay_s = delay_s
        self.queue: deque[tuple[Any, int]] = deque()  # (what exporter.prepare() made of a span, spans in it)
        self.added = 0  # spans queued, leaves included (written by the spans' threads)
        self.removed = 0  # spans taken for export (written by the export thread)
        self.dropped = 0
        self._wake = threading.Event()  # flush and shutdown only
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="span-export", daemon=True)
        self._thread.start()

    @property
    def queued(self) -> int:
        return self.added - self.removed

    def on_end(self, span: Span | Child) -> None:
        """Called on the span's thread: constant time, never blocks."""
        weight = 1 + len(span.children) if type(span) is Span else 1
        if self.added - self.removed + weight > self.max_queued:
            self.dropped += weight
            return
        self.queue.append((self.exporter.prepare(span), weight))
        self.added += weight

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop:
            self._wake.wait(self.POLL_S)
            now = time.monotonic()
            if self._wake.is_set() or self.queued >= self.batch or now - last >= self.delay_s:
                self._wake.clear()
                last = now
                self._drain()
        self._drain()

    def _drain(self) -> None:
        while self.queue:
            batch: list[Any] = []
            weight = 0
            while self.queue and weight < self.batch:
                item, n = self.queue.popleft()
                batch.append(item)
                weight += n
            self.removed += weight
            self.exporter.export(batch, weight)
            time.sleep(0)  # let the event loop's thread have the GIL between batches

    def flush(self, timeout_s: float = 5.0) -> None:
        """Wait (boundedly) until what is queued has been handed to the exporter."""
        self._wake.set()
        deadline = time.monotonic() + timeout_s
        while self.queue and time.monotonic() < deadline:
            time.sleep(0.01)

    def shutdown(self) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join(timeout=self.exporter.timeout_s + 1)


# -- exporters ------------------------------------------------------------------------------------------


# OTLP is written straight to protobuf bytes (field numbers from opentelemetry-proto's trace.proto and
# common.proto): building the generated messages cost about three times as much per span. What repeats
# from span to span is encoded once and kept: key-value pairs of the attributes whose values repeat
# (rpc.system = grpc, method names, tenants, small counts), span names with their kinds, the trace id and
# parent id shared by a span's leaves.
_KV_CACHE: dict[tuple[str, Any, type, int], bytes] = {}
# Attributes whose values rarely repeat: encoding them each time is cheaper than churning the cache.
_UNIQUE_KEYS = frozenset({"allsource.storage_call", "allsource.stream_id", "allsource.request_id", "exception.message",
                          "allsource.principal"})  # fmt: skip
_NAME_CACHE: dict[tuple[str, SpanKind], bytes] = {}
_PACK_IDS = struct.Struct(">BBQQBBQ").pack  # trace id (field 1, 16 bytes), span id (field 2, 8 bytes)
_PACK_PARENT = struct.Struct(">BBQ").pack  # parent span id (field 4)
_PACK_TIMES = struct.Struct("<BQBQ").pack  # start and end (fields 7 and 8, fixed64)
_PACK_LEAF = struct.Struct("<BBQBQBQ").pack  # a leaf's span id (Child._rid) with its start and end
_FLAGS = {flags: b"\x85\x01" + struct.pack("<I", 0x100 | flags) for flags in (0, 1)}  # field 16, fixed32
_MASK64 = 0xFFFFFFFFFFFFFFFF


def _ld(tag: int, data: bytes) -> bytes:
    n = len(data)
    return bytes((tag, n)) + data if n < 0x80 else bytes((tag,)) + varint(n) + data


def _any(value: Any) -> bytes:
    """An AnyValue."""
    if isinstance(value, str):
        return _ld(0x0A, value.encode())
    if isinstance(value, bool):
        return b"\x10" + (b"\x01" if value else b"\x00")
    if isinstance(value, int):
        return b"\x18" + varint(value & _MASK64)  # int64, two's complement
    if isinstance(value, float):
        return b"\x21" + struct.pack("<d", value)
    if isinstance(value, bytes):
        return _ld(0x3A, value)
    if isinstance(value, list | tuple):
        return _ld(0x2A, b"".join(_ld(0x0A, _any(v)) for v in value))  # ArrayValue.values
    return _ld(0x0A, str(value).encode())


def _kv(tag: int, key: str, value: Any) -> bytes:
    """One KeyValue as field `tag` of its message."""
    if key in _UNIQUE_KEYS or not isinstance(value, str | int):
        return _ld(tag, _ld(0x0A, key.encode()) + _ld(0x12, _any(value)))
    cache_key = (key, value, type(value), tag)
    cached = _KV_CACHE.get(cache_key)
    if cached is None:
        if len(_KV_CACHE) >= 8192:
            _KV_CACHE.clear()
        cached = _KV_CACHE[cache_key] = _ld(tag, _ld(0x0A, key.encode()) + _ld(0x12, _any(value)))
    return cached


def _name(name: str, kind: SpanKind) -> bytes:
    cached = _NAME_CACHE.get((name, kind))
    if cached is None:
        if len(_NAME_CACHE) >= 1024:
            _NAME_CACHE.clear()
        # the API's INTERNAL is 0, OTLP's is 1
        cached = _NAME_CACHE[(name, kind)] = _ld(0x2A, name.encode()) + bytes((0x30, kind.value + 1))
    return cached


def _attributes(attributes: dict[str, Any]) -> bytes:
    """Span attributes (field 9): repeating pairs from the cache, looked up inline (the common case)."""
    out = b""
    get = _KV_CACHE.get
    for k, v in attributes.items():
        t = type(v)
        encoded = get((k, v, t, 0x4A)) if t is str or t is int else None
        out += encoded if encoded is not None else _kv(0x4A, k, v)  # _kv fills the cache
    return out


def _tail(s: Span | Child) -> bytes:
    """Attributes, events, links and status: what follows a span's name and times."""
    return (_attributes(s.attributes) if s.attributes else b"") + _rest(s)


def _rest(s: Span | Child) -> bytes:
    """Events, links and status."""
    out = b""
    if s.events:
        for name, attributes, at in s.events:
            body = b"\x09" + struct.pack("<Q", at) + _ld(0x12, name.encode())
            out += _ld(0x5A, body + b"".join(_kv(0x1A, k, v) for k, v in attributes.items()))
    for link in s.links:
        out += _ld(0x6A, _PACK_IDS(0x0A, 0x10, link.trace_id >> 64, link.trace_id & _MASK64, 0x12, 8, link.span_id))
    if s.status_code is not StatusCode.UNSET:
        out += _ld(0x7A, _ld(0x12, s.status_message.encode()) + bytes((0x18, s.status_code.value)))
    return out


def _lead(ctx: SpanContext) -> tuple[bytes, bytes]:
    """The trace id field, and the trace state field (or nothing), of a span context."""
    trace_id = ctx.trace_id
    state = _ld(0x1A, ctx.trace_state.to_header().encode()) if ctx.trace_state else b""
    return struct.pack(">BBQQ", 0x0A, 0x10, trace_id >> 64, trace_id & _MASK64), state


def _leaf(c: Child, lead: bytes, flags: bytes) -> bytes:
    """A leaf as ScopeSpans.spans; `lead` is its parent's trace id, trace state and (as parent) span id."""
    body = lead + _name(c.name, SpanKind.INTERNAL) + _PACK_LEAF(0x12, 8, c._rid, 0x39, c.start_ns, 0x41, c.end_ns)
    if c.attributes:
        body += _attributes(c.attributes)
    if c.events or c.status_code is not StatusCode.UNSET:
        body += _rest(c)
    return _ld(0x12, body + flags)


def _span(s: Span) -> list[bytes]:
    """The span and its leaves, each as ScopeSpans.spans (field 2)."""
    ctx = s._ctx
    trace_field, state = _lead(ctx)
    flags = _FLAGS[int(ctx.trace_flags) & 1]
    out: list[bytes] = []
    if s.children:
        lead = trace_field + state + _PACK_PARENT(0x22, 8, ctx.span_id)
        out.extend(_leaf(c, lead, flags) for c in s.children)
    head = trace_field + _PACK_PARENT(0x12, 8, ctx.span_id) + state
    if s.parent_id:
        head += _PACK_PARENT(0x22, 8, s.parent_id)
    times = _PACK_TIMES(0x39, s.start_ns, 0x41, s.end_ns)
    out.append(_ld(0x12, head + _name(s.name, s.kind) + times + _tail(s) + flags))
    return out


def _orphan(c: Child) -> bytes:
    """A leaf that ended after its parent: exported on its own."""
    ctx = c.parent._ctx
    trace_field, state = _lead(ctx)
    return _leaf(c, trace_field + state + _PACK_PARENT(0x22, 8, ctx.span_id), _FLAGS[int(ctx.trace_flags) & 1])


def otlp_span(s: Span | Child) -> bytes:
    """A span and its leaves as ScopeSpans.spans fields."""
    return b"".join(_span(s)) if type(s) is Span else _orphan(s)  # type: ignore[arg-type]


def otlp_request(spans: Sequence[Span | Child | bytes], resource: dict[str, Any], scope: tuple[str, str]) -> bytes:
    """An ExportTraceServiceRequest carrying the spans (and their leaves), or their otlp_span encodings,
    serialized."""
    resource_msg = _ld(0x0A, b"".join(_kv(0x0A, k, v) for k, v in resource.items()))
    scope_msg = _ld(0x0A, _ld(0x0A, scope[0].encode()) + _ld(0x12, scope[1].encode()))
    encoded = b"".join(s if type(s) is bytes else otlp_span(s) for s in spans)  # type: ignore[arg-type]
    return _ld(0x0A, resource_msg + _ld(0x12, scope_msg + encoded))


class Exporter(abc.ABC):
    """Sends batches of spans somewhere; counts what was accepted and what was not."""

    def __init__(self, resource: dict[str, Any], scope: tuple[str, str], timeout_s: float) -> None:
        self.resource = resource
        self.scope = scope
        self.timeout_s = timeout_s
        self.exported = 0
        self.failed = 0
        self._logged = 0.0

    def prepare(self, span: Span | Child) -> Any:
        """What the queue keeps of an ended span until its batch is sent: the span itself, or (OTLP) its
        encoding, made at once on the span's thread. Encoded, a span's objects die with the call instead
        of surviving in the queue into the garbage collector's older generations, and the export thread
        has little left to do while holding the interpreter lock."""
        return span

    def export(self, spans: list[Any], count: int = 0) -> None:
        """Send one batch of prepared spans (`count` spans, leaves included)."""
        count = count or len(spans)
        try:
            self.send(spans)
        except Exception as exc:  # a collector's failure must never take the export thread down
            self.failed += count
            now = time.monotonic()
            if now - self._logged >= 60:
                self._logged = now
                log.warning("spans could not be exported", extra={"spans": len(spans), "detail": repr(exc)[:300]})
        else:
            self.exported += count

    @abc.abstractmethod
    def send(self, spans: list[Any]) -> None:
        """Deliver one batch of prepared spans; raise if it was not accepted."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the exporter holds."""


class OtlpGrpcExporter(Exporter):
    """OTLP over gRPC (a collector's port 4317)."""

    def __init__(self, endpoint: str, **kw: Any) -> None:
        super().__init__(**kw)
        import grpc

        self._channel = grpc.insecure_channel(endpoint)
        self._export = self._channel.unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            request_serializer=None,
            response_deserializer=None,
        )

    def prepare(self, span: Span | Child) -> bytes:
        return otlp_span(span)

    def send(self, spans: list[Any]) -> None:
        self._export(otlp_request(spans, self.resource, self.scope), timeout=self.timeout_s)

    def close(self) -> None:
        self._channel.close()


class OtlpHttpExporter(Exporter):
    """OTLP over HTTP with protobuf bodies (a collector's port 4318, /v1/traces)."""

    def __init__(self, url: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.url = url

    def prepare(self, span: Span | Child) -> bytes:
        return otlp_span(span)

    def send(self, spans: list[Any]) -> None:
        body = otlp_request(spans, self.resource, self.scope)
        request = urllib.request.Request(
            self.url, data=body, headers={"Content-Type": "application/x-protobuf"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=self.timeout_s) as reply:
            reply.read()


_ZIPKIN_KINDS = {SpanKind.SERVER: "SERVER", SpanKind.CLIENT: "CLIENT", SpanKind.PRODUCER: "PRODUCER",
                 SpanKind.CONSUMER: "CONSUMER"}  # fmt: skip


def zipkin_json(spans: Sequence[Span | Child], service: str) -> bytes:
    """Zipkin v2 JSON for the spans and their leaves (links have no Zipkin equivalent and become tags)."""
    out = []
    for s in flatten(spans):
        ctx = s._ctx
        entry: dict[str, Any] = {
            "traceId": f"{ctx.trace_id:032x}",
            "id": f"{ctx.span_id:016x}",
            "name": s.name,
            "timestamp": s.start_ns // 1000,
            "duration": max(1, (s.end_ns - s.start_ns) // 1000),
            "localEndpoint": {"serviceName": service},
            "tags": {k: str(v) for k, v in s.attributes.items()},
        }
        if s.parent_id:
            entry["parentId"] = f"{s.parent_id:016x}"
        if s.kind in _ZIPKIN_KINDS:
            entry["kind"] = _ZIPKIN_KINDS[s.kind]
        if s.status_code is StatusCode.ERROR:
            entry["tags"]["error"] = s.status_message or "true"
        for i, link in enumerate(s.links):
            entry["tags"][f"link.{i}"] = f"{link.trace_id:032x}/{link.span_id:016x}"
        if s.events:
            entry["annotations"] = [{"timestamp": at // 1000, "value": name} for name, _, at in s.events]
        out.append(entry)
    return orjson.dumps(out)


class ZipkinExporter(Exporter):
    """Zipkin v2 JSON over HTTP (/api/v2/spans)."""

    def __init__(self, url: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.url = url

    def send(self, spans: list[Span | Child]) -> None:
        body = zipkin_json(spans, str(self.resource.get("service.name", "")))
        request = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout_s) as reply:
            reply.read()


class ConsoleExporter(Exporter):
    """One JSON line per span on stdout (Zipkin's shape, readable)."""

    def send(self, spans: list[Span | Child]) -> None:
        for entry in orjson.loads(zipkin_json(spans, str(self.resource.get("service.name", "")))):
            sys.stdout.write(orjson.dumps(entry).decode() + "\n")
        sys.stdout.flush()


class MemoryExporter(Exporter):
    """Keeps exported spans in a list (tests and benchmarks)."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.spans: list[Span | Child] = []

    def send(self, spans: list[Span | Child]) -> None:
        self.spans.extend(flatten(spans))
