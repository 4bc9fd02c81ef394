"""The public services' calls to storage under faults (F9 items 1 and 2), with ingest and query reaching
storage through a fault proxy (tests/faultproxy.py).

- Which calls are retried: while storage cannot be reached (the proxy resets every connection), an append
  without a request id or event ids fails at once and is not tried again (it might have been written);
  reads, and appends that storage can recognise (a request id, or an event id on every event), are
  tried again after a backoff, so a fault shorter than the retry window is never seen by the caller,
  and nothing is written twice.
- Appends waiting for storage are bounded (`ingest.max_queued_bytes`): with storage stalled, appends past
  the bound are refused at once with UNAVAILABLE / OVERLOADED and RetryInfo, those within it complete
  once storage is back, and a refused append writes nothing.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from allsource.v1 import event_pb2, ingest_pb2, ingest_pb2_grpc, query_pb2, query_pb2_grpc
from allsource_client import status_from_call
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.suite import SERVICE_NAMES
from tests.faultproxy import PASS, RESET, FaultProxy, fault_proxy
from tests.harness import Suite

Metadata = tuple[tuple[str, str], ...]
BACKOFF_S = 1.0  # grpc.retry_backoff_s here: retries wait 0.5-1.5 s, then 1-3 s, then 2-6 s
QUEUE_BYTES = 1024 * 1024  # ingest.max_queued_bytes here (the smallest it may be)


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Suite, FaultProxy]]:
    suite = Suite(
        tmp_path_factory.mktemp("storage-calls"),
        extra_env={
            "ALLSOURCE_GRPC__RETRY_BACKOFF_S": str(BACKOFF_S),
            "ALLSOURCE_GRPC__STORAGE_RETRIES": "3",
            # The breaker would hide what this tests (each failed attempt counts toward opening it).
            "ALLSOURCE_GRPC__BREAKER_FAILURES": "1000",
            "ALLSOURCE_INGEST__MAX_QUEUED_BYTES": str(QUEUE_BYTES),
            # One storage call in flight at a time, so that appends queue behind it.
            "ALLSOURCE_INGEST__COALESCE_PARALLEL_BYTES": str(64 * QUEUE_BYTES),
        },
    )
    try:
        for name in ("storage", "admin"):
            suite.start(name)
        with fault_proxy(suite.ports["storage"]) as proxy:
            suite.extra_env = {**suite.extra_env, "ALLSOURCE_STORAGE__ADDRESS": proxy.address}
            for name in ("ingest", "query"):
                suite.start(name)
            try:
                yield suite, proxy
            finally:  # while the proxy still passes: they drain in a moment instead of waiting on storage
                suite.stop_all()
    finally:
        suite.stop_all()


def ready(suite: Suite) -> Metadata:
    """Wait for ingest and query to be serving (an earlier fault is over); the operator's credentials.

    The operator's key and tenant, not a tenant made for the test: a tenant or key just created is
    announced on the change feed, which drops what the services cached of it, and a lookup in storage
    would then come before the call tested (and wait on a stalled storage, or fail on a reset one)."""
    for name in ("ingest", "query"):
        suite.wait_until(lambda n=name: _serving(suite, n), timeout=30, what=f"{name} serving")  # type: ignore[misc]
    return suite.auth_metadata()


def _serving(suite: Suite, name: str) -> bool:
    with grpc.insecure_channel(suite.address(name)) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAMES[name]), timeout=1
            )
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def refusal(err: grpc.RpcError) -> tuple[str, str, dict[str, str], float | None]:
    status = status_from_call(err)
    reason, metadata, retry = "", {}, None
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, metadata = info.reason, dict(info.metadata)
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            delay = error_details_pb2.RetryInfo()
            detail.Unpack(delay)
            retry = delay.retry_delay.ToNanoseconds() / 1e9
    return err.code().name, reason, metadata, retry


def versions(suite: Suite, metadata: Metadata, stream: str) -> list[int]:
    query = query_pb2_grpc.QueryServiceStub(suite.raw_channel("query"))
    try:
        reply = query.ReadStream(query_pb2.ReadStreamRequest(stream_id=stream), metadata=metadata, timeout=30)
    except grpc.RpcError as err:
        if err.code() == grpc.StatusCode.NOT_FOUND:
            return []
        raise
    return [e.version for e in reply.events]


def one_event(stream: str, *, request_id: str = "", event_id: str = "") -> ingest_pb2.AppendEventsRequest:
    return ingest_pb2.AppendEventsRequest(
        stream_id=stream,
        events=[event_pb2.EventData(event_id=event_id, event_type="E", payload=b"{}")],
        request_id=request_id,
    )


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    """How long the call took, and its answer or its RpcError."""
    began = time.monotonic()
    try:
        answer = call()
    except grpc.RpcError as err:
        answer = err
    return time.monotonic() - began, answer


def through_a_fault(proxy: FaultProxy, calls: dict[str, Callable[[], Any]]) -> dict[str, tuple[float, Any]]:
    """Make the calls at once while the proxy resets every connection for one second (every first
    attempt fails; retries, after 0.5-1.5 s, then 1-3 s more, find storage again); how each ended."""
    outcomes: dict[str, tuple[float, Any]] = {}

    def run(name: str, call: Callable[[], Any]) -> None:
        outcomes[name] = timed(call)

    threads = [threading.Thread(target=run, args=item) for item in calls.items()]
    proxy.set_mode(RESET)
    try:
        for t in threads:
            t.start()
        time.sleep(1.0)  # the fault's length
    finally:
        proxy.set_mode(PASS)
    for t in threads:
        t.join(30)
    return outcomes


def test_only_calls_that_are_safe_to_repeat_are_retried_when_storage_cannot_be_reached(
    faulty: tuple[Suite, FaultProxy],
) -> None:
    suite, proxy = faulty
    tenant = ready(suite)
    r = f"r{uuid.uuid4().hex[:8]}-"
    ingest = ingest_pb2_grpc.IngestServiceStub(suite.raw_channel("ingest"))
    query = query_pb2_grpc.QueryServiceStub(suite.raw_channel("query"))
    ingest.AppendEvents(one_event(r + "read"), metadata=tenant, timeout=30)
    assert versions(suite, tenant, r + "read") == [1]  # and query knows the key, so only the read needs storage

    def append(request: ingest_pb2.AppendEventsRequest) -> Callable[[], Any]:
        return lambda: ingest.AppendEvents(request, metadata=tenant, timeout=30)

    proxy.set_mode(RESET)  # storage cannot be reached: every connection is reset
    try:
        # Not safe to repeat: refused at once (a retry would first wait at least BACKOFF_S / 2).
        took, answer = timed(append(one_event(r + "plain")))
    finally:
        proxy.set_mode(PASS)
    assert isinstance(answer, grpc.RpcError), "an append went through a proxy that resets everything"
    assert refusal(answer)[:2] == ("UNAVAILABLE", "STORAGE_UNAVAILABLE"), refusal(answer)
    assert took < BACKOFF_S / 2, f"an append without a request id was tried again ({took:.2f} s)"

    # Safe to repeat, during a fault shorter than the retry window: each succeeds. The two appends meet
    # the fault one at a time: ingest would hold the second behind the first's storage call.
    read = query_pb2.ReadStreamRequest(stream_id=r + "read")
    outcomes = through_a_fault(
        proxy,
        {
            "read": lambda: query.ReadStream(read, metadata=tenant, timeout=30),
            "request id": append(one_event(r + "request-id", request_id=f"rid-{uuid.uuid4().hex}")),
        },
    )
    outcomes |= through_a_fault(proxy, {"event ids": append(one_event(r + "event-id", event_id=str(uuid.uuid4())))})
    for name, (took, answer) in outcomes.items():
        assert not isinstance(answer, grpc.RpcError), (name, refusal(answer))
        assert took >= 0.9, f"{name} answered in {took:.2f} s, before the fault ended"
    assert len(outcomes["read"][1].events) == 1
    # The retried appends were written once each; the refused one not at all.
    assert versions(suite, tenant, r + "request-id") == [1]
    assert versions(suite, tenant, r + "event-id") == [1]
    assert versions(suite, tenant, r + "plain") == []


def test_appends_past_the_queue_bound_are_refused_at_once_and_write_nothing(faulty: tuple[Suite, FaultProxy]) -> None:
    suite, _ = faulty
    tenant = ready(suite)
    q = f"q{uuid.uuid4().hex[:8]}-"
    payload = b'{"pad":"' + b"q" * 300_000 + b'"}'  # three of these fit in the queue, a fourth does not
    count = 8
    outcomes: list[tuple[str, float, Any]] = []

    async def main() -> None:
        channel = grpc.aio.insecure_channel(suite.address("ingest"))
        stub = ingest_pb2_grpc.IngestServiceStub(channel)

        async def one(i: int) -> None:
            request = ingest_pb2.AppendEventsRequest(
                stream_id=f"{q}{i}",
                events=[event_pb2.EventData(event_type="Q", payload=payload)],
                request_id=f"{q}{i}",
            )
            began = time.monotonic()
            try:
                answer: Any = await stub.AppendEvents(request, metadata=tenant, timeout=60)
            except grpc.aio.AioRpcError as err:
                answer = err
            outcomes.append((request.stream_id, time.monotonic() - began, answer))

        tasks = [asyncio.ensure_future(one(i)) for i in range(count)]
        try:
            # Storage is stalled: one call is in flight, appends queue behind it until the bound, and
            # the rest are refused while storage is still stalled (that is, at once, not at a timeout).
            deadline = time.monotonic() + 20
            while len(outcomes) < count - 1 - QUEUE_BYTES // len(payload):
                assert time.monotonic() < deadline, f"appends past the bound were not refused: {outcomes}"
                await asyncio.sleep(0.02)
            refused_while_stalled = list(outcomes)
        finally:
            suite.signal("storage", signal.SIGCONT)
        await asyncio.gather(*tasks)
        await channel.close()
        for stream, _, answer in refused_while_stalled:
            assert isinstance(answer, grpc.aio.AioRpcError), (stream, answer)
            code, reason, metadata, retry = refusal(answer)
            assert (code, reason) == ("UNAVAILABLE", "OVERLOADED"), (stream, code, reason, metadata)
            assert metadata.get("limit") == "ingest.max_queued_bytes", metadata
            assert retry is not None and retry > 0

    # Ingest knows the key first: with storage stalled, only the appends wait for it.
    ingest = ingest_pb2_grpc.IngestServiceStub(suite.raw_channel("ingest"))
    ingest.AppendEvents(one_event(q + "warm"), metadata=tenant, timeout=30)
    suite.signal("storage", signal.SIGSTOP)
    try:
        asyncio.run(main())
    finally:
        suite.signal("storage", signal.SIGCONT)
    accepted = {s for s, _, answer in outcomes if not isinstance(answer, grpc.RpcError)}
    refused = {s for s, _, answer in outcomes if isinstance(answer, grpc.RpcError)}
    assert accepted and len(refused) >= count - 1 - QUEUE_BYTES // len(payload), (accepted, refused)
    for stream, _, answer in outcomes:
        if isinstance(answer, grpc.RpcError):
            assert refusal(answer)[:2] == ("UNAVAILABLE", "OVERLOADED"), (stream, refusal(answer))
    for stream in accepted:
        assert versions(suite, tenant, stream) == [1], stream
    for stream in refused:
        assert versions(suite, tenant, stream) == [], f"refused append to {stream} was written"
