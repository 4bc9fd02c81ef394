"""Edges of the per-call chain, found by review: what one caller's request may cost everyone else.

- Rate debt: an append past limits.max_batch_events is refused by validation, but the rate limiter charged
  it first. It must not leave the tenant's bucket, or the global bucket every tenant shares, in debt.
- Login slots: calls without credentials (Login) once shared one share of the admission stage's slots
  (limits.max_in_flight_calls_per_tenant): one tenant's logins starved every other tenant's.
- tracestate: OpenTelemetry logged each malformed tracestate member, the caller's own bytes, once a call.
- The message limit: an append the public service accepted, within a few bytes of grpc.max_message_bytes,
  failed on its way to storage (RESOURCE_EXHAUSTED / STORAGE_ERROR: it looked like a quota).
- Metadata bytes: limits.max_metadata_bytes counted characters, so four-byte characters got four times
  the room.

Each case is a refusal or a success the committed code got wrong; the suites with particular settings are
module-scoped, the rest run on the session suite.
"""

from __future__ import annotations

import collections
import threading
import time
import uuid
from collections.abc import Iterator

import grpc
import pytest
from allsource.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    event_pb2,
    ingest_pb2,
    ingest_pb2_grpc,
    query_pb2,
    query_pb2_grpc,
    tenant_pb2,
)

from services.suite import ORDER
from tests.harness import StartedSuites, Suite, wait_until
from tests.limits.support import Refusal, Tenant, append_request, make_tenant, refusal

TIMEOUT = 30
MiB = 1024 * 1024
PASSWORD = "correct horse battery staple"
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

# Suites started by this module, checked after every test for processes that exited.
STARTED = StartedSuites()


def outcome(call: object, *args: object, **kw: object) -> Refusal | None:
    """None when the call succeeds, else its refusal taken apart."""
    try:
        call(*args, **kw)  # type: ignore[operator]
    except grpc.RpcError as err:
        return refusal(err)
    return None


def started(workdir: pytest.TempPathFactory, name: str, env: dict[str, str]) -> Iterator[Suite]:
    with STARTED.started(workdir.mktemp(name), env) as running:
        yield running


@pytest.fixture(autouse=True)
def processes_survive(suite: Suite) -> Iterator[None]:
    yield
    STARTED.assert_alive(suite)


# -- 1: a refused append leaves no rate debt ------------------------------------------------------------


@pytest.fixture(scope="module")
def rated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    """A suite-wide rate limit: 1,000 units a second for all tenants together."""
    yield from started(tmp_path_factory, "rated", {"ALLSOURCE_LIMITS__GLOBAL_UNITS_PER_SECOND": "1000"})


def test_an_append_refused_as_invalid_leaves_no_rate_debt(rated: Suite) -> None:
    """Tenant A (100 units/s, burst 200) sends one append of 1,000,000 empty events: refused as invalid
    (past limits.max_batch_events), and nothing else. Right after, A's own one-event append and tenant B's
    (unlimited plan, only the global 1,000 units/s) are served. Before, the refused append was charged a
    million units before validation: A was RATE_LIMITED for 9,998 s and B, through the global bucket,
    for 998 s."""
    quotas = tenant_pb2.TenantQuotas(max_request_units_per_second=100, max_request_units_burst=200)
    a = make_tenant(rated, "noisy", tenant_pb2.QUOTA_PRESET_CUSTOM, quotas)
    b = make_tenant(rated, "quiet", tenant_pb2.QUOTA_PRESET_UNLIMITED)
    try:
        ingest_a, ingest_b = a.ingest(), b.ingest()
        assert outcome(ingest_b.AppendEvents, append_request("b-1"), metadata=b.metadata, timeout=TIMEOUT) is None
        huge = ingest_pb2.AppendEventsRequest(stream_id="a-1", events=[event_pb2.EventData()] * 1_000_000)
        got = outcome(ingest_a.AppendEvents, huge, metadata=a.metadata, timeout=120)
        assert got is not None and got.code == "INVALID_ARGUMENT", got
        for tenant, stub, stream in ((a, ingest_a, "a-2"), (b, ingest_b, "b-2")):
            got = outcome(stub.AppendEvents, append_request(stream), metadata=tenant.metadata, timeout=TIMEOUT)
            assert got is None, f"{tenant.tenant_id}: {got}"
    finally:
        a.close()
        b.close()


def test_batch_append_paced_by_a_rate_limit_keeps_one_streams_order(rated: Suite) -> None:
    """A tenant at 10 units/s (burst 50) sends three BatchAppend requests to one stream: 50, 40 and 1
    events. Each is paced by the rate, and they are written in the order sent: versions 1-50, 51-90, 91.
    Before, each request waited off its own cost independently, so the 1-event request overtook the
    40-event one still waiting (versions 42-91, 1-40, 41)."""
    quotas = tenant_pb2.TenantQuotas(max_request_units_per_second=10, max_request_units_burst=50)
    t = make_tenant(rated, "paced", tenant_pb2.QUOTA_PRESET_CUSTOM, quotas)
    try:
        sizes = (50, 40, 1)
        messages = [
            ingest_pb2.BatchAppendRequest(append=append_request("s-1", n), correlation_id=str(i))
            for i, n in enumerate(sizes)
        ]
        got = {
            r.request_index: (r.success.first_version, r.success.last_version)
            for r in t.ingest().BatchAppend(iter(messages), metadata=t.metadata, timeout=60)
        }
        assert got == {0: (1, 50), 1: (51, 90), 2: (91, 91)}, got
    finally:
        t.close()


# -- 2: one tenant's logins leave other tenants' logins room ----------------------------------------------


@pytest.fixture(scope="module")
def narrow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    """Four calls in flight per tenant; password hashing at its default (slow) cost."""
    yield from started(tmp_path_factory, "narrow", {"ALLSOURCE_LIMITS__MAX_IN_FLIGHT_CALLS_PER_TENANT": "4"})


def user_of(suite: Suite, name: str) -> tuple[Tenant, str]:
    """A tenant (no quotas) with a developer user of PASSWORD; the tenant and the username."""
    tenant = make_tenant(suite, name, tenant_pb2.QUOTA_PRESET_UNLIMITED)
    username = f"u{uuid.uuid4().hex[:10]}"
    tenant.auth().CreateUser(
        auth_pb2.CreateUserRequest(username=username, password=PASSWORD, role=auth_pb2.ROLE_DEVELOPER),
        metadata=tenant.metadata,
        timeout=TIMEOUT,
    )
    return tenant, username


def test_one_tenants_logins_leave_room_for_another_tenants(narrow: Suite) -> None:
    """Forty threads log a user of tenant A in, with its correct password, over and over: A's four slots
    (limits.max_in_flight_calls_per_tenant) stay full, and A's extra logins are refused. Meanwhile a user
    of tenant B logs in with its password, three times: each is served. Before, every call without
    credentials counted against one shared share, and B was refused RESOURCE_EXHAUSTED (RATE_LIMITED,
    max_in_flight_calls_per_tenant)."""
    a, mallory = user_of(narrow, "flooder")
    b, alice = user_of(narrow, "victim")
    stop = threading.Event()
    seen: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()
    channel = narrow.raw_channel("admin")
    stub = auth_pb2_grpc.AuthServiceStub(channel)
    flood = auth_pb2.LoginRequest(tenant_id=a.tenant_id, username=mallory, password=PASSWORD)

    def flooder() -> None:
        while not stop.is_set():
            got = outcome(stub.Login, flood, timeout=60)
            key = "OK" if got is None else f"{got.code}/{got.reason}/{got.metadata.get('limit', '')}"
            with lock:
                seen[key] += 1
            if got is not None:
                time.sleep(0.01)  # a refusal comes back at once: try again soon, without spinning

    full = "RESOURCE_EXHAUSTED/RATE_LIMITED/max_in_flight_calls_per_tenant"
    threads = [threading.Thread(target=flooder, daemon=True) for _ in range(40)]
    try:
        for thread in threads:
            thread.start()
        wait_until(lambda: seen[full], 30, "tenant A's slots full (its own logins refused)")
        time.sleep(0.2)
        with lock:
            refused_before = seen[full]
        answers = []
        for _ in range(3):
            request = auth_pb2.LoginRequest(tenant_id=b.tenant_id, username=alice, password=PASSWORD)
            with narrow.raw_channel("admin") as own:
                answers.append(outcome(auth_pb2_grpc.AuthServiceStub(own).Login, request, timeout=TIMEOUT))
        with lock:
            refused_during = seen[full] - refused_before
    finally:
        stop.set()
        for thread in threads:
            thread.join(90)
        channel.close()
        a.close()
        b.close()
    assert answers == [None] * 3, f"tenant B's logins during A's flood: {answers}; A's: {dict(seen)}"
    # A's slots were full all along (its extra logins refused while B logged in), and its logins got in.
    assert refused_during > 0 and seen["OK"] > 0, dict(seen)


# -- 3: a caller's tracestate is not written to the log ---------------------------------------------------


def tracestates(marker: str) -> dict[str, str]:
    return {
        # One malformed member (a key with a space) of about 2 KB: past the 512 characters a tracestate
        # may have, dropped unread.
        "malformed-2KB": f"BAD KEY={marker}" + "Z" * 2000,
        # Under 512 characters: read, found malformed, dropped without a word.
        "malformed-short": f"vendor=ok,BAD KEY={marker}" + "Z" * 300,
        # Well-formed members past 512 characters, then a malformed one.
        "past-512": ",".join(f"vendor{i}=" + "x" * 30 for i in range(20)) + f",BAD KEY={marker}",
    }


def public_call(suite: Suite, i: int, metadata: tuple[tuple[str, str], ...]) -> None:
    """The i-th of a round of calls: admin, query and ingest in turn, with and without credentials."""
    service = ("admin", "query", "ingest")[i % 3]
    md = (*metadata, *(suite.auth_metadata() if i % 2 else ()))
    with suite.raw_channel(service) as channel:
        if service == "admin":
            call = auth_pb2_grpc.AuthServiceStub(channel).WhoAmI
            request: object = auth_pb2.WhoAmIRequest()
        elif service == "query":
            call = query_pb2_grpc.QueryServiceStub(channel).ListStreams
            request = query_pb2.ListStreamsRequest(page_size=1)
        else:
            call = ingest_pb2_grpc.IngestServiceStub(channel).AppendEvents
            request = ingest_pb2.AppendEventsRequest()
        outcome(call, request, metadata=md, timeout=TIMEOUT)  # served or refused: only the log matters


@pytest.mark.parametrize("shape", ["malformed-2KB", "malformed-short", "past-512"])
def test_a_callers_tracestate_is_never_logged(suite: Suite, shape: str) -> None:
    """Fifty calls to the public services, each with a valid traceparent and a tracestate holding a marker
    no one else sends: no service's log has a line with the marker. Before, each call wrote a WARNING
    ("Member doesn't match the w3c identifiers format") with the caller's bytes: 300 calls, 2.2 MB."""
    marker = f"edgemark{uuid.uuid4().hex}"
    state = tracestates(marker)[shape]
    assert (len(state) > 512) == (shape != "malformed-short")
    for i in range(50):
        public_call(suite, i, (("traceparent", TRACEPARENT), ("tracestate", state)))
    for name in ORDER:
        lines = [line for line in suite.log(name).splitlines() if marker in line]
        assert not lines, f"{name} logged the caller's tracestate {len(lines)} times: {lines[0][:300]}"


# -- 4: an append near the message limit ------------------------------------------------------------------


def sized_append(stream_id: str, target: int) -> ingest_pb2.AppendEventsRequest:
    """An append of exactly `target` serialized bytes, within every other limit: seven payloads of 1 MiB
    (limits.max_batch_bytes is 8 MiB), the rest event metadata (each at most 16,000 bytes)."""
    big = event_pb2.EventData(event_type="E", payload=b'"' + b"a" * (MiB - 2) + b'"')
    request = ingest_pb2.AppendEventsRequest(stream_id=stream_id, events=[big] * 7)

    def filler(n: int) -> event_pb2.EventData:
        return event_pb2.EventData(event_type="E", payload=b"1", metadata={"m": "x" * max(0, n)})

    while target - request.ByteSize() > 32_000:
        request.events.append(filler(16_000))
    request.events.append(filler((target - request.ByteSize()) // 2))
    request.events.append(filler(target - request.ByteSize() - 30))
    last = request.events[-1].metadata
    while request.ByteSize() > target:
        last["m"] = last["m"][:-1]
    while request.ByteSize() < target:
        last["m"] += "x"
    assert request.ByteSize() == target and all(len(e.metadata.get("m", "")) <= 16_000 for e in request.events)
    return request


def test_an_append_just_under_the_message_limit_is_written(suite: Suite, unique: str) -> None:
    """An append of 16 MiB - 50 bytes (grpc.max_message_bytes is 16 MiB) is written: its last version is
    the stream's. Before, the public service accepted it and the call to storage, with the tenant and a
    scope added, went over the same limit: RESOURCE_EXHAUSTED / STORAGE_ERROR, nothing written."""
    md = suite.create_tenant(f"{unique}big".rstrip("-"))
    request = sized_append("near-limit", 16 * MiB - 50)
    options = [("grpc.max_send_message_length", 64 * MiB)]
    with grpc.insecure_channel(suite.address("ingest"), options=options) as channel:
        try:
            reply = ingest_pb2_grpc.IngestServiceStub(channel).AppendEvents(request, metadata=md, timeout=120)
        except grpc.RpcError as err:
            raise AssertionError(f"refused: {refusal(err)}") from None
    assert reply.last_version == len(request.events)
    with suite.raw_channel("query") as channel:
        read = query_pb2_grpc.QueryServiceStub(channel).ReadStream(
            query_pb2.ReadStreamRequest(
                stream_id="near-limit", page_size=1, direction=query_pb2.READ_DIRECTION_BACKWARD
            ),
            metadata=md,
            timeout=TIMEOUT,
        )
    assert [e.version for e in read.events] == [len(request.events)]


# -- 5: metadata is counted in bytes ----------------------------------------------------------------------


def test_event_metadata_is_bounded_in_bytes_not_characters(suite: Suite, unique: str) -> None:
    """Metadata of 4,100 four-byte characters (16,400 UTF-8 bytes; limits.max_metadata_bytes is 16,384)
    is refused INVALID_ARGUMENT with a violation on the event's metadata, and nothing is written. Before,
    its 4,101 characters were counted and it was accepted (up to 64 KiB got through)."""
    md = suite.create_tenant(f"{unique}meta".rstrip("-"))
    metadata = {"k": "\U0001f600" * 4100}
    assert sum(len(k.encode()) + len(v.encode()) for k, v in metadata.items()) == 16_401
    request = ingest_pb2.AppendEventsRequest(
        stream_id="wide-1", events=[event_pb2.EventData(event_type="E", payload=b"{}", metadata=metadata)]
    )
    with suite.raw_channel("ingest") as channel:
        got = outcome(ingest_pb2_grpc.IngestServiceStub(channel).AppendEvents, request, metadata=md, timeout=TIMEOUT)
    assert got is not None and got.code == "INVALID_ARGUMENT", got
    assert "events[0].metadata" in got.violations, got.violations
    with suite.raw_channel("query") as channel:
        read = outcome(
            query_pb2_grpc.QueryServiceStub(channel).ReadStream,
            query_pb2.ReadStreamRequest(stream_id="wide-1"),
            metadata=md,
            timeout=TIMEOUT,
        )
    assert read is not None and (read.code, read.reason) == ("NOT_FOUND", "STREAM_NOT_FOUND"), read
