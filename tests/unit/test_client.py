"""The Python client against a scripted server (grpcio-testing): requests sent and typed errors raised."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import grpc
import grpc_testing
import pytest
from allsource.v1 import event_pb2, ingest_pb2, query_pb2
from allsource_client import (
    NO_STREAM,
    AllSourceClient,
    DuplicateEventId,
    InvalidRequest,
    ServiceUnavailable,
    StreamNotFound,
    WrongExpectedVersion,
    event,
)
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

INGEST = ingest_pb2.DESCRIPTOR.services_by_name["IngestService"]
QUERY = query_pb2.DESCRIPTOR.services_by_name["QueryService"]


@pytest.fixture
def fake() -> tuple[AllSourceClient, Any]:
    channel = grpc_testing.channel([INGEST, QUERY], grpc_testing.strict_real_time())
    return AllSourceClient(channel, channel, metadata=(("authorization", "Bearer t"),)), channel


def in_background(fn: Callable[[], Any]) -> dict[str, Any]:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except Exception as exc:  # handed to the test thread
            box["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    box["thread"] = thread
    return box


def rich(code: grpc.StatusCode, message: str, reason: str, **metadata: str) -> tuple[Any, ...]:
    status = status_pb2.Status(code=code.value[0], message=message)
    status.details.add().Pack(error_details_pb2.ErrorInfo(reason=reason, domain="allsource.dev", metadata=metadata))
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        bad = error_details_pb2.BadRequest()
        bad.field_violations.add(field="events[0].event_type", description="must not be empty")
        status.details.add().Pack(bad)
    return tuple(rpc_status.to_status(status).trailing_metadata)


def test_append_sends_the_request_and_metadata(fake: tuple[AllSourceClient, Any]) -> None:
    client, channel = fake
    box = in_background(
        lambda: client.append("order-1", [event("Placed", {"a": 1})], expected=NO_STREAM, request_id="r1")
    )
    metadata, request, rpc = channel.take_unary_unary(INGEST.methods_by_name["AppendEvents"])
    assert ("authorization", "Bearer t") in metadata
    assert request.stream_id == "order-1" and request.request_id == "r1"
    assert request.expected_version.kind == ingest_pb2.EXPECTED_VERSION_KIND_NO_STREAM
    assert request.events[0].payload == b'{"a": 1}'
    rpc.terminate(ingest_pb2.AppendEventsResponse(first_version=1, last_version=1), (), grpc.StatusCode.OK, "")
    box["thread"].join()
    assert box["value"].last_version == 1


@pytest.mark.parametrize(
    ("code", "reason", "expected"),
    [
        (grpc.StatusCode.ABORTED, "WRONG_EXPECTED_VERSION", WrongExpectedVersion),
        (grpc.StatusCode.ALREADY_EXISTS, "DUPLICATE_EVENT_ID", DuplicateEventId),
        (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_APPEND", InvalidRequest),
        (grpc.StatusCode.UNAVAILABLE, "STORAGE_UNAVAILABLE", ServiceUnavailable),
    ],
)
def test_errors_are_typed_by_reason(
    fake: tuple[AllSourceClient, Any], code: grpc.StatusCode, reason: str, expected: type
) -> None:
    client, channel = fake
    box = in_background(lambda: client.append("s", [event("E")]))
    _, _, rpc = channel.take_unary_unary(INGEST.methods_by_name["AppendEvents"])
    rpc.terminate(ingest_pb2.AppendEventsResponse(), rich(code, "nope", reason, actual_version="4"), code, "nope")
    box["thread"].join()
    error = box["error"]
    assert type(error) is expected
    assert (error.code, error.reason, error.metadata["actual_version"]) == (code, reason, "4")
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        assert error.violations == [("events[0].event_type", "must not be empty")]


def test_reason_wins_over_code_and_read_stream_follows_tokens(fake: tuple[AllSourceClient, Any]) -> None:
    client, channel = fake
    box = in_background(lambda: client.read_stream("s", page_size=2))
    method = QUERY.methods_by_name["ReadStream"]
    _, first, rpc = channel.take_unary_unary(method)
    assert first.page_token == "" and first.page_size == 2
    rpc.terminate(
        query_pb2.ReadStreamResponse(
            events=[event_pb2.Event(version=1), event_pb2.Event(version=2)], next_page_token="t2"
        ),
        (),
        grpc.StatusCode.OK,
        "",
    )
    _, second, rpc = channel.take_unary_unary(method)
    assert second.page_token == "t2"
    rpc.terminate(query_pb2.ReadStreamResponse(events=[event_pb2.Event(version=3)]), (), grpc.StatusCode.OK, "")
    box["thread"].join()
    assert [e.version for e in box["value"]] == [1, 2, 3]

    box = in_background(lambda: client.read_stream("missing"))
    _, _, rpc = channel.take_unary_unary(method)
    rpc.terminate(
        query_pb2.ReadStreamResponse(),
        rich(grpc.StatusCode.NOT_FOUND, "x", "STREAM_NOT_FOUND"),
        grpc.StatusCode.NOT_FOUND,
        "x",
    )
    box["thread"].join()
    assert isinstance(box["error"], StreamNotFound)


def _refused_with_retry(delay_s: float) -> tuple[Any, ...]:
    status = status_pb2.Status(code=grpc.StatusCode.UNAVAILABLE.value[0], message="busy")
    status.details.add().Pack(error_details_pb2.ErrorInfo(reason="OVERLOADED", domain="allsource.dev"))
    retry = error_details_pb2.RetryInfo()
    retry.retry_delay.FromNanoseconds(int(delay_s * 1e9))
    status.details.add().Pack(retry)
    return tuple(rpc_status.to_status(status).trailing_metadata)


def test_a_refusal_with_retry_info_is_tried_again_after_the_delay(fake: tuple[AllSourceClient, Any]) -> None:
    """RetryInfo means the server did nothing with the request: the client waits and tries again."""
    client, channel = fake
    started = time.monotonic()
    box = in_background(lambda: client.append("s", [event("E")]))
    method = INGEST.methods_by_name["AppendEvents"]
    for _ in range(2):
        _, _, rpc = channel.take_unary_unary(method)
        rpc.terminate(ingest_pb2.AppendEventsResponse(), _refused_with_retry(0.1), grpc.StatusCode.UNAVAILABLE, "")
    _, _, rpc = channel.take_unary_unary(method)
    rpc.terminate(ingest_pb2.AppendEventsResponse(first_version=7), (), grpc.StatusCode.OK, "")
    box["thread"].join()
    assert box["value"].first_version == 7 and time.monotonic() - started >= 0.2


def test_retries_stop_at_the_limit_and_other_errors_are_not_retried(fake: tuple[AllSourceClient, Any]) -> None:
    client, channel = fake
    client.retries = 1
    box = in_background(lambda: client.append("s", [event("E")]))
    method = INGEST.methods_by_name["AppendEvents"]
    for _ in range(2):
        _, _, rpc = channel.take_unary_unary(method)
        rpc.terminate(ingest_pb2.AppendEventsResponse(), _refused_with_retry(0.01), grpc.StatusCode.UNAVAILABLE, "")
    box["thread"].join()
    assert isinstance(box["error"], ServiceUnavailable) and box["error"].reason == "OVERLOADED"
    box = in_background(lambda: client.append("s", [event("E")]))
    _, _, rpc = channel.take_unary_unary(method)
    code = grpc.StatusCode.UNAVAILABLE
    rpc.terminate(ingest_pb2.AppendEventsResponse(), rich(code, "down", "STORAGE_UNAVAILABLE"), code, "down")
    box["thread"].join()  # no RetryInfo: maybe done, maybe not; the caller decides
    assert isinstance(box["error"], ServiceUnavailable)
