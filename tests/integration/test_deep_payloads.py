"""What ingest accepts can be folded (F6 item 7): JSON nested ~1,000 levels was once accepted by ingest
and then failed every GetEntityState of its stream for good. Ingest now bounds the depth
(`limits.max_json_depth`); a stream of payloads at that depth folds, stores its snapshot, and folds again
from the snapshot."""

from __future__ import annotations

import json

import grpc
import pytest
from allsource.v1 import event_pb2, ingest_pb2, ingest_pb2_grpc, query_pb2, query_pb2_grpc

from tests.harness import Suite
from tests.limits.support import refusal

DEPTH = 64  # limits.max_json_depth's default
SNAPSHOT_AFTER = 100  # query.snapshot_after_events's default


def nested(depth: int, leaf: int) -> bytes:
    """An object nested `depth` levels deep (the outermost object counts as one)."""
    inner = str(leaf).encode()
    for level in range(depth - 1):
        inner = b'{"k":' + inner + b"}" if level % 2 else b"[" + inner + b"]"
    return b'{"deep":' + inner + b"}"


def test_a_stream_of_payloads_at_the_depth_limit_folds_and_folds_again_from_its_snapshot(
    suite: Suite, unique: str
) -> None:
    ingest = ingest_pb2_grpc.IngestServiceStub(suite.channel("ingest"))
    query = query_pb2_grpc.QueryServiceStub(suite.channel("query"))
    stream = f"{unique}deep"
    too_deep = ingest_pb2.AppendEventsRequest(
        stream_id=stream, events=[event_pb2.EventData(event_type="Deep", payload=nested(DEPTH + 1, 0))]
    )
    with pytest.raises(grpc.RpcError) as err:  # one level deeper is refused: this test is at the limit
        ingest.AppendEvents(too_deep, timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    events = [event_pb2.EventData(event_type="Deep", payload=nested(DEPTH, i)) for i in range(1, SNAPSHOT_AFTER + 1)]
    ingest.AppendEvents(ingest_pb2.AppendEventsRequest(stream_id=stream, events=events), timeout=30)

    first = query.GetEntityState(query_pb2.GetEntityStateRequest(stream_id=stream), timeout=30)
    assert (first.version, first.events_folded, first.snapshot_version) == (SNAPSHOT_AFTER, SNAPSHOT_AFTER, 0)
    assert json.loads(first.state) == json.loads(nested(DEPTH, SNAPSHOT_AFTER))
    # One more event: the next fold starts from the snapshot the first one stored.
    more = [event_pb2.EventData(event_type="Deep", payload=nested(DEPTH, SNAPSHOT_AFTER + 1))]
    ingest.AppendEvents(ingest_pb2.AppendEventsRequest(stream_id=stream, events=more), timeout=30)
    again = query.GetEntityState(query_pb2.GetEntityStateRequest(stream_id=stream), timeout=30)
    assert (again.version, again.events_folded, again.snapshot_version) == (SNAPSHOT_AFTER + 1, 1, SNAPSHOT_AFTER)
    assert json.loads(again.state) == json.loads(nested(DEPTH, SNAPSHOT_AFTER + 1))


def test_an_entity_state_past_its_bound_is_refused_with_a_reason(suite: Suite, unique: str) -> None:
    """Events of ~900 KB whose keys never repeat make a state that grows with every one of them. Four fold
    (3.6 MB); six are past query.max_entity_state_bytes (4 MiB) and are refused FAILED_PRECONDITION /
    ENTITY_STATE_TOO_LARGE (metadata limit). Before, nothing bounded the state: the query process held
    and serialized it whole, and past the message limit the call failed as RESOURCE_EXHAUSTED with no
    ErrorInfo, every time (no snapshot could be stored either)."""
    ingest = ingest_pb2_grpc.IngestServiceStub(suite.channel("ingest"))
    query = query_pb2_grpc.QueryServiceStub(suite.channel("query"))
    stream = f"{unique}wide"

    def wide(n: int) -> bytes:
        return json.dumps({f"e{n}k{j:06d}": j for j in range(45_000)}).encode()

    def append(first: int, count: int) -> None:
        events = [event_pb2.EventData(event_type="Wide", payload=wide(n)) for n in range(first, first + count)]
        ingest.AppendEvents(ingest_pb2.AppendEventsRequest(stream_id=stream, events=events), timeout=60)

    append(0, 4)
    folded = query.GetEntityState(query_pb2.GetEntityStateRequest(stream_id=stream), timeout=60)
    assert folded.version == 4 and len(json.loads(folded.state)) == 4 * 45_000
    append(4, 2)
    with pytest.raises(grpc.RpcError) as err:
        query.GetEntityState(query_pb2.GetEntityStateRequest(stream_id=stream), timeout=60)
    found = refusal(err.value)
    assert (found.code, found.reason) == ("FAILED_PRECONDITION", "ENTITY_STATE_TOO_LARGE")
    assert found.metadata.get("limit") == str(4 * 1024 * 1024)
