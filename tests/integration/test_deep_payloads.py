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
