"""A lean OpenTelemetry tracer: the API's Span and Tracer, recorded and exported at a few microseconds a span.

Why not the OpenTelemetry SDK: measured on this machine, an SDK span costs about 50 us to create and
end and its OTLP exporter about 80 us more to encode it (attribute cleaning, bounded containers, a
generic encoder), so recording every call's handful of spans cost more than half of a small append's
throughput. These spans are plain slotted objects; the OTLP request is written as protobuf bytes in one
pass on the export thread. They implement the OpenTelemetry *API*
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
        self._ended = False
        self._on_end = on_end

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


class Tracer(trace.Tracer):
    """Starts spans: sampled ones recorded, the others non-recording spans that carry the trace on."""

    def __init__(self, decide: Callable[[SpanContext, int, Any], bool], on_end: Callable[[Span], None]) -> None:
        self._decide = decide  # (parent, trace id, attributes) -> sampled
        self._on_end = on_end

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
    """Ended spans wait in a bounded queue; one thread exports them in batches."""

    def __init__(self, exporter: Exporter, *, max_queued: int, batch: int, delay_s: float = 1.0) -> None:
        self.exporter = exporter
        self.max_queued = max_queued
        self.batch = batch
        self.delay_s = delay_s
        self.queue: deque[Span] = deque()
        self.dropped = 0
        self._wake = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="span-export", daemon=True)
        self._thread.start()

    def on_end(self, span: Span) -> None:
        """Called on the span's thread: constant time, never blocks."""
        if len(self.queue) >= self.max_queued:
            self.dropped += 1
            return
        self.queue.append(span)
        if len(self.queue) >= self.batch:
            self._wake.set()

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(self.delay_s)
            self._wake.clear()
            self._drain()
        self._drain()

    def _drain(self) -> None:
        while self.queue:
            batch = [self.queue.popleft() for _ in range(min(self.batch, len(self.queue)))]
            self.exporter.export(batch)
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
# common.proto): building the generated messages cost about three times as much per span. Key-value
# pairs repeat from span to span (rpc.system = grpc, the method names), so their encodings are kept.
_KV_CACHE: dict[tuple[str, Any, type], bytes] = {}


def _ld(tag: int, data: bytes) -> bytes:
    return bytes((tag,)) + varint(len(data)) + data


def _any(value: Any) -> bytes:
    """An AnyValue."""
    if isinstance(value, bool):
        return b"\x10" + (b"\x01" if value else b"\x00")
    if isinstance(value, int):
        return b"\x18" + varint(value & 0xFFFFFFFFFFFFFFFF)  # int64, two's complement
    if isinstance(value, float):
        return b"\x21" + struct.pack("<d", value)
    if isinstance(value, bytes):
        return _ld(0x3A, value)
    if isinstance(value, list | tuple):
        return _ld(0x2A, b"".join(_ld(0x0A, _any(v)) for v in value))  # ArrayValue.values
    return _ld(0x0A, str(value).encode())


def _kv(tag: int, key: str, value: Any) -> bytes:
    """One KeyValue as field `tag` of its message."""
    cache_key = (key, value, type(value)) if isinstance(value, str | bool | int) else None
    if cache_key is not None:
        cached = _KV_CACHE.get(cache_key)
        if cached is not None and cached[0] == tag:
            return cached
    encoded = _ld(tag, _ld(0x0A, key.encode()) + _ld(0x12, _any(value)))
    if cache_key is not None:
        if len(_KV_CACHE) > 4096:
            _KV_CACHE.clear()
        _KV_CACHE[cache_key] = encoded
    return encoded


def _span(s: Span) -> bytes:
    ctx = s._ctx
    out = [
        b"\x0a\x10" + ctx.trace_id.to_bytes(16, "big"),
        b"\x12\x08" + ctx.span_id.to_bytes(8, "big"),
    ]
    if ctx.trace_state:
        out.append(_ld(0x1A, ctx.trace_state.to_header().encode()))
    if s.parent_id:
        out.append(b"\x22\x08" + s.parent_id.to_bytes(8, "big"))
    out.append(_ld(0x2A, s.name.encode()))
    out.append(bytes((0x30, s.kind.value + 1)))  # the API's INTERNAL is 0, OTLP's is 1
    out.append(b"\x39" + struct.pack("<Q", s.start_ns) + b"\x41" + struct.pack("<Q", s.end_ns))
    out.extend(_kv(0x4A, k, v) for k, v in s.attributes.items())
    for name, attributes, at in s.events:
        body = b"\x09" + struct.pack("<Q", at) + _ld(0x12, name.encode())
        out.append(_ld(0x5A, body + b"".join(_kv(0x1A, k, v) for k, v in attributes.items())))
    for link in s.links:
        out.append(
            _ld(0x6A, b"\x0a\x10" + link.trace_id.to_bytes(16, "big") + b"\x12\x08" + link.span_id.to_bytes(8, "big"))
        )
    if s.status_code is not StatusCode.UNSET:
        out.append(_ld(0x7A, _ld(0x12, s.status_message.encode()) + bytes((0x18, s.status_code.value))))
    out.append(b"\x85\x01" + struct.pack("<I", 0x100 | int(ctx.trace_flags)))  # flags (field 16, fixed32)
    return _ld(0x12, b"".join(out))  # ScopeSpans.spans


def otlp_request(spans: Sequence[Span], resource: dict[str, Any], scope: tuple[str, str]) -> bytes:
    """An ExportTraceServiceRequest carrying the spans, serialized. Runs on the export thread, which
    gives up the GIL every few spans: the event loop's thread must never wait long for it."""
    resource_msg = _ld(0x0A, b"".join(_kv(0x0A, k, v) for k, v in resource.items()))
    scope_msg = _ld(0x0A, _ld(0x0A, scope[0].encode()) + _ld(0x12, scope[1].encode()))
    encoded = []
    for i, s in enumerate(spans):
        encoded.append(_span(s))
        if i % 16 == 15:
            time.sleep(0)
    scope_spans = _ld(0x12, scope_msg + b"".join(encoded))
    return _ld(0x0A, resource_msg + scope_spans)


class Exporter(abc.ABC):
    """Sends batches of spans somewhere; counts what was accepted and what was not."""

    def __init__(self, resource: dict[str, Any], scope: tuple[str, str], timeout_s: float) -> None:
        self.resource = resource
        self.scope = scope
        self.timeout_s = timeout_s
        self.exported = 0
        self.failed = 0
        self._logged = 0.0

    def export(self, spans: list[Span]) -> None:
        try:
            self.send(spans)
        except Exception as exc:  # a collector's failure must never take the export thread down
            self.failed += len(spans)
            now = time.monotonic()
            if now - self._logged >= 60:
                self._logged = now
                log.warning("spans could not be exported", extra={"spans": len(spans), "detail": repr(exc)[:300]})
        else:
            self.exported += len(spans)

    @abc.abstractmethod
    def send(self, spans: list[Span]) -> None:
        """Deliver one batch; raise if it was not accepted."""

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

    def send(self, spans: list[Span]) -> None:
        self._export(otlp_request(spans, self.resource, self.scope), timeout=self.timeout_s)

    def close(self) -> None:
        self._channel.close()


class OtlpHttpExporter(Exporter):
    """OTLP over HTTP with protobuf bodies (a collector's port 4318, /v1/traces)."""

    def __init__(self, url: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.url = url

    def send(self, spans: list[Span]) -> None:
        body = otlp_request(spans, self.resource, self.scope)
        request = urllib.request.Request(
            self.url, data=body, headers={"Content-Type": "application/x-protobuf"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=self.timeout_s) as reply:
            reply.read()


_ZIPKIN_KINDS = {SpanKind.SERVER: "SERVER", SpanKind.CLIENT: "CLIENT", SpanKind.PRODUCER: "PRODUCER",
                 SpanKind.CONSUMER: "CONSUMER"}  # fmt: skip


def zipkin_json(spans: Sequence[Span], service: str) -> bytes:
    """Zipkin v2 JSON for the spans (links have no Zipkin equivalent and become tags)."""
    out = []
    for s in spans:
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

    def send(self, spans: list[Span]) -> None:
        body = zipkin_json(spans, str(self.resource.get("service.name", "")))
        request = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout_s) as reply:
            reply.read()


class ConsoleExporter(Exporter):
    """One JSON line per span on stdout (Zipkin's shape, readable)."""

    def send(self, spans: list[Span]) -> None:
        for entry in orjson.loads(zipkin_json(spans, str(self.resource.get("service.name", "")))):
            sys.stdout.write(orjson.dumps(entry).decode() + "\n")
        sys.stdout.flush()


class MemoryExporter(Exporter):
    """Keeps exported spans in a list (tests and benchmarks)."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.spans: list[Span] = []

    def send(self, spans: list[Span]) -> None:
        self.spans.extend(spans)
