"""Subscribe's resume position and scan bound: a position beyond the tenant's head is refused (events
up to it would never be delivered), and checkpoint_every_events, how far storage scans in one go for a
subscription, is bounded."""

from __future__ import annotations

import grpc
import pytest
from allsource.v1 import event_pb2, ingest_pb2, ingest_pb2_grpc, query_pb2, query_pb2_grpc

from tests.harness import Suite
from tests.limits.support import refusal


def test_resuming_beyond_the_head_is_refused_with_the_head(suite: Suite, unique: str) -> None:
    """Head 5, a subscriber resuming after 1,005 (or 2^64-1, a checkpoint from another history of the
    tenant): OUT_OF_RANGE / POSITION_BEYOND_HEAD with the head in the metadata. Before, the subscription
    was accepted and answered CaughtUp(1005), and the events appended at positions 6-8 were never
    delivered to it."""
    md = suite.create_tenant(f"{unique}beyond".rstrip("-"))
    ingest = ingest_pb2_grpc.IngestServiceStub(suite.channel("ingest", md))
    events = [event_pb2.EventData(event_type="E", payload=b"{}") for _ in range(5)]
    ingest.AppendEvents(ingest_pb2.AppendEventsRequest(stream_id="s-1", events=events), timeout=30)
    query = query_pb2_grpc.QueryServiceStub(suite.channel("query", md))
    for after in (1005, 2**64 - 1):
        with pytest.raises(grpc.RpcError) as err:
            next(iter(query.Subscribe(query_pb2.SubscribeRequest(after_position=after), timeout=10)))
        found = refusal(err.value)
        assert (found.code, found.reason) == ("OUT_OF_RANGE", "POSITION_BEYOND_HEAD"), found
        assert found.metadata["head_position"] == "5"
    first = next(iter(query.Subscribe(query_pb2.SubscribeRequest(after_position=5), timeout=10)))
    assert first.WhichOneof("content") in ("caught_up", "checkpoint")  # at the head: fine


def test_checkpoint_every_events_is_bounded(suite: Suite) -> None:
    """At most 100,000 (it is how far storage scans for the subscription in one go): 2^32-1 kept a
    subscription silent while storage scanned a million events in one read."""
    query = query_pb2_grpc.QueryServiceStub(suite.channel("query"))
    with pytest.raises(grpc.RpcError) as err:
        next(iter(query.Subscribe(query_pb2.SubscribeRequest(checkpoint_every_events=2**32 - 1), timeout=10)))
    found = refusal(err.value)
    assert found.code == "INVALID_ARGUMENT" and found.violations == ["checkpoint_every_events"], found
    accepted = query.Subscribe(query_pb2.SubscribeRequest(checkpoint_every_events=100_000, from_end=True), timeout=10)
    assert next(iter(accepted)) is not None
