"""The test OTLP receiver (tests/telemetry/otlp.py) against the real OpenTelemetry SDK exporter: spans
exported over OTLP/gRPC arrive with their ids, parentage, kind, status, attributes, links and resource;
fail_with() makes the exporter see a failing collector; wait_for() times out with what it received.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from tests.telemetry.otlp import KIND_CLIENT, KIND_SERVER, STATUS_ERROR, STATUS_UNSET, OtlpReceiver


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as r:
        yield r


def _provider(exporter: object, service: str = "receiver-test") -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service, "service.version": "9.9"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))  # type: ignore[arg-type]
    return provider


def _finished_spans(count: int = 1) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = _provider(memory)
    tracer = provider.get_tracer("test")
    for i in range(count):
        with tracer.start_as_current_span(f"span-{i}"):
            pass
    provider.shutdown()
    return list(memory.get_finished_spans())


def test_exported_spans_arrive_with_parent_attributes_and_links(receiver: OtlpReceiver) -> None:
    assert receiver.endpoint.startswith("127.0.0.1:") and receiver.port > 0
    exporter = OTLPSpanExporter(endpoint=receiver.endpoint, insecure=True, timeout=5)
    provider = _provider(exporter)
    tracer = provider.get_tracer("allsource.test", "1.0")
    with tracer.start_as_current_span("other") as other:
        other_context = other.get_span_context()
    with tracer.start_as_current_span(
        "/allsource.v1.IngestService/Append",
        kind=SpanKind.SERVER,
        attributes={"rpc.system": "grpc", "allsource.tenant": "acme", "allsource.event_count": 3},
    ) as parent:
        with tracer.start_as_current_span(
            "storage.Append",
            kind=SpanKind.CLIENT,
            links=[Link(other_context, {"allsource.reason": "coalesced"})],
            attributes={"ratio": 0.5, "retried": False, "tags": ("a", "b")},
        ) as child:
            child.set_status(Status(StatusCode.ERROR, "boom"))
            child.add_event("exception", {"exception.type": "RuntimeError"})
    provider.shutdown()

    spans = receiver.wait_for(lambda spans: len(spans) >= 3, timeout=10)
    assert receiver.requests >= 1
    by_name = {s.name: s for s in spans}
    server, client = by_name["/allsource.v1.IngestService/Append"], by_name["storage.Append"]
    parent_context = parent.get_span_context()

    assert server.trace_id == f"{parent_context.trace_id:032x}" and len(server.trace_id) == 32
    assert server.span_id == f"{parent_context.span_id:016x}" and len(server.span_id) == 16
    assert server.parent_span_id == "" and server.is_root
    assert client.trace_id == server.trace_id and client.parent_span_id == server.span_id
    assert (server.kind, client.kind) == (KIND_SERVER, KIND_CLIENT)
    assert (server.status_code, client.status_code, client.status_message) == (STATUS_UNSET, STATUS_ERROR, "boom")

    assert server.attributes == {"rpc.system": "grpc", "allsource.tenant": "acme", "allsource.event_count": 3}
    assert client.attributes == {"ratio": 0.5, "retried": False, "tags": ["a", "b"]}
    assert client.links == [(f"{other_context.trace_id:032x}", f"{other_context.span_id:016x}")]
    assert client.link_attributes == [{"allsource.reason": "coalesced"}]
    assert client.events == [("exception", {"exception.type": "RuntimeError"})]

    assert {s.service for s in spans} == {"receiver-test"}
    assert server.resource["service.version"] == "9.9"
    assert server.scope == "allsource.test"
    assert 0 < server.start_ns <= client.start_ns <= client.end_ns <= server.end_ns
    assert receiver.named("storage.Append") == [client]
    assert sorted(s.name for s in receiver.trace(server.trace_id)) == sorted(
        ["/allsource.v1.IngestService/Append", "storage.Append"]
    )


def test_fail_with_makes_export_fail_until_cleared(receiver: OtlpReceiver) -> None:
    spans = _finished_spans(2)
    exporter = OTLPSpanExporter(endpoint=receiver.endpoint, insecure=True, timeout=2)
    try:
        # INVALID_ARGUMENT is not retried by the exporter: one Export call, refused.
        receiver.fail_with(grpc.StatusCode.INVALID_ARGUMENT, "no thanks")
        assert exporter.export(spans) is SpanExportResult.FAILURE
        assert receiver.requests == 1
        assert receiver.spans() == []

        receiver.fail_with(None)
        assert exporter.export(spans) is SpanExportResult.SUCCESS
        assert receiver.requests == 2
        assert [s.name for s in receiver.spans()] == ["span-0", "span-1"]

        receiver.clear()
        assert receiver.spans() == [] and receiver.requests == 2
    finally:
        exporter.shutdown()


def test_a_stopped_receiver_refuses_exports_and_keeps_its_spans() -> None:
    receiver = OtlpReceiver().start()
    exporter = OTLPSpanExporter(endpoint=receiver.endpoint, insecure=True, timeout=1)
    try:
        assert exporter.export(_finished_spans(1)) is SpanExportResult.SUCCESS
        receiver.stop()
        # The exporter retries UNAVAILABLE until its 1s timeout, then gives up.
        assert exporter.export(_finished_spans(1)) is SpanExportResult.FAILURE
        assert [s.name for s in receiver.spans()] == ["span-0"]
    finally:
        exporter.shutdown()
        receiver.stop()


def test_wait_for_times_out_with_what_it_received(receiver: OtlpReceiver) -> None:
    exporter = OTLPSpanExporter(endpoint=receiver.endpoint, insecure=True, timeout=5)
    try:
        assert exporter.export(_finished_spans(1)) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    with pytest.raises(AssertionError, match=r"1 Export call\(s\), 1 span\(s\)[\s\S]*receiver-test:span-0"):
        receiver.wait_for(lambda spans: len(spans) >= 2, timeout=0.2)
    assert receiver.wait_for(lambda spans: len(spans) == 1, timeout=0.2)[0].name == "span-0"
