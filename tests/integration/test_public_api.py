"""The public services as a user sees them: real processes, real RocksDB, generated clients."""

from __future__ import annotations

import json
import threading
import time
import uuid

import grpc
import pytest
from allsource.v1 import admin_pb2, event_pb2, ingest_pb2, ingest_pb2_grpc, query_pb2, query_pb2_grpc
from allsource_client import (
    NO_STREAM,
    AllSourceClient,
    AllSourceClientError,
    DuplicateEventId,
    EventNotFound,
    InvalidRequest,
    StreamNotFound,
    WrongExpectedVersion,
    event,
    exact,
)
from google.protobuf import duration_pb2
from grpc_status import rpc_status

from tests.harness import Suite


def test_append_and_read_back(client: AllSourceClient, unique: str) -> None:
    stream = unique + "order"
    first = client.append(stream, [event("Placed", {"total": 10}), event("Paid", {"paid": True})], expected=NO_STREAM)
    assert (first.first_version, first.last_version) == (1, 2)
    assert first.last_position == first.first_position + 1
    events = client.read_stream(stream)
    assert [(e.version, e.event_type, json.loads(e.payload)) for e in events] == [
        (1, "Placed", {"total": 10}),
        (2, "Paid", {"paid": True}),
    ]
    assert [e.event_id for e in events] == list(first.event_ids)
    assert all(e.tenant_id == "default" and e.stream_id == stream for e in events)
    got = client.get_event(first.event_ids[1])
    assert got == events[1]


def test_expected_version_conflict_reports_versions(client: AllSourceClient, unique: str) -> None:
    stream = unique + "s"
    client.append(stream, [event("A"), event("B")])
    with pytest.raises(WrongExpectedVersion) as err:
        client.append(stream, [event("C")], expected=exact(1))
    assert err.value.code == grpc.StatusCode.ABORTED
    assert err.value.metadata["actual_version"] == "2" and err.value.metadata["expected_version"] == "1"
    assert len(client.read_stream(stream)) == 2


def test_invalid_append_names_fields_and_writes_nothing(client: AllSourceClient, unique: str) -> None:
    stream = unique + "bad"
    with pytest.raises(InvalidRequest) as err:
        client.append(stream, [event("Ok"), event_pb2.EventData(event_type="Bad\n", payload=b"{oops")])
    assert err.value.reason == "INVALID_APPEND"
    assert dict(err.value.violations).keys() == {"events[1].event_type", "events[1].payload"}
    with pytest.raises(StreamNotFound):
        client.read_stream(stream)


def test_idempotent_retries(client: AllSourceClient, unique: str) -> None:
    stream = unique + "idem"
    ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    batch = [event("A", {"n": 1}, event_id=ids[0]), event("A", {"n": 2}, event_id=ids[1])]
    first = client.append(stream, batch, expected=NO_STREAM)
    again = client.append(stream, batch, expected=NO_STREAM)
    assert again.deduplicated and (again.first_version, again.last_version) == (1, 2)
    assert again.first_position == first.first_position
    with pytest.raises(DuplicateEventId):
        client.append(stream, [event("A", {"n": 99}, event_id=ids[0])])
    by_request = client.append(stream, [event("B")], request_id=unique + "r1")
    retried = client.append(stream, [event("B")], request_id=unique + "r1")
    assert retried.deduplicated and list(retried.event_ids) == list(by_request.event_ids)
    assert [e.version for e in client.read_stream(stream)] == [1, 2, 3]


def test_read_stream_pages_and_directions(suite: Suite, client: AllSourceClient, unique: str) -> None:
    stream = unique + "long"
    client.append(stream, [event("E", {"i": i}) for i in range(25)])
    query = query_pb2_grpc.QueryServiceStub(suite.channel("query"))
    page = query.ReadStream(query_pb2.ReadStreamRequest(stream_id=stream, page_size=10))
    assert [e.version for e in page.events] == list(range(1, 11)) and page.stream_version == 25
    versions = [e.version for e in page.events]
    while page.next_page_token:
        page = query.ReadStream(
            query_pb2.ReadStreamRequest(stream_id=stream, page_size=10, page_token=page.next_page_token)
        )
        versions += [e.version for e in page.events]
    assert versions == list(range(1, 26))
    assert [e.version for e in client.read_stream(stream, backward=True, page_size=7)] == list(range(25, 0, -1))
    assert [e.version for e in client.read_stream(stream, from_version=20)] == [20, 21, 22, 23, 24, 25]
    # a token is bound to the request it came from
    first = query.ReadStream(query_pb2.ReadStreamRequest(stream_id=stream, page_size=10))
    with pytest.raises(grpc.RpcError) as err:
        query.ReadStream(
            query_pb2.ReadStreamRequest(stream_id=unique + "other", page_size=10, page_token=first.next_page_token)
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "INVALID_PAGE_TOKEN" in str(rpc_status.from_call(err.value))


def test_list_events_filters_and_pages(client: AllSourceClient, unique: str) -> None:
    for i in range(12):
        client.append(f"{unique}order-{i % 3}", [event("Placed" if i % 2 == 0 else "Paid", {"i": i})])
    client.append(unique + "user-1", [event("Registered")])
    everything = list(client.list_events(event_pb2.EventFilter(stream_id_prefix=unique), page_size=5))
    assert len(everything) == 13
    positions = [e.position for e in everything]
    assert positions == sorted(positions)
    placed = list(
        client.list_events(event_pb2.EventFilter(stream_id_prefix=unique, event_types=["Placed"]), page_size=4)
    )
    assert [json.loads(e.payload)["i"] for e in placed] == [0, 2, 4, 6, 8, 10]
    one = list(client.list_events(event_pb2.EventFilter(stream_id=unique + "order-1")))
    assert [e.version for e in one] == [1, 2, 3, 4]
    window = event_pb2.EventFilter(stream_id_prefix=unique, from_position=positions[2], to_position=positions[4])
    assert [e.position for e in client.list_events(window)] == positions[2:5]
    with pytest.raises(InvalidRequest) as err:
        list(client.list_events(event_pb2.EventFilter(stream_id="a", stream_id_prefix="b")))
    assert err.value.violations == [("filter.stream_id_prefix", "must be empty when stream_id is set")]


def test_page_size_is_capped(suite: Suite, client: AllSourceClient, unique: str) -> None:
    client.append(unique + "many", [event("E") for _ in range(1200)])
    query = query_pb2_grpc.QueryServiceStub(suite.channel("query"))
    reply = query.ReadStream(query_pb2.ReadStreamRequest(stream_id=unique + "many", page_size=5000))
    assert len(reply.events) == 1000 and reply.next_page_token
    with pytest.raises(grpc.RpcError) as err:
        query.ReadStream(query_pb2.ReadStreamRequest(stream_id=unique + "many", page_size=-1))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_stream_events_exports_everything_in_order(client: AllSourceClient, unique: str) -> None:
    for i in range(30):
        client.append(f"{unique}s-{i % 4}", [event("E", {"i": i}), event("F", {"i": i})])
    streamed = list(client.stream_events(event_pb2.EventFilter(stream_id_prefix=unique), batch_size=7))
    assert len(streamed) == 60
    assert [json.loads(e.payload)["i"] for e in streamed] == [i // 2 for i in range(60)]
    only_f = list(client.stream_events(event_pb2.EventFilter(stream_id_prefix=unique, event_types=["F"])))
    assert len(only_f) == 30 and {e.event_type for e in only_f} == {"F"}


def test_entity_state_folds_versions_times_and_snapshots(suite: Suite, client: AllSourceClient, unique: str) -> None:
    stream = unique + "acct"
    client.append(stream, [event("Opened", {"owner": "ann", "balance": 0})])
    client.append(stream, [event_pb2.EventData(event_type="Scan", payload=b"\x89PNG", content_type="image/png")])
    between = time.time_ns()
    time.sleep(0.02)
    client.append(stream, [event("Deposited", {"balance": 10}), event("Renamed", {"owner": "bob"})])
    state, version = client.get_state(stream)
    assert (state, version) == ({"owner": "bob", "balance": 10}, 4)
    assert client.get_state(stream, as_of_version=1) == ({"owner": "ann", "balance": 0}, 1)
    query = query_pb2_grpc.QueryServiceStub(suite.channel("query"))
    request = query_pb2.GetEntityStateRequest(stream_id=stream)
    request.as_of_time.FromNanoseconds(between)
    reply = query.GetEntityState(request)
    assert (json.loads(reply.state), reply.version) == ({"owner": "ann", "balance": 0}, 2)

    big = unique + "big"
    client.append(big, [event("Counted", {"n": i}) for i in range(250)])
    cold = query.GetEntityState(query_pb2.GetEntityStateRequest(stream_id=big))
    assert (json.loads(cold.state), cold.events_folded, cold.snapshot_version) == ({"n": 249}, 250, 0)
    client.append(big, [event("Counted", {"n": 250, "extra": True})])
    warm = query.GetEntityState(query_pb2.GetEntityStateRequest(stream_id=big))
    assert (warm.snapshot_version, warm.events_folded, warm.version) == (250, 1, 251)
    assert json.loads(warm.state) == {"n": 250, "extra": True}

    client.append(unique + "list", [event("Weird", [1, 2])])
    with pytest.raises(AllSourceClientError) as err:
        client.get_state(unique + "list")
    assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION and err.value.reason == "PAYLOAD_NOT_OBJECT"
    with pytest.raises(StreamNotFound):
        client.get_state(unique + "never")


def test_subscribe_catches_up_then_delivers_live_and_resumes(client: AllSourceClient, unique: str) -> None:
    prefix = unique + "sub-"
    client.append(prefix + "a", [event("A", {"n": 1}), event("A", {"n": 2})])
    client.append(unique + "elsewhere", [event("A")])
    request = query_pb2.SubscribeRequest(stream_id_prefix=prefix)
    received: list[event_pb2.Event] = []
    marks: list[str] = []
    done = threading.Event()

    def consume() -> None:
        for message in client.subscribe(request, timeout=15):
            kind = message.WhichOneof("content")
            marks.append(kind)
            if kind == "events":
                received.extend(message.events.events)
            if len(received) >= 4:
                done.set()
                return

    reader = threading.Thread(target=consume)
    reader.start()
    deadline = time.monotonic() + 10
    while "caught_up" not in marks and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "caught_up" in marks
    client.append(prefix + "b", [event("B", {"n": 3})])
    client.append(prefix + "a", [event("A", {"n": 4})])
    assert done.wait(10)
    reader.join()
    assert [json.loads(e.payload)["n"] for e in received] == [1, 2, 3, 4]
    assert all(e.stream_id.startswith(prefix) for e in received)

    # resume after the second event: exactly the third and fourth, nothing twice
    resume = query_pb2.SubscribeRequest(stream_id_prefix=prefix, after_position=received[1].position)
    again: list[int] = []
    for message in client.subscribe(resume, timeout=10):
        if message.WhichOneof("content") == "events":
            again.extend(json.loads(e.payload)["n"] for e in message.events.events)
        if message.WhichOneof("content") == "caught_up":
            break
    assert again == [3, 4]


def test_subscribe_sends_checkpoints_over_unmatched_events(client: AllSourceClient, unique: str) -> None:
    interval = duration_pb2.Duration(nanos=200_000_000)
    request = query_pb2.SubscribeRequest(from_end=True, stream_id_prefix=unique + "none-", checkpoint_interval=interval)
    checkpoints = []
    started = time.monotonic()
    for message in client.subscribe(request, timeout=10):
        if message.WhichOneof("content") == "checkpoint":
            checkpoints.append(message.checkpoint.position)
            if len(checkpoints) == 1:
                client.append(unique + "other", [event("X")])
            if len(checkpoints) == 3:
                break
    assert time.monotonic() - started < 5
    assert checkpoints == sorted(checkpoints) and checkpoints[-1] > checkpoints[0]


def test_subscribe_rejects_bad_requests(client: AllSourceClient) -> None:
    with pytest.raises(InvalidRequest):
        list(client.subscribe(query_pb2.SubscribeRequest(from_end=True, after_position=5), timeout=5))


def test_list_streams_pages_by_prefix(suite: Suite, client: AllSourceClient, unique: str) -> None:
    for name in ("c", "a", "b", "d", "e"):
        client.append(unique + name, [event("E")])
    client.append(unique + "b", [event("E")])
    query = query_pb2_grpc.QueryServiceStub(suite.channel("query"))
    seen, token = [], ""
    while True:
        page = query.ListStreams(query_pb2.ListStreamsRequest(stream_id_prefix=unique, page_size=2, page_token=token))
        seen += [(s.stream_id[len(unique) :], s.version) for s in page.streams]
        token = page.next_page_token
        if not token:
            break
    assert seen == [("a", 1), ("b", 2), ("c", 1), ("d", 1), ("e", 1)]


def test_get_event_unknown_and_malformed(client: AllSourceClient) -> None:
    with pytest.raises(EventNotFound):
        client.get_event(str(uuid.uuid4()))
    with pytest.raises(InvalidRequest):
        client.get_event("not-a-uuid")


def test_batch_append_one_result_per_request_in_order(suite: Suite, unique: str) -> None:
    ingest = ingest_pb2_grpc.IngestServiceStub(suite.channel("ingest"))

    def requests():  # type: ignore[no-untyped-def]
        for i in range(40):
            stream = f"{unique}bulk-{i % 5}"
            if i == 7:
                yield ingest_pb2.BatchAppendRequest(
                    correlation_id="bad", append=ingest_pb2.AppendEventsRequest(stream_id=stream, events=[event("")])
                )
            elif i == 9:
                yield ingest_pb2.BatchAppendRequest(
                    correlation_id="conflict",
                    append=ingest_pb2.AppendEventsRequest(
                        stream_id=stream, expected_version=NO_STREAM, events=[event("E", {"i": i})]
                    ),
                )
            else:
                yield ingest_pb2.BatchAppendRequest(
                    correlation_id=f"c{i}",
                    append=ingest_pb2.AppendEventsRequest(
                        stream_id=stream, events=[event("E", {"i": i}) for _ in range(3)]
                    ),
                )

    responses = list(ingest.BatchAppend(requests(), timeout=30))
    assert [r.request_index for r in responses] == list(range(40))
    by_id = {r.correlation_id: r for r in responses}
    assert (
        by_id["bad"].WhichOneof("result") == "error"
        and by_id["bad"].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    )
    assert "append.events[0].event_type" in str(by_id["bad"].error)
    assert by_id["conflict"].WhichOneof("result") == "error" and "WRONG_EXPECTED_VERSION" in str(
        by_id["conflict"].error
    )
    ok = [r for r in responses if r.WhichOneof("result") == "success"]
    assert len(ok) == 38
    positions = sorted(p for r in ok for p in range(r.success.first_position, r.success.last_position + 1))
    assert len(set(positions)) == 38 * 3


def test_system_info_reports_every_service_and_storage(suite: Suite, client: AllSourceClient, unique: str) -> None:
    client.append(unique + "x", [event("E")])
    info = client.system_info()
    assert {s.name: s.status for s in info.services} == {
        "ingest": admin_pb2.HEALTH_STATUS_SERVING,
        "query": admin_pb2.HEALTH_STATUS_SERVING,
        "admin": admin_pb2.HEALTH_STATUS_SERVING,
        "storage": admin_pb2.HEALTH_STATUS_SERVING,
    }
    assert info.version and info.uptime.ToNanoseconds() > 0
    assert info.storage.backend == "rocksdb" and info.storage.events >= 1 and info.storage.disk_bytes > 0
    assert info.storage.data_dir.startswith(str(suite.data_dir))


def test_trace_context_crosses_service_calls(suite: Suite, unique: str) -> None:
    trace_id = uuid.uuid4().hex
    metadata = (("traceparent", f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"),)
    query = query_pb2_grpc.QueryServiceStub(suite.channel("query"))
    ingest = ingest_pb2_grpc.IngestServiceStub(suite.channel("ingest"))
    ingest.AppendEvents(ingest_pb2.AppendEventsRequest(stream_id=unique + "t", events=[event("E")]), metadata=metadata)
    query.ReadStream(query_pb2.ReadStreamRequest(stream_id=unique + "t"), metadata=metadata)

    def logged(service: str, method: str) -> bool:
        for line in suite.log(service).splitlines():
            if trace_id in line and method in line:
                return True
        return False

    # Access lines are buffered for up to 0.2 s: wait for them rather than read once.
    suite.wait_until(lambda: logged("query", "ReadStream") and logged("storage", "/ReadStream"))
    suite.wait_until(lambda: logged("ingest", "AppendEvents") and logged("storage", "/Append"))


def test_request_id_is_returned_and_forwarded(suite: Suite, unique: str) -> None:
    query = query_pb2_grpc.QueryServiceStub(suite.channel("query"))
    request_id = "req-" + uuid.uuid4().hex
    _, call = query.ListStreams.with_call(
        query_pb2.ListStreamsRequest(stream_id_prefix=unique), metadata=(("x-request-id", request_id),)
    )
    assert ("x-request-id", request_id) in tuple(call.trailing_metadata())
    suite.wait_until(lambda: f'"request_id":"{request_id}"' in suite.log("storage"))
