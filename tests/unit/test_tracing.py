"""Sampling and span decisions of shared.telemetry.tracing and the telemetry stage, on an in-memory exporter.

The end-to-end behaviour (four processes, a real OTLP receiver) is in tests/telemetry/test_traces.py;
here each decision is checked on its own: parent-based ratio sampling, errors and slow calls kept when
their trace was not sampled, links for shared work, traceparent parsing at and past its limits.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

from shared.config.settings import TracingSettings
from shared.core.errors import Internal, InvalidArgument
from shared.rpc.chain import OK, Call, MethodInfo, Outcome
from shared.stages.telemetry import Telemetry
from shared.telemetry import tracing
from shared.telemetry.metrics import RPC_CALLS
from shared.telemetry.spans import MemoryExporter, Span

TRACE = 0x0AF7651916CD43DD8448EB211C80319C
PARENT = 0xB7AD6B7169203331


class Recorded:
    """The spans recorded in this process, as the exporter receives them."""

    def __init__(self, exporter: MemoryExporter) -> None:
        self.exporter = exporter

    def get_finished_spans(self) -> tuple[Span, ...]:
        assert tracing.STATE.processor is not None
        tracing.STATE.processor.flush()
        return tuple(self.exporter.spans)

    def clear(self) -> None:
        self.exporter.spans.clear()


@pytest.fixture
def spans() -> Iterator[Recorded]:
    """Tracing set up in this process with an in-memory exporter (and taken down again)."""
    exporter = MemoryExporter(resource={"service.name": "unit"}, scope=("t", "0"), timeout_s=1.0)
    tracing.install(exporter, TracingSettings(sample_ratio=1.0, max_queued_spans=64, export_batch_spans=1))
    tracing.configure(TracingSettings(sample_ratio=1.0, keep_slower_than_ms=50))
    token = otel_context.attach(otel_context.Context())
    try:
        yield Recorded(exporter)
    finally:
        otel_context.detach(token)
        tracing.uninstall()
        tracing.configure(TracingSettings())


def traceparent(flags: str = "01", trace_id: int = TRACE, span_id: int = PARENT) -> tuple[str, str]:
    return ("traceparent", f"00-{trace_id:032x}-{span_id:016x}-{flags}")


def call(path: str = "/allsource.v1.IngestService/AppendEvents", metadata: Any = (), streaming: bool = False) -> Call:
    method = MethodInfo(path, None, streaming=streaming)
    return Call(method, SimpleNamespace(), None, tuple(metadata), "ipv4:127.0.0.1:1", time.perf_counter())  # type: ignore[arg-type]


def run(stage: Telemetry, c: Call, outcome: Outcome = OK, took: float = 0.0) -> None:
    assert stage.applies(c.method)
    token = otel_context.attach(otel_context.Context())  # each call runs in a task of its own
    try:
        stage.enter(c)
        c.started -= took
        stage.exit(c, outcome)
    finally:
        otel_context.detach(token)


# -- traceparent ----------------------------------------------------------------------------------------


def test_traceparent_is_parsed_and_anything_malformed_starts_a_new_trace() -> None:
    ctx = tracing.parse_traceparent([traceparent("01"), ("tracestate", "vendor=x")])
    assert ctx is not None and ctx.trace_id == TRACE and ctx.span_id == PARENT and ctx.trace_flags.sampled
    assert ctx.is_remote and ctx.trace_state.get("vendor") == "x"
    unsampled = tracing.parse_traceparent([traceparent("00")])
    assert unsampled is not None and not unsampled.trace_flags.sampled
    for bad in (
        "",
        "00-" + "0" * 32 + "-" + "1" * 16 + "-01",  # all-zero trace id
        "00-" + "a" * 32 + "-" + "0" * 16 + "-01",  # all-zero span id
        "ff-" + "a" * 32 + "-" + "b" * 16 + "-01",  # forbidden version
        "00-" + "g" * 32 + "-" + "b" * 16 + "-01",  # not hex
        "00-" + "a" * 32 + "-" + "b" * 16 + "-01-extra",  # version 00 has exactly four fields
        "00_" + "a" * 32 + "-" + "b" * 16 + "-01",
        "x" * 10_000,
    ):
        assert tracing.parse_traceparent([("traceparent", bad)]) is None, bad
    assert tracing.parse_traceparent([("traceparent", b"00-bytes")]) is None
    assert tracing.parse_traceparent([]) is None
    # What goes out names the span given, in the same format.
    out = dict(tracing.span_metadata(ctx))
    assert out["traceparent"] == f"00-{TRACE:032x}-{PARENT:016x}-01" and out["tracestate"] == "vendor=x"


# -- sampling -------------------------------------------------------------------------------------------


def test_a_call_continues_its_callers_decision_and_a_new_trace_follows_the_ratio(
    spans: Recorded,
) -> None:
    stage = Telemetry("ingest", propagate=True, metrics=False)
    run(stage, call(metadata=[traceparent("01")]))
    (server,) = spans.get_finished_spans()
    assert server.get_span_context().trace_id == TRACE and server.parent_id == PARENT
    assert server.kind == SpanKind.SERVER and server.name == "allsource.v1.IngestService/AppendEvents"
    assert server.attributes["rpc.system"] == "grpc" and server.attributes["rpc.method"] == "AppendEvents"
    assert server.attributes["rpc.grpc.status_code"] == 0
    spans.clear()

    run(stage, call(metadata=[traceparent("00")]))  # the caller did not sample: neither do we
    assert spans.get_finished_spans() == ()

    tracing.configure(TracingSettings(sample_ratio=0.0))
    for _ in range(20):
        run(stage, call())  # new traces at ratio 0: none recorded
    assert spans.get_finished_spans() == ()
    tracing.configure(TracingSettings(sample_ratio=1.0))
    run(stage, call())
    (root,) = spans.get_finished_spans()
    assert root.parent_id == 0


def test_unsampled_calls_are_kept_when_they_fail_with_a_server_error_or_are_slow(spans: Recorded) -> None:
    stage = Telemetry("query", propagate=True, metrics=False)
    unsampled = [traceparent("00")]
    run(stage, call(metadata=unsampled), Outcome("INVALID_ARGUMENT", "x", InvalidArgument("bad")))  # caller's fault
    run(stage, call(metadata=unsampled), OK, took=0.01)  # fast enough
    assert spans.get_finished_spans() == ()

    error = Internal("boom")
    run(stage, call(metadata=unsampled), Outcome("INTERNAL", error.reason, error))
    (failed,) = spans.get_finished_spans()
    assert failed.attributes[tracing.SAMPLED_BY] == "error"
    assert failed.status_code == trace.StatusCode.ERROR and "INTERNAL" in failed.status_message
    assert failed.get_span_context().trace_id == TRACE and failed.parent_id == PARENT
    spans.clear()

    run(stage, call(metadata=unsampled), OK, took=0.2)
    (slow,) = spans.get_finished_spans()
    assert slow.attributes[tracing.SAMPLED_BY] == "slow"
    assert slow.end_ns - slow.start_ns >= 150_000_000  # its real start, not when it was noticed
    spans.clear()

    run(stage, call(metadata=unsampled, streaming=True), OK, took=5.0)  # a long stream is not "slow"
    assert spans.get_finished_spans() == ()
    tracing.configure(TracingSettings(keep_errors=False, keep_slower_than_ms=0))
    run(stage, call(metadata=unsampled), Outcome("INTERNAL", error.reason, error), took=3.0)
    assert spans.get_finished_spans() == ()


def test_shared_work_links_to_every_sampled_call_and_work_for_one_call_is_its_child(
    spans: Recorded,
) -> None:
    sampled = [SpanContext(TRACE + i, PARENT + i, True, TraceFlags(1)) for i in range(3)]
    unsampled = SpanContext(TRACE + 9, PARENT + 9, True, TraceFlags(0))
    shared = tracing.linked_span(
        "storage.group_commit", [*sampled, unsampled], {"allsource.appends": 4}, SpanKind.INTERNAL
    )
    shared.end()
    (linked,) = spans.get_finished_spans()
    assert linked.parent_id == 0 and linked.get_span_context().trace_id not in {c.trace_id for c in sampled}
    assert [link.span_id for link in linked.links] == [c.span_id for c in sampled]
    assert linked.attributes[tracing.SAMPLED_BY] == "links"
    spans.clear()

    nobody = tracing.linked_span("x", [unsampled, unsampled], {}, SpanKind.INTERNAL)
    assert not nobody.is_recording()  # no carried call was sampled: nothing recorded
    alone = tracing.linked_span("storage.group_commit", [sampled[0]], {}, SpanKind.INTERNAL)
    alone.end()
    (child,) = spans.get_finished_spans()
    assert child.get_span_context().trace_id == sampled[0].trace_id and child.parent_id == sampled[0].span_id


def test_custom_spans_cost_nothing_outside_a_recorded_span(spans: Recorded) -> None:
    assert tracing.span("validation") is tracing.NO_SPAN  # no current span
    parent = tracing.STATE.tracer.start_span("call")
    token = otel_context.attach(trace.set_span_in_context(parent))
    try:
        with tracing.span("validation", {"allsource.events": 3}) as child:
            assert child is not None and child.is_recording()
    finally:
        otel_context.detach(token)
        parent.end()
    validation, _ = spans.get_finished_spans()
    assert validation.name == "validation" and validation.parent_id == parent.get_span_context().span_id


def test_red_metrics_count_each_call_by_method_and_code() -> None:
    stage = Telemetry("unit-red", propagate=False, metrics=True)
    path = "/allsource.v1.QueryService/ReadStream"
    error = InvalidArgument("bad")
    for outcome in (OK, OK, Outcome("INVALID_ARGUMENT", error.reason, error)):
        run(stage, call(path), outcome)
    assert RPC_CALLS.value("unit-red", path, "OK") == 2
    assert RPC_CALLS.value("unit-red", path, "INVALID_ARGUMENT") == 1
    assert stage.metrics is not None and stage.metrics.in_flight.value == 0


def test_spans_encode_to_otlp_and_zipkin_as_collectors_read_them() -> None:
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    from shared.telemetry.spans import otlp_request, zipkin_json

    ended: list[Span] = []
    tracer = tracing.spans.Tracer(lambda parent, trace_id, attributes: True, ended.append)
    parent = trace.set_span_in_context(trace.NonRecordingSpan(SpanContext(TRACE, PARENT, True, TraceFlags(1))))
    link = SpanContext(TRACE + 1, PARENT + 1, True, TraceFlags(1))
    span = tracer.start_span(
        "a/b", parent, SpanKind.SERVER, {"s": "x", "i": 3, "f": 0.5, "b": True}, [trace.Link(link)], 1_000
    )
    span.add_event("retry", {"attempt": 1})
    span.set_status(trace.Status(trace.StatusCode.ERROR, "UNAVAILABLE: down"))
    span.end(5_000)
    request = trace_service_pb2.ExportTraceServiceRequest.FromString(
        otlp_request(ended, {"service.name": "allsource-x"}, ("allsource", "1"))
    )
    (resource_spans,) = request.resource_spans
    assert resource_spans.resource.attributes[0].value.string_value == "allsource-x"
    (got,) = resource_spans.scope_spans[0].spans
    assert got.trace_id == TRACE.to_bytes(16, "big") and got.parent_span_id == PARENT.to_bytes(8, "big")
    assert got.name == "a/b" and got.kind == 2 and (got.start_time_unix_nano, got.end_time_unix_nano) == (1_000, 5_000)
    values = {kv.key: kv.value for kv in got.attributes}
    assert values["s"].string_value == "x" and values["i"].int_value == 3
    assert values["f"].double_value == 0.5 and values["b"].bool_value is True
    assert got.links[0].span_id == (PARENT + 1).to_bytes(8, "big") and got.events[0].name == "retry"
    assert got.status.code == 2 and got.status.message == "UNAVAILABLE: down"
    (zipkin,) = __import__("orjson").loads(zipkin_json(ended, "allsource-x"))
    assert zipkin["traceId"] == f"{TRACE:032x}" and zipkin["parentId"] == f"{PARENT:016x}"
    assert zipkin["kind"] == "SERVER" and zipkin["tags"]["error"] == "UNAVAILABLE: down" and zipkin["duration"] == 4


def test_the_export_queue_is_bounded_and_counts_what_it_drops() -> None:
    from shared.telemetry.spans import BatchProcessor, Exporter

    release = __import__("threading").Event()

    class Stuck(Exporter):
        def send(self, spans: list[Span]) -> None:
            release.wait(5)  # a collector that does not answer

    exporter = Stuck(resource={}, scope=("t", "0"), timeout_s=1.0)
    processor = BatchProcessor(exporter, max_queued=10, batch=2, delay_s=0.01)
    tracer = tracing.spans.Tracer(lambda parent, trace_id, attributes: True, processor.on_end)
    for _ in range(100):
        tracer.start_span("x").end()
    assert len(processor.queue) <= 10 and processor.dropped >= 100 - 10 - 2
    release.set()
    processor.shutdown()
    assert exporter.exported + processor.dropped == 100


def test_leaf_spans_are_written_with_their_parent_and_on_their_own_when_they_outlive_it() -> None:
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    from shared.telemetry.spans import Child, flatten, otlp_request, otlp_span

    ended: list[Any] = []
    tracer = tracing.spans.Tracer(lambda parent, trace_id, attributes: True, ended.append)
    parent = trace.set_span_in_context(trace.NonRecordingSpan(SpanContext(TRACE, PARENT, True, TraceFlags(1))))
    server = tracer.start_span("svc/Call", parent, SpanKind.SERVER, {"rpc.system": "grpc"}, None, 1_000)
    assert isinstance(server, Span)
    with tracing._Leaf(server.child("authentication", None, 1_100)) as auth:
        auth.set_attribute("allsource.principal", "key:abc")
    failed = tracing._Leaf(server.child("validation", {"allsource.events": 2}, 1_200))
    with pytest.raises(ValueError), failed:
        raise ValueError("bad")
    tracing.leaf(server, "coalesce.wait", {"allsource.appends_in_call": 3}, 1_300, 1_400)
    late = server.child("rocksdb.read", None, 1_500)
    server.end(2_000)
    late.end(2_500)  # after its parent: queued on its own
    assert ended[0] is server and len(server.children) == 3 and isinstance(ended[1], Child)
    names = ["authentication", "validation", "coalesce.wait", "svc/Call", "rocksdb.read"]
    assert [s.name for s in flatten(ended)] == names

    request = trace_service_pb2.ExportTraceServiceRequest.FromString(
        otlp_request([otlp_span(ended[0]), ended[1]], {"service.name": "allsource-x"}, ("allsource", "1"))
    )
    got = {s.name: s for s in request.resource_spans[0].scope_spans[0].spans}
    assert list(got) == names
    server_id = server.get_span_context().span_id.to_bytes(8, "big")
    assert got["svc/Call"].parent_span_id == PARENT.to_bytes(8, "big")
    for name in ("authentication", "validation", "coalesce.wait", "rocksdb.read"):
        leaf = got[name]
        assert leaf.trace_id == TRACE.to_bytes(16, "big") and leaf.parent_span_id == server_id, name
        assert leaf.kind == 1 and leaf.flags == 0x101 and leaf.span_id not in {server_id, b""}
    assert len({s.span_id for s in got.values()}) == 5
    assert got["authentication"].attributes[0].value.string_value == "key:abc"
    assert (got["coalesce.wait"].start_time_unix_nano, got["coalesce.wait"].end_time_unix_nano) == (1_300, 1_400)
    assert got["validation"].status.code == 2 and got["validation"].status.message == "ValueError"
    assert got["rocksdb.read"].end_time_unix_nano == 2_500


def test_the_export_queue_bound_counts_each_spans_leaves() -> None:
    from shared.telemetry.spans import BatchProcessor, Exporter

    release = __import__("threading").Event()

    class Stuck(Exporter):
        def send(self, spans: list[Any]) -> None:
            release.wait(5)

    exporter = Stuck(resource={}, scope=("t", "0"), timeout_s=1.0)
    processor = BatchProcessor(exporter, max_queued=20, batch=1000, delay_s=60)
    tracer = tracing.spans.Tracer(lambda parent, trace_id, attributes: True, processor.on_end)
    for _ in range(10):  # five spans each: at most four such calls fit in 20
        span = tracer.start_span("call")
        assert isinstance(span, Span)
        for name in ("a", "b", "c", "d"):
            span.child(name).end()
        span.end()
    assert processor.queued == 20 and len(processor.queue) == 4 and processor.dropped == 30
    release.set()
    processor.shutdown()
    assert exporter.exported == 20 and processor.queued == 0


def test_a_stage_leaf_is_made_only_under_a_recorded_call_span_and_carries_a_failure(spans: Recorded) -> None:
    assert tracing.leaf_of(None, "admission") is None
    assert tracing.leaf_of(trace.NonRecordingSpan(SpanContext(TRACE, PARENT, True, TraceFlags(0))), "x") is None
    server = tracing.STATE.tracer.start_span("call")
    ok = tracing.leaf_of(server, "admission")
    failed = tracing.leaf_of(server, "authentication")
    assert ok is not None and failed is not None
    tracing.close_leaf(ok)
    tracing.close_leaf(failed, PermissionError("no"))
    server.end()
    assert tracing.leaf_of(server, "late") is None  # an ended span takes no more leaves
    admission, authentication, call_span = spans.get_finished_spans()
    assert (admission.name, authentication.name, call_span.name) == ("admission", "authentication", "call")
    assert admission.status_code is trace.StatusCode.UNSET
    assert authentication.status_code is trace.StatusCode.ERROR and authentication.status_message == "PermissionError"
    assert authentication.parent_id == server.get_span_context().span_id
