"""The query replica's read cache on real processes: exact under concurrent appends (a read after an
acknowledged append always sees it), emptied of what a deletion, truncation or erasure removed, and
visible in the hit/miss metrics. The cache's bounds and the commit feed's cut-off are tested in
tests/unit/test_read_cache.py."""

from __future__ import annotations

import re
import signal
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator

import grpc
import pytest
from allsource.v1 import event_pb2, ingest_pb2, ingest_pb2_grpc, lifecycle_pb2, query_pb2, query_pb2_grpc
from allsource_client import AllSourceClient, error_from_rpc

from tests.harness import Suite, free_port


@pytest.fixture(scope="module")
def rsuite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    running = Suite(tmp_path_factory.mktemp("read-cache"))
    try:
        running.start_all()
        yield running
    finally:
        running.stop_all()


class Tenant:
    """Stubs of a tenant of its own."""

    def __init__(self, suite: Suite) -> None:
        self.id = f"rc{uuid.uuid4().hex[:8]}"
        md = suite.create_tenant(self.id)
        self.query_md = md
        self.ingest = ingest_pb2_grpc.IngestServiceStub(suite.channel("ingest", md))
        self.query = query_pb2_grpc.QueryServiceStub(suite.channel("query", md))

    def append(self, stream: str, n: int = 1, event_type: str = "Happened") -> ingest_pb2.AppendEventsResponse:
        events = [event_pb2.EventData(event_type=event_type, payload=f'{{"k{i}": {i}}}'.encode()) for i in range(n)]
        return self.ingest.AppendEvents(ingest_pb2.AppendEventsRequest(stream_id=stream, events=events), timeout=20)

    def read(self, stream: str, **kw: object) -> query_pb2.ReadStreamResponse:
        return self.query.ReadStream(query_pb2.ReadStreamRequest(stream_id=stream, **kw), timeout=20)  # type: ignore[arg-type]

    def state(self, stream: str) -> query_pb2.GetEntityStateResponse:
        return self.query.GetEntityState(query_pb2.GetEntityStateRequest(stream_id=stream), timeout=20)

    def event(self, event_id: str) -> query_pb2.GetEventResponse:
        return self.query.GetEvent(query_pb2.GetEventRequest(event_id=event_id), timeout=20)


def cache_metrics(suite: Suite) -> dict[str, float]:
    """The query process's allsource_query_cache_* samples, by name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{suite.metrics_ports['query']}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return {
        m.group(1): float(m.group(2)) for m in re.finditer(r"^(allsource_query_cache_\S+) (\S+)$", text, re.MULTILINE)
    }


def reason(err: grpc.RpcError) -> str:
    return error_from_rpc(err).reason or ""


def served_from_cache(suite: Suite, kind: str, read: Callable[[], object]) -> None:
    """Repeat a read until the cache answers it (the first read of a tenant registers it with storage's
    commit feed; what is read before storage confirms is not kept)."""
    name = f'allsource_query_cache_hits_total{{kind="{kind}"}}'
    before = cache_metrics(suite)[name]

    def answered() -> bool:
        read()
        return cache_metrics(suite)[name] > before

    suite.wait_until(answered, what=f"a {kind} answered from the cache")


def test_a_read_after_an_acknowledged_append_always_sees_it(rsuite: Suite) -> None:
    """Writers append to one stream and read it back at once, through pages the cache holds (the whole
    stream, a closed first page, the last event backwards) and the folded state, while readers keep
    those pages warm. Every read reflects the writer's own acknowledged append. Without invalidation from
    the commit feed the cached pages would go stale at the first append; the hit count shows they were
    served from the cache."""
    t = Tenant(rsuite)
    stream = "ryw-1"
    t.append(stream, 3)
    before = cache_metrics(rsuite)
    stop = threading.Event()
    failures: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            t.read(stream, page_size=1000)
            t.read(stream, page_size=2)
            t.read(stream, direction=query_pb2.READ_DIRECTION_BACKWARD, page_size=1)

    def writer(n: int) -> None:
        for _ in range(n):
            acked = t.append(stream).last_version
            whole = t.read(stream, page_size=1000)
            if whole.stream_version < acked or whole.events[-1].version < acked:
                failures.append(f"whole stream at {whole.stream_version} after {acked} was acknowledged")
            first = t.read(stream, page_size=2)
            if first.stream_version < acked:
                failures.append(f"first page reports head {first.stream_version} after {acked}")
            last = t.read(stream, direction=query_pb2.READ_DIRECTION_BACKWARD, page_size=1)
            if last.events[0].version < acked:
                failures.append(f"last event {last.events[0].version} after {acked} was acknowledged")
            state = t.state(stream)
            if state.version < acked:
                failures.append(f"state at {state.version} after {acked} was acknowledged")

    readers = [threading.Thread(target=reader) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(25,)) for _ in range(4)]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in readers:
        thread.join()
    assert not failures, failures[:5]
    assert [e.version for e in t.read(stream, page_size=1000).events] == list(range(1, 104))
    after = cache_metrics(rsuite)
    page_hits = 'allsource_query_cache_hits_total{kind="page"}'
    assert after[page_hits] - before[page_hits] > 50, after
    assert after['allsource_query_cache_invalidations_total{kind="page"}'] > 0, after
    assert after["allsource_query_cache_usable"] == 1


def test_deletion_truncation_and_erasure_reach_the_cache(rsuite: Suite) -> None:
    """Events, pages and states read twice (the second time from the cache) are gone from every read as
    soon as truncation, erasure or deletion is acknowledged."""
    t = Tenant(rsuite)
    ids = list(t.append("doc-1", 5).event_ids)
    erased = list(t.append("pii-1", 2, event_type="Pii").event_ids)
    served_from_cache(rsuite, "page", lambda: t.read("doc-1"))
    served_from_cache(rsuite, "state", lambda: t.state("doc-1"))
    for event_id in ids + erased:
        served_from_cache(rsuite, "event", lambda event_id=event_id: t.event(event_id))
    assert len(t.read("doc-1").events) == 5
    assert t.state("doc-1").state == b'{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4}'

    t.ingest.SetStreamMetadata(
        lifecycle_pb2.SetStreamMetadataRequest(
            stream_id="doc-1", metadata=lifecycle_pb2.StreamMetadata(truncate_before=3)
        ),
        timeout=20,
    )
    assert [e.version for e in t.read("doc-1").events] == [3, 4, 5]
    for event_id in ids[:2]:
        with pytest.raises(grpc.RpcError) as err:
            t.event(event_id)
        assert reason(err.value) == "EVENT_NOT_FOUND"
    for _ in range(2):  # folded again without the hidden events, then from the cache
        assert t.state("doc-1").state == b'{"k2":2,"k3":3,"k4":4}'

    t.ingest.DeleteEvents(lifecycle_pb2.DeleteEventsRequest(stream_id_prefix="pii-", event_types=["Pii"]), timeout=20)
    for event_id in erased:
        with pytest.raises(grpc.RpcError) as err:
            t.event(event_id)
        assert reason(err.value) == "EVENT_NOT_FOUND"

    t.ingest.DeleteStream(ingest_pb2.DeleteStreamRequest(stream_id="doc-1"), timeout=20)
    for read in (lambda: t.read("doc-1"), lambda: t.state("doc-1"), lambda: t.event(ids[-1])):
        with pytest.raises(grpc.RpcError) as err:
            read()
        assert reason(err.value) in ("STREAM_NOT_FOUND", "EVENT_NOT_FOUND")


def test_a_stalled_replica_delays_writes_once_and_never_serves_what_it_missed(rsuite: Suite) -> None:
    """The query process is stopped (SIGSTOP) while its tenant is cached: an append waits for it at most
    storage.commit_feed_ack_timeout_s (2 s), then storage cuts the replica off and acknowledges. Resumed,
    the replica's first read already sees the append, and it follows again and caches again. (Which of
    the replica's guards answers that first read here, the buffered feed message or the silence check,
    depends on the order its event loop wakes in; the silence check is tested alone in
    tests/unit/test_read_cache.py.)"""
    t = Tenant(rsuite)
    stream = "stall-1"
    t.append(stream, 2)
    served_from_cache(rsuite, "page", lambda: t.read(stream))
    cut_before = storage_metric(rsuite, "allsource_commit_followers_cut_off_total")
    query = rsuite.procs["query"]
    query.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        acked = t.append(stream).last_version
        waited = time.monotonic() - started
    finally:
        query.send_signal(signal.SIGCONT)
    assert acked == 3 and 1.5 < waited < 10, waited
    assert t.read(stream).stream_version == 3  # at once, before the replica has followed again
    assert storage_metric(rsuite, "allsource_commit_followers_cut_off_total") == cut_before + 1
    rsuite.wait_until(lambda: cache_metrics(rsuite)["allsource_query_cache_usable"] == 1, what="the feed back")
    served_from_cache(rsuite, "page", lambda: t.read(stream))  # registered and cached again
    assert t.read(stream).stream_version == 3
    started = time.monotonic()
    t.append(stream)
    assert time.monotonic() - started < 1.5 and t.read(stream).stream_version == 4


def storage_metric(suite: Suite, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{suite.metrics_ports['storage']}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


@pytest.fixture(scope="module")
def replica_b(rsuite: Suite) -> Iterator[Suite]:
    """A second query replica on the same storage (and the same ingest and admin)."""
    other = Suite(
        rsuite.workdir / "replica-b",
        extra_env={"ALLSOURCE_QUERY__MIN_POSITION_WAIT_MS": "3000"},
        ports={**rsuite.ports, "query": free_port()},
        metrics_ports={**rsuite.metrics_ports, "query": free_port()},
    )
    other.data_dir = rsuite.data_dir  # the bootstrap key, and the same environment as the others
    try:
        other.start("query")
        yield other
    finally:
        other.stop_all()


def test_min_position_reads_an_append_acknowledged_through_another_replica(rsuite: Suite, replica_b: Suite) -> None:
    """An append acknowledged through ingest is seen by every read of replica B given its position, both
    for a tenant B caches (its feed brought the append) and one B never read (storage's head); a read
    naming the next position waits for it and sees the append made while it waited (without min_position
    it would answer at once, without it); a position beyond the log is refused after the bounded wait."""
    t = Tenant(rsuite)
    b = query_pb2_grpc.QueryServiceStub(replica_b.channel("query", t.query_md))
    t.append("ryw-b", 2)
    assert len(b.ReadStream(query_pb2.ReadStreamRequest(stream_id="ryw-b"), timeout=20).events) == 2  # cached on B
    acked = t.append("ryw-b")
    read = b.ReadStream(query_pb2.ReadStreamRequest(stream_id="ryw-b", min_position=acked.last_position), timeout=20)
    assert [e.version for e in read.events] == [1, 2, 3]

    # A read asking for the next position, in flight while that append is made.
    waiting = b.ReadStream.future(
        query_pb2.ReadStreamRequest(stream_id="ryw-b", min_position=acked.last_position + 1), timeout=20
    )
    later = t.append("ryw-b")
    assert later.last_position == acked.last_position + 1
    assert [e.version for e in waiting.result().events] == [1, 2, 3, 4]

    # A tenant B has never read: every read kind, through storage.
    u = Tenant(rsuite)
    b = query_pb2_grpc.QueryServiceStub(replica_b.channel("query", u.query_md))
    done = u.append("fresh-1", 3)
    at = done.last_position
    assert len(b.ReadStream(query_pb2.ReadStreamRequest(stream_id="fresh-1", min_position=at), timeout=20).events) == 3
    assert b.GetEvent(query_pb2.GetEventRequest(event_id=done.event_ids[2], min_position=at), timeout=20).event
    listed = b.ListEvents(query_pb2.ListEventsRequest(min_position=at), timeout=20)
    assert [e.position for e in listed.events][-1] == at
    assert b.GetEntityState(query_pb2.GetEntityStateRequest(stream_id="fresh-1", min_position=at), timeout=20).version
    batch = b.BatchGetEvents(query_pb2.BatchGetEventsRequest(event_ids=done.event_ids, min_position=at), timeout=20)
    assert all(r.HasField("event") for r in batch.results)
    streams = b.ReadStreams(
        query_pb2.ReadStreamsRequest(reads=[query_pb2.StreamRead(stream_id="fresh-1")], min_position=at), timeout=20
    )
    assert len(streams.results[0].events) == 3
    with AllSourceClient(
        rsuite.address("ingest"), replica_b.address("query"), rsuite.address("admin"), metadata=u.query_md
    ) as client:  # the Python client passes it on
        assert len(client.read_stream("fresh-1", min_position=at)) == 3
        assert client.get_event(done.event_ids[0], min_position=at).version == 1
        assert list(client.list_events(min_position=at))[-1].position == at

    # Beyond the tenant's log: refused once the wait (3 s here) is over, never a hang.
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as refused:
        b.ReadStream(query_pb2.ReadStreamRequest(stream_id="fresh-1", min_position=at + 1000), timeout=20)
    took = time.monotonic() - started
    error = error_from_rpc(refused.value)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error.reason == "MIN_POSITION_NOT_REACHED"
    assert error.retry_after
    assert 2.9 <= took < 10, took
