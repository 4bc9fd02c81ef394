"""OpenTelemetry tracing: a span for every RPC and every call between services, at a few percent cost.

Where spans come from:
- **Server spans** are made by the call chain's first stage (shared.stages.telemetry) with the
  OpenTelemetry API, not by opentelemetry-instrumentation-grpc's aio server interceptor: measured here,
  that interceptor costs about a quarter of a small call's throughput even when nothing is sampled (a
  coroutine pipeline and a handler object per call), where the stage costs a few microseconds.
- **Client spans** for calls to storage are made by shared.storage.client around each call (the one
  place every storage call passes through); the admin service's calls to the other processes'
  ControlService and health use opentelemetry-instrumentation-grpc's aio client interceptors, which
  serve there: those calls are rare.
- **Custom spans** (`span()` below) where time goes: authentication, admission, validation, the
  coalescing wait, the group commit, RocksDB reads, the entity-state fold, subscription delivery.
  A custom span is made only inside a recorded span, so an unsampled call pays one attribute read.

Spans are recorded and exported by shared.telemetry.spans, a lean implementation of the OpenTelemetry
API (the SDK's spans and OTLP encoder cost several times more per span; that module says how much).

Sampling (`Sampler`): a call continues its caller's decision (parent-based); a new trace is sampled at
`tracing.sample_ratio` (reloadable). Whatever the ratio, a call that ends with a server error or is slower
than `tracing.keep_slower_than_ms` is kept: its span is recorded after the fact, with its real start time
(its parent may be missing from the trace when that was not sampled). Spans made that way carry
`allsource.sampled_by` (error, slow, or links: a shared storage call is recorded when any call it
carries was).

Export (`tracing.exporter`): OTLP over gRPC or HTTP, Zipkin, the console, or none (context is still
propagated and ids still reach the logs). A bounded queue: a dead or slow collector costs at most
`tracing.max_queued_spans` spans of memory, drops (and counts) the rest, and never blocks a call.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)

from shared.config.settings import TracingSettings
from shared.core.version import VERSION
from shared.telemetry import spans

log = logging.getLogger("allsource.tracing")
SAMPLED_BY = "allsource.sampled_by"
# gRPC codes that mark a server span as failed (OpenTelemetry's RPC semantic conventions); the others are
# the caller's mistakes and leave the span's status unset.
SERVER_ERRORS = frozenset({"UNKNOWN", "DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS"})
CODES = {
    "OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4, "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8, "FAILED_PRECONDITION": 9,
    "ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12, "INTERNAL": 13, "UNAVAILABLE": 14,
    "DATA_LOSS": 15, "UNAUTHENTICATED": 16,
}  # fmt: skip
_TRACEPARENT = "traceparent"
_TRACESTATE = "tracestate"
# W3C Trace Context: tracestate is propagated up to 512 characters; a longer one is dropped.
MAX_TRACESTATE_CHARS = 512


class _State:
    """This process's tracing: one service per process."""

    tracer: Any = None  # spans are recorded (an exporter is set)
    provider: Any = None
    sampler: Any = None
    processor: Any = None
    exporter: Any = None
    keep_slower_than_s = 1.0
    keep_errors = True


STATE = _State()


# -- set-up -------------------------------------------------------------------------------------------


def setup(service: str, settings: TracingSettings) -> None:
    """Install this process's tracer provider and exporter (once)."""
    configure(settings)
    if not settings.enabled or settings.exporter == "none" or STATE.provider is not None:
        return
    resource = {
        "service.name": f"allsource-{service}",
        "service.namespace": "allsource",
        "service.version": VERSION,
        "service.instance.id": settings.instance_id or str(uuid.uuid4()),
    }
    install(_exporter(settings, resource), settings)


def install(exporter: spans.Exporter, settings: TracingSettings) -> spans.TracerProvider:
    """Record spans into `exporter` (through a bounded batch processor) from now on."""
    sampler = Sampler(settings.sample_ratio)
    processor = spans.BatchProcessor(exporter, max_queued=settings.max_queued_spans, batch=settings.export_batch_spans)
    provider = spans.TracerProvider(spans.Tracer(sampler.decide, processor.on_end), processor)
    trace.set_tracer_provider(provider)
    STATE.provider, STATE.sampler, STATE.processor, STATE.exporter = provider, sampler, processor, exporter
    STATE.tracer = provider.tracer
    return provider


def uninstall() -> None:
    """Stop recording spans (tests)."""
    if STATE.provider is not None:
        STATE.provider.shutdown()
    STATE.provider = STATE.sampler = STATE.processor = STATE.exporter = STATE.tracer = None


def configure(settings: TracingSettings) -> None:
    """Apply the reloadable settings (sample ratio, what is kept)."""
    STATE.keep_slower_than_s = settings.keep_slower_than_ms / 1000 if settings.keep_slower_than_ms else float("inf")
    STATE.keep_errors = settings.keep_errors
    if STATE.sampler is not None:
        STATE.sampler.set_ratio(settings.sample_ratio)


def _exporter(settings: TracingSettings, resource: dict[str, Any]) -> spans.Exporter:
    common: dict[str, Any] = {
        "resource": resource,
        "scope": ("allsource", VERSION),
        "timeout_s": settings.export_timeout_s,
    }
    if settings.exporter == "console":
        return spans.ConsoleExporter(**common)
    if settings.exporter == "otlp_http":
        return spans.OtlpHttpExporter(settings.otlp_http_endpoint, **common)
    if settings.exporter == "zipkin":
        return spans.ZipkinExporter(settings.zipkin_endpoint, **common)
    return spans.OtlpGrpcExporter(settings.otlp_endpoint, **common)


def shutdown() -> None:
    """Flush and stop span export (bounded by the export timeout)."""
    if STATE.provider is not None:
        STATE.provider.shutdown()


# -- sampling -------------------------------------------------------------------------------------------


class Sampler:
    """Parent-based ratio sampling; spans kept on purpose (SAMPLED_BY) are always sampled.

    A new trace is sampled when the low 64 bits of its id fall below ratio x 2^64 (as the W3C random
    trace id flag and OpenTelemetry's TraceIdRatioBased sampler do), so every process agrees."""

    def __init__(self, ratio: float) -> None:
        self.set_ratio(ratio)

    def set_ratio(self, ratio: float) -> None:
        self.bound = round(ratio * (1 << 64))

    def decide(self, parent: SpanContext, trace_id: int, attributes: Any) -> bool:
        if attributes and SAMPLED_BY in attributes:
            return True
        if parent.is_valid:
            return bool(parent.trace_flags.sampled)
        return (trace_id & 0xFFFFFFFFFFFFFFFF) < self.bound


def counters() -> tuple[int, int, int]:
    """Spans exported, failed to export, and dropped because the export queue was full."""
    if STATE.exporter is None:
        return 0, 0, 0
    return STATE.exporter.exported, STATE.exporter.failed, STATE.processor.dropped


# -- context --------------------------------------------------------------------------------------------


def parse_traceparent(metadata: Sequence[tuple[str, Any]]) -> SpanContext | None:
    """The caller's span context from W3C traceparent / tracestate metadata, if it sent a valid one."""
    parent = state = None
    for key, value in metadata:
        if key == _TRACEPARENT:
            parent = value
        elif key == _TRACESTATE:
            state = value
    if not isinstance(parent, str) or len(parent) < 55:
        return None
    version, trace_hex, span_hex, flags_hex = parent[:2], parent[3:35], parent[36:52], parent[53:55]
    if version == "ff" or parent[2] != "-" or parent[35] != "-" or parent[52] != "-":
        return None
    if version == "00" and len(parent) != 55:
        return None
    try:
        trace_id, span_id, flags = int(trace_hex, 16), int(span_hex, 16), int(flags_hex, 16)
    except ValueError:
        return None
    if not trace_id or not span_id:
        return None
    trace_state = None
    if isinstance(state, str) and state and len(state) <= MAX_TRACESTATE_CHARS:
        try:
            trace_state = TraceState.from_header([state])
        except Exception:
            trace_state = None
    return SpanContext(trace_id, span_id, True, TraceFlags(flags & 1), trace_state)


def outgoing_metadata() -> list[tuple[str, str]]:
    """traceparent / tracestate for the current span, to put on an outgoing call."""
    return span_metadata(trace.get_current_span().get_span_context())


def span_metadata(ctx: SpanContext) -> list[tuple[str, str]]:
    """traceparent / tracestate naming a span as the parent of a call."""
    if not ctx.is_valid:
        return []
    out = [(_TRACEPARENT, f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags) & 1:02x}")]
    if ctx.trace_state:
        out.append((_TRACESTATE, ctx.trace_state.to_header()))
    return out


def attach(span: Span) -> None:
    """Make `span` current for the rest of the task (each RPC runs in its own task: it dies with it)."""
    otel_context.attach(trace.set_span_in_context(span))


def root_context() -> SpanContext:
    """A new unsampled trace, for work that starts one without recording it."""
    return SpanContext(random.getrandbits(128) or 1, random.getrandbits(64) or 1, False, TraceFlags(0))


# -- spans ----------------------------------------------------------------------------------------------


def start_server_span(
    name: str, parent: SpanContext | None, attributes: dict[str, Any], kind: SpanKind = SpanKind.SERVER
) -> Span:
    """The span of an RPC being served: recorded when sampled, otherwise a non-recording span that still
    carries the trace onwards."""
    tracer = STATE.tracer
    if parent is not None:
        if tracer is None or not parent.trace_flags.sampled:
            return NonRecordingSpan(parent)  # continue the caller's trace (and its decision) as it is
        return tracer.start_span(name, trace.set_span_in_context(NonRecordingSpan(parent)), kind, attributes)
    if tracer is None:
        return NonRecordingSpan(root_context())
    started: Span = tracer.start_root(name, kind, attributes)  # the ratio decides
    return started


def keep(
    name: str,
    parent: SpanContext | None,
    attributes: dict[str, Any],
    why: str,
    started_ns: int,
    kind: SpanKind = SpanKind.SERVER,
) -> Span | None:
    """Record after the fact the span of a call that was not sampled (a server error, a slow call)."""
    tracer = STATE.tracer
    if tracer is None:
        return None
    context = trace.set_span_in_context(NonRecordingSpan(parent)) if parent is not None else otel_context.Context()
    span: Span = tracer.start_span(name, context, kind, {**attributes, SAMPLED_BY: why}, start_time=started_ns)
    return span


def end_rpc(span: Span, code: str, reason: str, message: str) -> None:
    """Status and attributes of an RPC's span as it ends (RPC semantic conventions)."""
    span.set_attribute("rpc.grpc.status_code", CODES.get(code, 2))
    if reason:
        span.set_attribute("allsource.reason", reason)
    if code in SERVER_ERRORS:
        span.set_status(Status(StatusCode.ERROR, f"{code}: {message}"[:256]))


class _NoSpan:
    """What `span()` gives outside a recorded span: nothing to do."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


NO_SPAN = _NoSpan()


def active() -> bool:
    """Whether the current span is being recorded (so that custom spans are worth making)."""
    return STATE.tracer is not None and trace.get_current_span().is_recording()


def span(name: str, attributes: dict[str, Any] | None = None, *, current: bool = False) -> Any:
    """A custom child span of the current one, as a context manager yielding it (or None when the current
    span is not recorded: then it costs nothing). A leaf span (the default) is not made current, which
    saves a context switch; `current` makes it the parent of spans started inside it (calls to storage)."""
    parent = trace.get_current_span()
    if STATE.tracer is None or not parent.is_recording():
        return NO_SPAN
    if current:
        return STATE.tracer.start_as_current_span(name, attributes=attributes, record_exception=False)
    if type(parent) is spans.Span:
        return _Leaf(parent.child(name, attributes))  # kept with its parent (shared.telemetry.spans.Child)
    return _Leaf(STATE.tracer.start_span(name, trace.set_span_in_context(parent), SpanKind.INTERNAL, attributes))


def leaf_of(span: Any, name: str) -> spans.Child | None:
    """A leaf span under a call's own span (Call.span) when that is recorded: what a chain stage uses,
    without looking the current span up. The caller ends it (`close_leaf`)."""
    return span.child(name) if type(span) is spans.Span and not span._ended else None


def close_leaf(leaf: spans.Child, exc: BaseException | None = None) -> None:
    """End a leaf from `leaf_of`, failed with the exception's type if its work raised."""
    if exc is not None:
        leaf.status_code, leaf.status_message = StatusCode.ERROR, type(exc).__name__
    leaf.end()


def leaf(parent: Span, name: str, attributes: dict[str, Any], start_ns: int, end_ns: int) -> None:
    """Record a leaf span under a recorded span after the fact (a wait whose start was noted)."""
    if type(parent) is spans.Span:
        parent.child(name, attributes, start_ns).end(end_ns)
    elif STATE.tracer is not None:
        STATE.tracer.start_span(
            name, trace.set_span_in_context(parent), SpanKind.INTERNAL, attributes, None, start_ns
        ).end(end_ns)


class _Leaf:
    """A span ended when its block ends (failed, with the exception's type, if the block raised)."""

    __slots__ = ("span",)

    def __init__(self, span: Span) -> None:
        self.span = span

    def __enter__(self) -> Span:
        return self.span

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if exc is not None:
            self.span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        self.span.end()


def client_span(method: Any) -> Span:
    """A client span (child of the current one) for a call made with a grpc multi-callable."""
    path = getattr(method, "_method", b"")
    name = path.decode(errors="replace") if isinstance(path, bytes) else str(path)
    service, _, rpc = name[1:].partition("/")
    attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": rpc}
    started: Span = STATE.tracer.start_span(name[1:], None, SpanKind.CLIENT, attributes)
    return started


def client_interceptors() -> list[Any]:
    """opentelemetry-instrumentation-grpc's client interceptors (when spans are recorded), for channels
    whose calls are rare enough that their cost does not matter; they follow the sampling above."""
    if STATE.tracer is None:
        return []
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    return list(aio_client_interceptors(tracer_provider=STATE.provider))


def delivery_span(message: Any) -> Span:
    """A `subscription.deliver` child of the current (recorded) span for one subscription message."""
    kind = message.WhichOneof("content") if hasattr(message, "WhichOneof") else ""
    attributes: dict[str, Any] = {"allsource.message": kind or ""}
    if kind == "events":
        attributes["allsource.events"] = len(message.events.events)
    started: Span = STATE.tracer.start_span("subscription.deliver", None, SpanKind.INTERNAL, attributes)
    return started


def linked_span(name: str, carried: Sequence[SpanContext], attributes: dict[str, Any], kind: SpanKind) -> Span:
    """The span of work done for several calls at once (a shared storage call, a group commit): a new
    trace linked to each carried call's span, recorded when any of them was; otherwise non-recording.
    Work done for one call only is a child of that call's span instead."""
    if len(carried) == 1 and carried[0].is_valid:
        if STATE.tracer is None or not carried[0].trace_flags.sampled:
            return NonRecordingSpan(carried[0])
        parent = trace.set_span_in_context(NonRecordingSpan(carried[0]))
        child: Span = STATE.tracer.start_span(name, parent, kind, attributes)
        return child
    sampled = [ctx for ctx in carried if ctx.trace_flags.sampled]
    if STATE.tracer is None or not sampled:
        return NonRecordingSpan(root_context())
    links = [Link(ctx) for ctx in sampled]
    linked: Span = STATE.tracer.start_span(
        name, otel_context.Context(), kind, {**attributes, SAMPLED_BY: "links"}, links=links
    )
    return linked
