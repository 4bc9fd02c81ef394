"""Traces across the four real processes, exported to a real OTLP receiver the test runs.

One trace follows an append from the client through ingest to storage (parentage, and span links where
ingest coalesces several calls into one storage call); the custom spans carry their attributes; a failed
call's span has error status; trace and span ids reach the log lines; a dead collector costs calls
nothing and memory no more than the export queue's bound.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from allsource.v1 import event_pb2, ingest_pb2, ingest_pb2_grpc, query_pb2, query_pb2_grpc

from tests.harness import Suite, free_port
from tests.telemetry.otlp import OtlpReceiver, Span

SERVER, CLIENT = 2, 3  # OTLP span kinds
STATUS_ERROR = 2
APPEND = "allsource.v1.IngestService/AppendEvents"
STORAGE_APPEND = "allsource.storage.v1.StorageService/Append"


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory, receiver: OtlpReceiver) -> Iterator[Suite]:
    """The suite exporting every span (development's ratio, 1.0) to the receiver."""
    suite = Suite(
        tmp_path_factory.mktemp("traced"),
        extra_env={
            "ALLSOURCE_TRACING__EXPORTER": "otlp",
            "ALLSOURCE_TRACING__OTLP_ENDPOINT": receiver.endpoint,
            "ALLSOURCE_TRACING__SAMPLE_RATIO": "1.0",
            "ALLSOURCE_TRACING__MAX_QUEUED_SPANS": "512",
            "ALLSOURCE_TRACING__EXPORT_BATCH_SPANS": "128",
        },
    )
    try:
        suite.start_all()
        yield suite
    finally:
        suite.stop_all()


def new_trace() -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """A sampled trace the client starts: (trace id, the client's span id, metadata carrying it)."""
    trace_id, span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    return trace_id, span_id, (("traceparent", f"00-{trace_id}-{span_id}-01"),)


def append(stream_id: str, n: int = 2) -> ingest_pb2.AppendEventsRequest:
    return ingest_pb2.AppendEventsRequest(
        stream_id=stream_id,
        events=[event_pb2.EventData(event_type="Noted", payload=b'{"n":1}') for _ in range(n)],
    )


def by_id(spans: list[Span]) -> dict[str, Span]:
    return {s.span_id: s for s in spans}


def children(spans: list[Span], parent: Span) -> dict[str, Span]:
    return {s.name: s for s in spans if s.parent_span_id == parent.span_id and s.trace_id == parent.trace_id}


def test_one_append_is_traced_from_the_client_through_ingest_to_storage(traced: Suite, receiver: OtlpReceiver) -> None:
    tenant_id = f"tr-{uuid.uuid4().hex[:8]}"
    tenant = traced.create_tenant(tenant_id)
    trace_id, client_span, carried = new_trace()
    stub = ingest_pb2_grpc.IngestServiceStub(traced.raw_channel("ingest"))
    stream = f"order-{uuid.uuid4().hex[:8]}"
    stub.AppendEvents(append(stream, 3), metadata=(*tenant, *carried), timeout=10)

    def complete(spans: list[Span]) -> bool:
        mine = [s for s in spans if s.trace_id == trace_id]
        # Each process exports on its own schedule: wait for both sides.
        return {"storage.group_commit", STORAGE_APPEND, APPEND, "coalesce.wait"} <= {s.name for s in mine} and any(
            s.service == "allsource-storage" for s in mine
        )

    spans = [s for s in receiver.wait_for(complete, timeout=20) if s.trace_id == trace_id]
    (ingest,) = [s for s in spans if s.name == APPEND]
    # The public call's span: a SERVER span of the ingest process, child of the client's span.
    assert ingest.service == "allsource-ingest" and ingest.kind == SERVER and ingest.parent_span_id == client_span
    assert ingest.resource["service.version"] and ingest.resource["service.instance.id"]
    attrs = ingest.attributes
    assert attrs["rpc.system"] == "grpc" and attrs["rpc.service"] == "allsource.v1.IngestService"
    assert attrs["rpc.method"] == "AppendEvents" and attrs["rpc.grpc.status_code"] == 0
    assert attrs["allsource.tenant"] == tenant_id
    assert attrs["allsource.stream_id"] == stream and attrs["allsource.events"] == 3
    # Custom spans of the chain and the handler.
    inside = children(spans, ingest)
    assert {"authentication", "admission", "validation", "coalesce.wait"} <= inside.keys(), inside.keys()
    assert inside["validation"].attributes["allsource.events"] == 3
    # Alone in its storage call, the append continues its own trace down to storage's group commit.
    assert not [s for s in spans if s.name == "ingest.coalesced_append"]
    assert "allsource.storage_call" not in ingest.attributes
    (storage_client,) = [s for s in spans if s.name == STORAGE_APPEND and s.kind == CLIENT]
    assert storage_client.service == "allsource-ingest" and storage_client.parent_span_id == ingest.span_id
    (storage_server,) = [s for s in spans if s.name == STORAGE_APPEND and s.kind == SERVER]
    assert storage_server.service == "allsource-storage" and storage_server.parent_span_id == storage_client.span_id
    (commit,) = [s for s in spans if s.name == "storage.group_commit"]
    assert commit.parent_span_id == storage_server.span_id
    assert commit.attributes["allsource.events"] == 3 and commit.attributes["allsource.wal_sync"] is True
    assert commit.attributes["allsource.keys_written"] >= 3 and commit.attributes["allsource.write_seconds"] > 0

    # Trace and span ids in the log lines of both processes (the access log).
    def logged(service: str) -> list[dict[str, object]]:
        lines = [json.loads(line) for line in traced.log(service).splitlines() if trace_id in line]
        return [line for line in lines if line.get("span_id")]

    ingest_lines = traced.wait_until(lambda: logged("ingest"), what="an ingest log line with the trace id")
    assert any(line["span_id"] == ingest.span_id for line in ingest_lines), ingest_lines
    assert traced.wait_until(lambda: logged("storage"), what="a storage log line with the trace id")


def test_reads_fold_and_subscriptions_have_their_spans(traced: Suite, receiver: OtlpReceiver) -> None:
    tenant = traced.create_tenant(f"rd-{uuid.uuid4().hex[:8]}")
    stream = f"acct-{uuid.uuid4().hex[:8]}"
    ingest_pb2_grpc.IngestServiceStub(traced.raw_channel("ingest")).AppendEvents(
        append(stream, 4), metadata=tenant, timeout=10
    )
    query = query_pb2_grpc.QueryServiceStub(traced.raw_channel("query"))
    read_trace, _, carried = new_trace()
    query.ReadStream(query_pb2.ReadStreamRequest(stream_id=stream), metadata=(*tenant, *carried), timeout=10)
    fold_trace, _, carried_fold = new_trace()
    query.GetEntityState(
        query_pb2.GetEntityStateRequest(stream_id=stream), metadata=(*tenant, *carried_fold), timeout=10
    )
    sub_trace, _, carried_sub = new_trace()
    subscription = query.Subscribe(query_pb2.SubscribeRequest(), metadata=(*tenant, *carried_sub), timeout=10)
    for message in subscription:
        if message.WhichOneof("content") == "caught_up":
            break
    subscription.cancel()

    def seen(spans: list[Span]) -> bool:
        names = {(s.trace_id, s.name) for s in spans}
        return (
            (read_trace, "rocksdb.read") in names
            and (fold_trace, "entity_state.fold") in names
            and (sub_trace, "subscription.deliver") in names
            and (sub_trace, "allsource.v1.QueryService/Subscribe") in names
        )

    spans = receiver.wait_for(seen, timeout=20)
    read = [s for s in spans if s.trace_id == read_trace]
    (rocks,) = [s for s in read if s.name == "rocksdb.read"]
    assert rocks.service == "allsource-storage" and rocks.attributes["allsource.events"] == 4
    assert rocks.attributes["allsource.stream_id"] == stream
    parent = by_id(read)[rocks.parent_span_id]
    assert parent.name == "allsource.storage.v1.StorageService/ReadStream" and parent.kind == SERVER
    (fold,) = [s for s in spans if s.trace_id == fold_trace and s.name == "entity_state.fold"]
    assert fold.service == "allsource-query" and fold.attributes["allsource.version"] == 4
    deliveries = [s for s in spans if s.trace_id == sub_trace and s.name == "subscription.deliver"]
    assert any(d.attributes.get("allsource.events") == 4 for d in deliveries), [d.attributes for d in deliveries]


def test_concurrent_appends_share_a_storage_span_linked_to_each_public_span(
    traced: Suite, receiver: OtlpReceiver
) -> None:
    tenant = traced.create_tenant(f"co-{uuid.uuid4().hex[:8]}")
    channel = traced.raw_channel("ingest")
    stub = ingest_pb2_grpc.IngestServiceStub(channel)
    traces: list[str] = []
    barrier = threading.Barrier(32)

    def one(i: int) -> None:
        trace_id, _, carried = new_trace()
        traces.append(trace_id)
        barrier.wait()
        stub.AppendEvents(append(f"c{i}-{uuid.uuid4().hex[:6]}", 1), metadata=(*tenant, *carried), timeout=20)

    for _round in range(3):  # coalescing is a matter of timing: a few rounds make a shared call certain
        threads = [threading.Thread(target=one, args=(i,)) for i in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    wanted = set(traces)

    def rode_in(public: Span) -> str:
        return str(public.attributes.get("allsource.storage_call", "/")).split("/")[1]

    def arrived(spans: list[Span]) -> bool:
        publics = [s for s in spans if s.name == APPEND and s.trace_id in wanted]
        calls = {s.span_id for s in spans if s.name == "ingest.coalesced_append"}
        alone = {s.parent_span_id for s in spans if s.name == STORAGE_APPEND and s.kind == CLIENT}
        return {s.trace_id for s in publics} == wanted and all(
            rode_in(p) in calls if rode_in(p) else p.span_id in alone for p in publics
        )

    spans = receiver.wait_for(arrived, timeout=30)
    publics = [s for s in spans if s.name == APPEND and s.trace_id in wanted]
    coalesced = {s.span_id: s for s in spans if s.name == "ingest.coalesced_append"}
    # Each public call that shared a storage call names it, and that call links back to it; a call that
    # travelled alone is the parent of its storage call's client span.
    rides: dict[str, list[Span]] = {}
    for public in publics:
        if not rode_in(public):
            continue
        storage_call = coalesced[rode_in(public)]
        assert public.attributes["allsource.storage_call"] == f"{storage_call.trace_id}/{storage_call.span_id}"
        assert (public.trace_id, public.span_id) in storage_call.links
        rides.setdefault(storage_call.span_id, []).append(public)
    shared = [coalesced[ride] for ride in rides]
    assert shared, "no storage call carried more than one append"
    assert sum(len(riders) for riders in rides.values()) > len(rides)  # fewer storage calls than appends
    for call in shared:
        # A shared call is a trace of its own, linked to every append it carried ...
        assert call.is_root and call.attributes["allsource.sampled_by"] == "links"
        assert len(call.links) == call.attributes["allsource.appends"] == len(rides[call.span_id])
        # ... and the storage side of it is in that trace.
        receiver.wait_for(
            lambda spans, call=call: any(
                s.trace_id == call.trace_id and s.service == "allsource-storage" and s.name == STORAGE_APPEND
                for s in spans
            ),
            timeout=20,
        )


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def p50(samples: list[float]) -> float:
    return sorted(samples)[len(samples) // 2]


def test_a_dead_collector_costs_calls_nothing_and_memory_stays_within_the_queue_bound(tmp_path: Path) -> None:
    dead = free_port()  # nothing listens there
    suite = Suite(
        tmp_path / "dead",
        extra_env={
            "ALLSOURCE_TRACING__EXPORTER": "otlp",
            "ALLSOURCE_TRACING__OTLP_ENDPOINT": f"127.0.0.1:{dead}",
            "ALLSOURCE_TRACING__MAX_QUEUED_SPANS": "256",
            "ALLSOURCE_TRACING__EXPORT_BATCH_SPANS": "64",
            "ALLSOURCE_TRACING__EXPORT_TIMEOUT_S": "1",
        },
    )
    with OtlpReceiver() as alive:
        try:
            # Baseline in the same test: the same suite, spans going to a live collector.
            suite.extra_env = {**suite.extra_env, "ALLSOURCE_TRACING__OTLP_ENDPOINT": alive.endpoint}
            suite.start_all()
            tenant = suite.create_tenant("dead-collector")
            stub = ingest_pb2_grpc.IngestServiceStub(suite.raw_channel("ingest"))

            def latencies(n: int) -> list[float]:
                out = []
                for i in range(n):
                    started = time.perf_counter()
                    stub.AppendEvents(append(f"s-{i % 10}", 1), metadata=tenant, timeout=10)
                    out.append(time.perf_counter() - started)
                return out

            latencies(100)
            with_collector = p50(latencies(300))
            assert alive.wait_for(lambda spans: len(spans) > 300, timeout=20)
            # The collector dies: restart ingest pointed at a port where nothing listens.
            suite.stop("ingest")
            suite.extra_env = {**suite.extra_env, "ALLSOURCE_TRACING__OTLP_ENDPOINT": f"127.0.0.1:{dead}"}
            suite.start("ingest")
            stub = ingest_pb2_grpc.IngestServiceStub(suite.raw_channel("ingest"))
            latencies(300)  # the queue fills
            before = rss_kib(suite.procs["ingest"].pid)
            without_collector = p50(latencies(1500))
            grown = rss_kib(suite.procs["ingest"].pid) - before
        finally:
            suite.stop_all()
    # Calls keep their latency (loose bound: shared machines are noisy) ...
    assert without_collector < 2 * with_collector + 0.002, (with_collector, without_collector)
    # ... and memory stays within the queue's bound: 256 spans of a few KiB at most, not 1,500 calls' worth.
    assert grown < 8 * 1024, grown
    log_lines = [json.loads(line) for line in suite.log("ingest").splitlines() if line.startswith("{")]
    failures = [line for line in log_lines if line.get("msg") == "spans could not be exported"]
    assert 1 <= len(failures) <= 3, failures  # logged, at most once a minute


def test_a_failed_call_has_an_error_span(traced: Suite, receiver: OtlpReceiver) -> None:
    """Last in this module: it stops storage."""
    tenant = traced.create_tenant(f"er-{uuid.uuid4().hex[:8]}")
    traced.kill("storage")
    trace_id, _, carried = new_trace()
    stub = ingest_pb2_grpc.IngestServiceStub(traced.raw_channel("ingest"))
    with pytest.raises(grpc.RpcError) as err:
        stub.AppendEvents(append("s-err", 1), metadata=(*tenant, *carried), timeout=10)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    spans = receiver.wait_for(lambda spans: any(s.trace_id == trace_id and s.name == APPEND for s in spans), 20)
    (failed,) = [s for s in spans if s.trace_id == trace_id and s.name == APPEND]
    assert failed.status_code == STATUS_ERROR and "UNAVAILABLE" in failed.status_message
    assert failed.attributes["rpc.grpc.status_code"] == 14 and failed.attributes["allsource.reason"]
    assert os.environ.get("ALLSOURCE_TRACING__EXPORTER") is None  # the test's own process is untouched
