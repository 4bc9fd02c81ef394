"""BatchGetEvents and ReadStreams on real processes: a result per id or per stream (found, not found, out
of the credential's scope), bounds and malformed input refused with BadRequest, one storage call each,
and the read cache answering what it holds; and the plan ListEvents explains."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import grpc
import pytest
from allsource.v1 import auth_pb2, auth_pb2_grpc, event_pb2, ingest_pb2, ingest_pb2_grpc, query_pb2, query_pb2_grpc
from allsource_client import error_from_rpc
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from shared.telemetry.logs import AccessLog
from tests.harness import Suite


@pytest.fixture(scope="module")
def bsuite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    running = Suite(tmp_path_factory.mktemp("batch-reads"))
    try:
        running.start_all()
        yield running
    finally:
        running.stop_all()


def key(suite: Suite, tenant: str, **scope: object) -> tuple[tuple[str, str], ...]:
    """An API key of the tenant, read-only, limited as asked."""
    acting = (*suite.auth_metadata(), ("x-allsource-tenant", tenant))
    created = auth_pb2_grpc.AuthServiceStub(suite.channel("admin", acting)).CreateApiKey(
        auth_pb2.CreateApiKeyRequest(name=f"k{uuid.uuid4().hex[:6]}", role=auth_pb2.ROLE_READ_ONLY, **scope)  # type: ignore[arg-type]
    )
    return (("authorization", f"Bearer {created.secret}"),)


def append(suite: Suite, md: tuple[tuple[str, str], ...], stream: str, n: int, event_type: str) -> list[str]:
    ingest = ingest_pb2_grpc.IngestServiceStub(suite.channel("ingest", md))
    events = [event_pb2.EventData(event_type=event_type, payload=b"{}") for _ in range(n)]
    reply = ingest.AppendEvents(ingest_pb2.AppendEventsRequest(stream_id=stream, events=events), timeout=20)
    return list(reply.event_ids)


def brief(status: status_pb2.Status, event_id: str = "") -> tuple[int, str, str]:
    """(code, reason, message without the id) of a result's status."""
    reason = ""
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            reason = info.reason
    return status.code, reason, status.message.replace(event_id, "<id>") if event_id else status.message


def storage_calls(suite: Suite, request_id: str, expected: str) -> list[str]:
    """The storage methods called for one public request (from storage's access log), once the `expected`
    one is there and the log has been flushed once more. The access log writes its lines in batches (at
    most AccessLog.FLUSH_AFTER_S after each): a request's earlier storage call (its key's records, on a
    cold cache) could be written in one batch and its data call in the next."""

    def lines() -> list[str]:
        out = []
        for line in suite.log("storage").splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                if entry.get("msg") == "rpc" and entry.get("request_id") == request_id:
                    out.append(entry["method"].rsplit("/", 1)[-1])
        return out

    suite.wait_until(lambda: expected in lines(), timeout=10, what=f"storage's {expected} line of {request_id}")
    time.sleep(2 * AccessLog.FLUSH_AFTER_S)  # whatever else the request called is written by now
    return lines()


def test_batch_get_events_answers_each_id_and_hides_what_the_scope_does(bsuite: Suite) -> None:
    tenant, other = f"ba{uuid.uuid4().hex[:6]}", f"bo{uuid.uuid4().hex[:6]}"
    admin, foreign = bsuite.create_tenant(tenant), bsuite.create_tenant(other)
    allowed = append(bsuite, admin, "in-1", 2, "Allowed")
    hidden = append(bsuite, admin, "in-2", 1, "Other")
    theirs = append(bsuite, foreign, "in-1", 1, "Allowed")
    never = str(uuid.uuid4())
    scoped = key(bsuite, tenant, event_types=["Allowed"])
    ids = [allowed[0], hidden[0], never, theirs[0], allowed[1].upper()]
    for _ in range(2):  # the second time, the found events come from the read cache
        request_id = f"batch-{uuid.uuid4().hex}"
        query = query_pb2_grpc.QueryServiceStub(bsuite.channel("query", (*scoped, ("x-request-id", request_id))))
        reply = query.BatchGetEvents(query_pb2.BatchGetEventsRequest(event_ids=ids), timeout=20)
        assert [r.event_id for r in reply.results] == [i.lower() for i in ids]
        found = [r.event.event_id for r in reply.results if r.WhichOneof("result") == "event"]
        assert found == [allowed[0], allowed[1]]
        # Out of scope, never written and another tenant's: the same answer but for the id.
        answers = {brief(r.error, r.event_id) for r in reply.results if r.WhichOneof("result") == "error"}
        assert answers == {(grpc.StatusCode.NOT_FOUND.value[0], "EVENT_NOT_FOUND", "event <id> not found")}
        calls = storage_calls(bsuite, request_id, "BatchGetEvents")
        assert calls.count("BatchGetEvents") == 1 and "GetEvent" not in calls  # one round trip, either way
    # The tenant's own unrestricted key sees the event the scoped key could not.
    query = query_pb2_grpc.QueryServiceStub(bsuite.channel("query", key(bsuite, tenant)))
    reply = query.BatchGetEvents(query_pb2.BatchGetEventsRequest(event_ids=[hidden[0]]), timeout=20)
    assert reply.results[0].event.event_type == "Other"


def test_read_streams_reads_each_stream_from_its_own_version(bsuite: Suite) -> None:
    tenant = f"br{uuid.uuid4().hex[:6]}"
    admin = bsuite.create_tenant(tenant)
    append(bsuite, admin, "in-1", 5, "A")
    append(bsuite, admin, "in-2", 3, "A")
    append(bsuite, admin, "out-1", 2, "A")
    scoped = key(bsuite, tenant, stream_id_prefix="in-")
    reads = [
        query_pb2.StreamRead(stream_id="in-1", from_version=2, limit=2),
        query_pb2.StreamRead(stream_id="in-2", direction=query_pb2.READ_DIRECTION_BACKWARD, limit=10),
        query_pb2.StreamRead(stream_id="out-1"),
        query_pb2.StreamRead(stream_id="in-missing"),
    ]
    request_id = f"reads-{uuid.uuid4().hex}"
    query = query_pb2_grpc.QueryServiceStub(bsuite.channel("query", (*scoped, ("x-request-id", request_id))))
    reply = query.ReadStreams(query_pb2.ReadStreamsRequest(reads=reads), timeout=20)
    first, second, outside, missing = reply.results
    assert ([e.version for e in first.events], first.stream_version, first.next_version) == ([2, 3], 5, 4)
    assert ([e.version for e in second.events], second.next_version) == ([3, 2, 1], 0)
    assert brief(outside.error)[:2] == (grpc.StatusCode.PERMISSION_DENIED.value[0], "SCOPE_RESTRICTED")
    assert brief(missing.error)[:2] == (grpc.StatusCode.NOT_FOUND.value[0], "STREAM_NOT_FOUND")
    assert [r.stream_id for r in reply.results] == ["in-1", "in-2", "out-1", "in-missing"]
    assert storage_calls(bsuite, request_id, "ReadStreams").count("ReadStreams") == 1
    # Again (the first read registered the tenant with the commit feed; its pages are kept from then on):
    # the same answers, in one storage call at most.
    request_id = f"reads-{uuid.uuid4().hex}"
    query = query_pb2_grpc.QueryServiceStub(bsuite.channel("query", (*scoped, ("x-request-id", request_id))))
    again = query.ReadStreams(query_pb2.ReadStreamsRequest(reads=reads), timeout=20)
    assert again == reply
    assert storage_calls(bsuite, request_id, "ReadStreams").count("ReadStreams") == 1


@pytest.mark.parametrize(
    ("method", "request_", "fields"),
    [
        ("BatchGetEvents", query_pb2.BatchGetEventsRequest(), ["event_ids"]),
        (
            "BatchGetEvents",
            query_pb2.BatchGetEventsRequest(event_ids=[str(uuid.uuid4()) for _ in range(101)]),
            ["event_ids"],
        ),
        (
            "BatchGetEvents",
            query_pb2.BatchGetEventsRequest(event_ids=["nope", str(uuid.UUID(int=7)), str(uuid.UUID(int=7)).upper()]),
            ["event_ids[0]", "event_ids[2]"],
        ),
        ("ReadStreams", query_pb2.ReadStreamsRequest(), ["reads"]),
        ("ReadStreams", query_pb2.ReadStreamsRequest(reads=[query_pb2.StreamRead(stream_id="s")] * 21), ["reads"]),
        (
            "ReadStreams",
            query_pb2.ReadStreamsRequest(
                reads=[
                    query_pb2.StreamRead(stream_id=""),
                    query_pb2.StreamRead(stream_id="s", direction=7, limit=-1),  # type: ignore[arg-type]
                ]
            ),
            ["reads[0].stream_id", "reads[1].direction", "reads[1].limit"],
        ),
    ],
)
def test_malformed_batches_are_refused_with_each_violation(
    bsuite: Suite, method: str, request_: object, fields: list[str]
) -> None:
    query = query_pb2_grpc.QueryServiceStub(bsuite.channel("query"))
    with pytest.raises(grpc.RpcError) as err:
        getattr(query, method)(request_, timeout=20)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(err.value)
    assert status is not None
    violations = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            violations = [v.field for v in bad.field_violations]
    assert violations == fields
    assert error_from_rpc(err.value).reason


def test_list_events_explains_the_index_it_walked(bsuite: Suite) -> None:
    """A filter on event type and time walks the type index inside the window's positions (found by a
    binary search over the log), examining a handful of keys; a whole stream category with types walks
    the category/type index; without a filter it is a scan of the log."""
    tenant = f"bx{uuid.uuid4().hex[:6]}"
    admin = bsuite.create_tenant(tenant)
    for _ in range(3):
        append(bsuite, admin, "noise-1", 100, "Noise")
    window = timestamp_pb2.Timestamp()
    window.GetCurrentTime()
    append(bsuite, admin, "rare-1", 5, "Rare")
    append(bsuite, admin, "noise-1", 50, "Noise")
    query = query_pb2_grpc.QueryServiceStub(bsuite.channel("query", admin))

    def plan(**filter_: object) -> tuple[str, int, int]:
        reply = query.ListEvents(
            query_pb2.ListEventsRequest(filter=event_pb2.EventFilter(**filter_), page_size=1000, explain=True),  # type: ignore[arg-type]
            timeout=20,
        )
        return reply.plan.index, reply.plan.keys_examined, len(reply.events)

    index, examined, found = plan(event_types=["Rare"], start_time=window)
    assert (index, found) == ("event_type+time", 5) and examined <= 5 + 2 * 9, examined
    assert plan(event_types=["Rare"])[:1] == ("event_type",) and plan(event_types=["Rare"])[1] == 5
    index, examined, found = plan()
    assert (index, found) == ("log", 355) and examined == 355
    assert plan(stream_id="rare-1")[0] == "stream"
    # A whole category ("rare-": stream ids up to the first "-") with types walks the category/type
    # index: exactly the matching entries. A prefix that is not a whole category walks the type index;
    # a category without types, the log.
    assert plan(stream_id_prefix="rare-", event_types=["Rare"]) == ("category_type", 5, 5)
    assert plan(stream_id_prefix="noise-", event_types=["Rare", "Noise"]) == ("category_type", 350, 350)
    assert plan(stream_id_prefix="rar", event_types=["Rare"]) == ("event_type", 5, 5)
    assert plan(stream_id_prefix="rare-") == ("log", 355, 5)
    quiet = query.ListEvents(query_pb2.ListEventsRequest(page_size=10), timeout=20)
    assert not quiet.HasField("plan")


def test_answers_from_the_cache_keep_the_calls_byte_bound(bsuite: Suite) -> None:
    """A ~3.8 MiB page (four events of ~1 MB) and six such events, read once so that the query replica
    keeps them, then asked for again in one call (the page twenty times): ReadStreams and BatchGetEvents
    answer within the call's 4 MiB bound (the first result always goes), the rest BATCH_RESULT_TOO_LARGE,
    as when storage answers. Before, answers from the cache skipped the bound: twenty reads of the page
    made an 80 MB answer that the transport refused (RESOURCE_EXHAUSTED, no ErrorInfo) after the query
    process had built it."""
    md = bsuite.create_tenant(f"cb{uuid.uuid4().hex[:8]}")
    ingest = ingest_pb2_grpc.IngestServiceStub(bsuite.channel("ingest", md))
    query = query_pb2_grpc.QueryServiceStub(bsuite.channel("query", md))
    body = b'{"x":"' + b"a" * 999_990 + b'"}'
    ids = []
    for _ in range(6):
        reply = ingest.AppendEvents(
            ingest_pb2.AppendEventsRequest(stream_id="big", events=[event_pb2.EventData(event_type="B", payload=body)]),
            timeout=30,
        )
        ids += list(reply.event_ids)
    for _ in range(3):  # the first read registers the tenant with the feed; the later ones are kept
        query.ReadStream(query_pb2.ReadStreamRequest(stream_id="big"), timeout=30)
        query.BatchGetEvents(query_pb2.BatchGetEventsRequest(event_ids=ids), timeout=30)
        time.sleep(0.3)
    bound = 4 * 1024 * 1024
    streams = query.ReadStreams(
        query_pb2.ReadStreamsRequest(reads=[query_pb2.StreamRead(stream_id="big")] * 20), timeout=60
    )
    served = [r for r in streams.results if not r.HasField("error")]
    assert len(served) == 1 and len(served[0].events) == 4
    assert {brief(r.error)[1] for r in streams.results if r.HasField("error")} == {"BATCH_RESULT_TOO_LARGE"}
    assert streams.ByteSize() < bound + 100_000
    for half in (ids[:3], ids[3:]):  # each event kept by the replica (a read of all six stops at the bound)
        query.BatchGetEvents(query_pb2.BatchGetEventsRequest(event_ids=half), timeout=30)
    events = query.BatchGetEvents(query_pb2.BatchGetEventsRequest(event_ids=ids), timeout=60)
    assert sum(1 for r in events.results if r.HasField("event")) == 4
    assert {brief(r.error)[1] for r in events.results if r.HasField("error")} == {"BATCH_RESULT_TOO_LARGE"}
    assert events.ByteSize() < bound + 100_000
