"""A real OTLP trace receiver for tests: a gRPC server implementing
opentelemetry.proto.collector.trace.v1.TraceService on 127.0.0.1, keeping every span it is sent.

    with OtlpReceiver() as receiver:
        start_services(tracing_exporter="otlp", otlp_endpoint=receiver.endpoint)
        ...
        spans = receiver.wait_for(lambda spans: any(s.name == "Append" for s in spans), timeout=10)

Spans are flattened into `Span` records: ids as lowercase hex, attributes as a plain dict, the service
name taken from the resource attribute service.name. `kind` and `status_code` are the OTLP protobuf
numbers (see the KIND_* and STATUS_* constants), which differ from the Python SDK's enum values.

`fail_with(code)` makes Export answer that gRPC status (a collector that refuses or is overloaded) until
`fail_with(None)`; `delay(seconds)` makes it answer late (a slow collector). Spans sent while failing
are counted in `requests` but not kept.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2

# Span.kind (opentelemetry.proto.trace.v1.Span.SpanKind).
KIND_UNSPECIFIED, KIND_INTERNAL, KIND_SERVER, KIND_CLIENT, KIND_PRODUCER, KIND_CONSUMER = range(6)
# Span.status.code (opentelemetry.proto.trace.v1.Status.StatusCode).
STATUS_UNSET, STATUS_OK, STATUS_ERROR = range(3)


@dataclass(frozen=True)
class Span:
    """One received span, flattened."""

    name: str
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_span_id: str  # 16 hex digits, or "" for a root span
    kind: int  # KIND_*
    status_code: int  # STATUS_*
    status_message: str
    attributes: dict[str, Any]
    # (trace_id, span_id) of each linked span, in order; link_attributes[i] belongs to links[i].
    links: list[tuple[str, str]]
    link_attributes: list[dict[str, Any]]
    events: list[tuple[str, dict[str, Any]]]  # (name, attributes), e.g. ("exception", {...})
    service: str  # resource attribute service.name ("" if absent)
    resource: dict[str, Any]
    scope: str  # instrumentation scope name
    start_ns: int
    end_ns: int

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    @property
    def is_root(self) -> bool:
        return not self.parent_span_id

    def __str__(self) -> str:
        parent = self.parent_span_id or "root"
        return f"{self.service}:{self.name} trace={self.trace_id} span={self.span_id} parent={parent}"


def plain(value: common_pb2.AnyValue) -> Any:
    """An OTLP AnyValue as a plain Python value (arrays as lists, key-value lists as dicts)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [plain(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return getattr(value, kind)


def attributes(pairs: Iterable[common_pb2.KeyValue]) -> dict[str, Any]:
    return {kv.key: plain(kv.value) for kv in pairs}


def flatten(request: trace_service_pb2.ExportTraceServiceRequest) -> list[Span]:
    """Every span of an Export request, with its resource and scope."""
    out = []
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for s in scope_spans.spans:
                out.append(
                    Span(
                        name=s.name,
                        trace_id=s.trace_id.hex(),
                        span_id=s.span_id.hex(),
                        parent_span_id=s.parent_span_id.hex(),
                        kind=int(s.kind),
                        status_code=int(s.status.code),
                        status_message=s.status.message,
                        attributes=attributes(s.attributes),
                        links=[(link.trace_id.hex(), link.span_id.hex()) for link in s.links],
                        link_attributes=[attributes(link.attributes) for link in s.links],
                        events=[(e.name, attributes(e.attributes)) for e in s.events],
                        service=str(resource.get("service.name", "")),
                        resource=resource,
                        scope=scope_spans.scope.name,
                        start_ns=s.start_time_unix_nano,
                        end_ns=s.end_time_unix_nano,
                    )
                )
    return out


@dataclass
class _Behaviour:
    code: grpc.StatusCode | None = None
    message: str = ""
    delay_s: float = 0.0


@dataclass
class _State:
    lock: threading.Condition = field(default_factory=threading.Condition)
    spans: list[Span] = field(default_factory=list)
    requests: int = 0
    behaviour: _Behaviour = field(default_factory=_Behaviour)


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, state: _State) -> None:
        self._state = state

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        state = self._state
        with state.lock:
            state.requests += 1
            behaviour = state.behaviour
            state.lock.notify_all()
        if behaviour.delay_s:
            time.sleep(behaviour.delay_s)
        if behaviour.code is not None:
            context.abort(behaviour.code, behaviour.message or f"test collector answers {behaviour.code.name}")
        spans = flatten(request)
        with state.lock:
            state.spans.extend(spans)
            state.lock.notify_all()
        return trace_service_pb2.ExportTraceServiceResponse()


class OtlpReceiver:
    """An OTLP/gRPC trace collector on 127.0.0.1:<free port>, for one test or one module.

    Use as a context manager, or start() / stop(). `endpoint` ("127.0.0.1:PORT") is what a service's
    tracing.otlp_endpoint should be set to.
    """

    def __init__(self, host: str = "127.0.0.1", max_workers: int = 8) -> None:
        self._host = host
        self._max_workers = max_workers
        self._state = _State()
        self._server: grpc.Server | None = None
        self._port = 0

    # --- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> OtlpReceiver:
        if self._server is not None:
            raise RuntimeError("OtlpReceiver already started")
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self._max_workers, thread_name_prefix="otlp-receiver"),
            options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
        )
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(self._state), server)
        self._port = server.add_insecure_port(f"{self._host}:0")
        if not self._port:
            raise RuntimeError(f"OtlpReceiver could not bind {self._host}")
        server.start()
        self._server = server
        return self

    def stop(self, grace: float | None = None) -> None:
        """Stop serving (a collector that went away). Received spans stay readable."""
        if self._server is not None:
            self._server.stop(grace).wait()
            self._server = None

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("OtlpReceiver not started")
        return self._port

    @property
    def endpoint(self) -> str:
        """host:port to export to (tracing.otlp_endpoint)."""
        return f"{self._host}:{self.port}"

    # --- behaviour ----------------------------------------------------------------------------------------

    def fail_with(self, code: grpc.StatusCode | None, message: str = "") -> None:
        """Answer every Export with `code` (e.g. UNAVAILABLE, RESOURCE_EXHAUSTED) until fail_with(None)."""
        with self._state.lock:
            self._state.behaviour = _Behaviour(code, message, self._state.behaviour.delay_s)

    def delay(self, seconds: float) -> None:
        """Answer every Export `seconds` late (0 for no delay)."""
        with self._state.lock:
            b = self._state.behaviour
            self._state.behaviour = _Behaviour(b.code, b.message, seconds)

    # --- what was received --------------------------------------------------------------------------------

    @property
    def requests(self) -> int:
        """Export calls received, failed ones included."""
        with self._state.lock:
            return self._state.requests

    def spans(self) -> list[Span]:
        """Every span received so far, in arrival order (a copy)."""
        with self._state.lock:
            return list(self._state.spans)

    def clear(self) -> None:
        """Forget the spans received so far (the request count stays)."""
        with self._state.lock:
            self._state.spans.clear()

    def named(self, name: str) -> list[Span]:
        return [s for s in self.spans() if s.name == name]

    def trace(self, trace_id: str) -> list[Span]:
        return [s for s in self.spans() if s.trace_id == trace_id]

    def __iter__(self) -> Iterator[Span]:
        return iter(self.spans())

    def wait_for(self, predicate: Callable[[list[Span]], bool], timeout: float = 10.0) -> list[Span]:
        """Wait until predicate(all spans so far) is true; return the spans. AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        with self._state.lock:
            while True:
                spans = list(self._state.spans)
                if predicate(spans):
                    return spans
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                # Woken by each Export; the periodic wake-up also covers predicates that depend on time.
                self._state.lock.wait(min(left, 0.1))
            requests = self._state.requests
        shown = "\n  ".join(str(s) for s in spans[-40:]) or "(none)"
        raise AssertionError(
            f"OTLP receiver: condition not met within {timeout}s; {requests} Export call(s), "
            f"{len(spans)} span(s) (last 40):\n  {shown}"
        )
