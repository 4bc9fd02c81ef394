"""Hostile and unlucky clients: cancellations, orderings, malformed input. Nothing may crash, reorder or
return INTERNAL for bad input."""

from __future__ import annotations

import base64
import json
import threading
import time

import grpc
import pytest
from allsource.v1 import event_pb2, ingest_pb2, ingest_pb2_grpc, query_pb2, query_pb2_grpc
from allsource_client import event, exact
from google.protobuf import timestamp_pb2

from services.suite import ORDER
from tests.harness import Suite


def all_alive(suite: Suite) -> bool:
    return all(suite.procs[name].poll() is None for name in ORDER)


def test_cancelling_subscriptions_mid_catch_up_crashes_nothing(fresh_suite: Suite) -> None:
    suite = fresh_suite.start_all()
    with suite.client() as client:
        for n in range(5):
            client.append(f"orders-{n}", [event("Placed", {"i": i}) for i in range(1000)])
    query = query_pb2_grpc.QueryServiceStub(suite.channel("query"))
    for attempt in range(25):
        call = query.Subscribe(
            query_pb2.SubscribeRequest(stream_id_prefix="orders-", event_types=["Placed"], max_batch_size=5)
        )
        for _ in call:
            break  # one message, then hang up while storage is still catching up
        call.cancel()
        if attempt % 5 == 0:
            time.sleep(0.05)
    # Query and storage have both ended every cancelled subscription (one access line each) before the
    # processes are looked at.
    for name, method in (
        ("query", "/allsource.v1.QueryService/Subscribe"),
        ("storage", "/allsource.storage.v1.StorageService/Subscribe"),
    ):
        suite.wait_until(
            lambda n=name, m=method: suite.log(n).count(f'"method":"{m}') >= 25 or not all_alive(suite),
            timeout=20,
            what=f"{name} ending the 25 cancelled subscriptions",
        )
    assert all_alive(suite), {n: suite.procs[n].poll() for n in ORDER}
    with suite.client() as client:
        assert client.append("after", [event("E")]).first_version == 1


def test_batch_append_keeps_request_order_on_a_stream_under_a_bulk_backlog(fresh_suite: Suite) -> None:
    """A bulk backlog opens a second storage call; appends to one stream must still commit in order."""
    suite = fresh_suite.start_all()
    ingest = ingest_pb2_grpc.IngestServiceStub(suite.channel("ingest"))
    payload = json.dumps({"pad": "x" * 600}).encode()

    def requests():  # type: ignore[no-untyped-def]
        for n in range(120):
            yield ingest_pb2.BatchAppendRequest(
                append=ingest_pb2.AppendEventsRequest(
                    stream_id="ordered",
                    expected_version=exact(n * 50),
                    events=[event_pb2.EventData(event_type="E", payload=payload) for _ in range(50)],
                )
            )

    for response in ingest.BatchAppend(requests(), timeout=120):
        assert response.WhichOneof("result") == "success", (response.request_index, response.error)
        assert response.success.first_version == response.request_index * 50 + 1


def test_malformed_payloads_and_tokens_are_invalid_argument_not_internal(suite: Suite, unique: str) -> None:
    ingest = ingest_pb2_grpc.IngestServiceStub(suite.channel("ingest"))
    query = query_pb2_grpc.QueryServiceStub(suite.channel("query"))
    for payload in (b"[" * 5000 + b"]" * 5000, b'{"a": "\\ud800"}', b"NaN", b"1e999999"):
        with pytest.raises(grpc.RpcError) as err:
            ingest.AppendEvents(
                ingest_pb2.AppendEventsRequest(
                    stream_id=unique + "s", events=[event_pb2.EventData(event_type="E", payload=payload)]
                )
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, payload[:20]
    ingest.AppendEvents(ingest_pb2.AppendEventsRequest(stream_id=unique + "s", events=[event("E")]))

    def forged(cursor: dict[str, object], fingerprint: str = "x") -> str:
        raw = json.dumps({"f": fingerprint, "c": cursor}).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    for cursor in ({"v": 2**70}, {"v": True}, {"v": -1}, {"v": "1"}, {"p": 2**64}, {"s": "\udcff"}, {"s": 5}):
        for call in (
            lambda t: query.ReadStream(query_pb2.ReadStreamRequest(stream_id=unique + "s", page_token=t)),
            lambda t: query.ListEvents(query_pb2.ListEventsRequest(page_token=t)),
            lambda t: query.ListStreams(query_pb2.ListStreamsRequest(page_token=t)),
        ):
            with pytest.raises(grpc.RpcError) as err:
                call(forged(cursor))
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_loose_inputs_are_refused(suite: Suite, unique: str) -> None:
    ingest = ingest_pb2_grpc.IngestServiceStub(suite.channel("ingest"))
    query = query_pb2_grpc.QueryServiceStub(suite.channel("query"))
    ingest.AppendEvents(ingest_pb2.AppendEventsRequest(stream_id=unique + "s", events=[event("E")]))
    bad_time = timestamp_pb2.Timestamp(seconds=10, nanos=2_000_000_000)
    cases = [
        lambda: query.ReadStream(query_pb2.ReadStreamRequest(stream_id=unique + "s", direction=7)),
        lambda: query.GetEvent(
            query_pb2.GetEventRequest(event_id="z" * 8 + "-" + "z" * 4 + "-" + "z" * 4 + "-" + "z" * 4 + "-" + "z" * 12)
        ),
        lambda: query.ListEvents(query_pb2.ListEventsRequest(filter=event_pb2.EventFilter(start_time=bad_time))),
        lambda: query.GetEntityState(query_pb2.GetEntityStateRequest(stream_id=unique + "s", as_of_time=bad_time)),
        lambda: ingest.AppendEvents(
            ingest_pb2.AppendEventsRequest(stream_id=unique + "\u202egnp.exe", events=[event("E")])
        ),
        lambda: ingest.AppendEvents(ingest_pb2.AppendEventsRequest(stream_id=unique + "a\u2028b", events=[event("E")])),
        lambda: ingest.AppendEvents(
            ingest_pb2.AppendEventsRequest(stream_id=unique + "s", events=[event("Typ\u200fe")])
        ),
    ]
    for case in cases:
        with pytest.raises(grpc.RpcError) as err:
            case()
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_entity_state_keeps_big_integers_exact(suite: Suite, unique: str) -> None:
    with suite.client() as client:
        client.append(
            unique + "big", [event_pb2.EventData(event_type="E", payload=b'{"n": 123456789012345678901234567890}')]
        )
        state, _ = client.get_state(unique + "big")
    assert state == {"n": 123456789012345678901234567890}


def test_a_cancelled_subscription_releases_its_storage_stream_promptly(suite: Suite, unique: str) -> None:
    with suite.client() as client:
        client.append(unique + "x", [event("E")])
    query = query_pb2_grpc.QueryServiceStub(suite.channel("query"))
    request_id = f"{unique}subscription"  # storage's access line of this subscription names it
    call = query.Subscribe(
        query_pb2.SubscribeRequest(from_end=True, stream_id_prefix=unique), metadata=(("x-request-id", request_id),)
    )
    seen = threading.Event()

    def read() -> None:
        try:
            for _ in call:
                seen.set()
        except grpc.RpcError:
            pass  # cancelled by the test

    def cancelled_in_storage() -> int:
        return sum(
            1
            for line in suite.log("storage").splitlines()
            if "/Subscribe" in line and '"CANCELLED"' in line and f'"request_id":"{request_id}"' in line
        )

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert seen.wait(5)  # caught_up
    call.cancel()
    deadline = time.monotonic() + 0.8  # storage ends its side well under a second after the client hangs up
    while cancelled_in_storage() == 0:
        if time.monotonic() > deadline:
            pytest.fail("storage kept the upstream subscription open after the client cancelled")
        time.sleep(0.05)


def test_event_ids_must_be_hex_uuids(suite: Suite) -> None:
    query = query_pb2_grpc.QueryServiceStub(suite.channel("query"))
    with pytest.raises(grpc.RpcError) as err:
        query.GetEvent(query_pb2.GetEventRequest(event_id="0190c3a0-0000-7000-8000-00000000000g"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
