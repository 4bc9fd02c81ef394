"""Real faults against real processes, bounded in time, loopback only: nothing acknowledged is lost.

- kill -9 loop: writers append while storage is killed and restarted again and again; afterwards every
  acknowledged event is readable exactly once, versions and positions are gapless, and the writers were
  back within 2 s of storage reporting SERVING each time.
- partition: a TCP fault proxy between ingest and storage blackholes the traffic; calls fail within their
  deadline, the circuit breaker opens (calls then fail at once, with RetryInfo), and when the proxy heals
  the suite recovers with nothing acknowledged lost and nothing written twice.
- memory: a thousand subscribers that never read, beside a write load; the query process's memory stays
  bounded and a reading subscriber and the writers are unaffected.
- overload: far more concurrent appends than the process serves, for a while; every call succeeds or is
  refused at once with retry information, successful calls stay fast enough, nothing is lost.

Each test's size is bounded for the default run; ALLSOURCE_SOAK=1 runs the full sizes of the issue.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
import pytest
from allsource.v1 import event_pb2, ingest_pb2, ingest_pb2_grpc, query_pb2, query_pb2_grpc
from allsource_client import status_from_call
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.suite import SERVICE_NAMES
from tests.faultproxy import BLACKHOLE, PASS, fault_proxy
from tests.harness import Suite

SOAK = os.environ.get("ALLSOURCE_SOAK") == "1"
Metadata = tuple[tuple[str, str], ...]


def details(err: grpc.RpcError) -> tuple[str, str, float | None]:
    status = status_from_call(err)
    reason, retry = "", None
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            delay = error_details_pb2.RetryInfo()
            detail.Unpack(delay)
            retry = delay.retry_delay.ToNanoseconds() / 1e9
    return err.code().name, reason, retry


def serving(suite: Suite, name: str) -> bool:
    with grpc.insecure_channel(suite.address(name)) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAMES[name]), timeout=0.5
            )
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


@dataclass
class Writer:
    """Appends one event at a time to its own streams, each with a request id and its own event id,
    retrying the same append until it is acknowledged (so a retry can never write twice)."""

    suite: Suite
    name: str
    deadline_s: float = 2.0
    acked: list[tuple[str, str, int, int]] = field(default_factory=list)  # stream, event id, version, position
    successes: list[float] = field(default_factory=list)  # when each append was acknowledged
    stop: threading.Event = field(default_factory=threading.Event)
    refusals: dict[str, int] = field(default_factory=dict)

    def run(self) -> None:
        stub = ingest_pb2_grpc.IngestServiceStub(self.suite.channel("ingest"))
        n = 0
        while not self.stop.is_set():
            stream = f"{self.name}-{n % 4}"
            event_id = str(uuid.uuid4())
            request = ingest_pb2.AppendEventsRequest(
                stream_id=stream,
                events=[event_pb2.EventData(event_id=event_id, event_type="W", payload=b"{}")],
                request_id=f"{self.name}-{n}",
            )
            while not self.stop.is_set():
                try:
                    reply = stub.AppendEvents(request, timeout=self.deadline_s)
                except grpc.RpcError as err:
                    code, reason, retry = details(err)
                    key = f"{code}/{reason}"
                    self.refusals[key] = self.refusals.get(key, 0) + 1
                    time.sleep(min(retry or 0.05, 0.5))
                    continue
                self.acked.append((stream, event_id, reply.first_version, reply.first_position))
                self.successes.append(time.monotonic())
                break
            n += 1


def check_exactly_once(suite: Suite, writers: list[Writer]) -> int:
    with suite.client(timeout=60) as client:
        log = list(client.list_events(page_size=1000))
    positions = [e.position for e in log]
    assert positions == list(range(1, len(log) + 1)), "tenant positions must be gapless from 1"
    by_id: dict[str, list[event_pb2.Event]] = {}
    for e in log:
        by_id.setdefault(e.event_id, []).append(e)
    versions: dict[str, list[int]] = {}
    for e in log:
        versions.setdefault(e.stream_id, []).append(e.version)
    for stream, seen in versions.items():
        assert seen == list(range(1, len(seen) + 1)), f"stream {stream} versions are not gapless"
    acked = [a for w in writers for a in w.acked]
    for stream, event_id, version, position in acked:
        stored = by_id.get(event_id, [])
        assert len(stored) == 1, f"acknowledged event {event_id} stored {len(stored)} times"
        assert (stored[0].stream_id, stored[0].version, stored[0].position) == (stream, version, position)
    return len(acked)


@pytest.fixture
def chaos_suite(tmp_path: object) -> Iterator[Suite]:
    suite = Suite(tmp_path / "chaos")  # type: ignore[operator]
    try:
        yield suite
    finally:
        suite.stop_all()


def test_kill_9_loop_loses_nothing_and_clients_are_back_within_2_s(chaos_suite: Suite) -> None:
    suite = chaos_suite.start_all()
    duration, every = (60.0, 10.0) if SOAK else (20.0, 5.0)
    writers = [Writer(suite, f"k{i}") for i in range(16)]
    threads = [threading.Thread(target=w.run) for w in writers]
    for t in threads:
        t.start()
    back_at: list[float] = []  # when storage reported SERVING after each restart
    started = time.monotonic()
    try:
        while time.monotonic() - started < duration - every / 2:
            time.sleep(every * random.uniform(0.7, 1.3))
            suite.kill("storage")
            time.sleep(0.3)
            suite.start("storage", wait=False)
            suite.wait_until(lambda: serving(suite, "storage"), timeout=30, what="storage serving again")
            back_at.append(time.monotonic())
        # every writer shows it is back after the last restart (the bound is checked below)
        suite.wait_until(
            lambda: all(any(s >= back_at[-1] for s in w.successes) for w in writers) if back_at else True,
            timeout=15,
            what="every writer appending again after the last restart",
        )
    finally:
        for w in writers:
            w.stop.set()
        for t in threads:
            t.join(30)
    assert len(back_at) >= 3, "storage was not restarted often enough to test anything"
    recoveries = []
    for at in back_at:
        firsts = [min((s for s in w.successes if s >= at), default=None) for w in writers]
        assert all(f is not None for f in firsts), "a writer never appended again after a restart"
        recoveries += [f - at for f in firsts if f is not None]
    print(
        f"{len(back_at)} restarts; back after SERVING: median {statistics.median(recoveries):.2f} s, "
        f"max {max(recoveries):.2f} s; acknowledged {sum(len(w.acked) for w in writers)}"
    )
    assert max(recoveries) <= 2.0, sorted(recoveries)[-5:]
    assert check_exactly_once(suite, writers) > 100


def test_a_partition_between_ingest_and_storage_fails_fast_and_heals(tmp_path: object) -> None:
    suite = Suite(
        tmp_path / "partition",  # type: ignore[operator]
        extra_env={"ALLSOURCE_GRPC__BREAKER_FAILURES": "2", "ALLSOURCE_GRPC__BREAKER_OPEN_S": "1"},
    )
    try:
        for name in ("storage", "admin", "query"):
            suite.start(name)
        with fault_proxy(suite.ports["storage"]) as proxy:
            # Only ingest reaches storage through the proxy.
            suite.extra_env = {**suite.extra_env, "ALLSOURCE_STORAGE__ADDRESS": proxy.address}
            suite.start("ingest")
            writers = [Writer(suite, f"p{i}", deadline_s=1.0) for i in range(4)]
            threads = [threading.Thread(target=w.run) for w in writers]
            for t in threads:
                t.start()
            suite.wait_until(lambda: all(len(w.acked) >= 5 for w in writers), timeout=30, what="writers appending")
            proxy.set_mode(BLACKHOLE)
            partitioned = time.monotonic()
            stub = ingest_pb2_grpc.IngestServiceStub(suite.channel("ingest"))
            request = ingest_pb2.AppendEventsRequest(
                stream_id="probe", events=[event_pb2.EventData(event_type="P", payload=b"{}")]
            )
            # Calls fail within their deadline, then the breaker opens and calls fail at once.
            outcomes = []
            while time.monotonic() - partitioned < 5:
                began = time.perf_counter()
                with pytest.raises(grpc.RpcError) as err:
                    stub.AppendEvents(request, timeout=1.5)
                outcomes.append((time.perf_counter() - began, *details(err.value)))
            assert all(took < 1.5 + 0.5 for took, *_ in outcomes), outcomes
            fast = [o for o in outcomes if o[0] < 0.05]
            assert fast, f"the breaker never answered at once: {outcomes[:5]}"
            assert all(code == "UNAVAILABLE" and retry for _, code, _, retry in fast), fast[:3]
            proxy.set_mode(PASS)
            healed = time.monotonic()
            suite.wait_until(lambda: _appends(stub, request), timeout=30, what="appends through the healed proxy")
            took = time.monotonic() - healed
            print(f"partition: {len(outcomes)} refused calls, {len(fast)} at once; healed in {took:.1f} s")
            suite.wait_until(
                lambda: all(any(s >= healed for s in w.successes) for w in writers),
                timeout=30,
                what="every writer appending again after the heal",
            )
            for w in writers:
                w.stop.set()
            for t in threads:
                t.join(30)
        assert check_exactly_once(suite, writers) > 10
    finally:
        suite.stop_all()


def _appends(stub: ingest_pb2_grpc.IngestServiceStub, request: ingest_pb2.AppendEventsRequest) -> bool:
    try:
        stub.AppendEvents(request, timeout=2)
    except grpc.RpcError:
        return False
    return True


def _rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_a_thousand_subscribers_that_never_read_cost_bounded_memory(tmp_path: object) -> None:
    suite = Suite(
        tmp_path / "memory",  # type: ignore[operator]
        extra_env={
            "ALLSOURCE_QUERY__MAX_SUBSCRIPTIONS_PER_TENANT": "1100",
            "ALLSOURCE_QUERY__MAX_SUBSCRIPTIONS": "2400",
            "ALLSOURCE_QUERY__SUBSCRIBER_STALL_S": "5",
        },
    )
    try:
        suite.start_all()
        query_pid = suite.procs["query"].pid
        before = _rss_mb(query_pid)
        metadata = suite.auth_metadata()
        stop = threading.Event()
        peak = [before]
        reader_lag: list[float] = []
        writer = Writer(suite, "mem")

        def stalled_subscribers() -> None:
            async def main() -> None:
                channels = [grpc.aio.insecure_channel(suite.address("query")) for _ in range(4)]
                stubs = [query_pb2_grpc.QueryServiceStub(c) for c in channels]
                calls = [stubs[i % 4].Subscribe(query_pb2.SubscribeRequest(), metadata=metadata) for i in range(1000)]
                await asyncio.get_running_loop().run_in_executor(None, stop.wait)  # and never read
                for call in calls:
                    call.cancel()
                for channel in channels:
                    await channel.close()

            asyncio.run(main())

        def reading_subscriber() -> None:
            stub = query_pb2_grpc.QueryServiceStub(suite.channel("query"))
            call = stub.Subscribe(query_pb2.SubscribeRequest(from_end=True, event_types=["Bulk"]))
            for message in call:
                if stop.is_set():
                    break
                for e in message.events.events:
                    reader_lag.append(time.time() - e.recorded_at.ToNanoseconds() / 1e9)
            call.cancel()

        def bulk_writer() -> None:
            stub = ingest_pb2_grpc.IngestServiceStub(suite.channel("ingest"))
            payload = b'{"pad":"' + b"y" * 500 + b'"}'
            n = 0
            while not stop.is_set():
                stub.AppendEvents(
                    ingest_pb2.AppendEventsRequest(
                        stream_id=f"bulk-{n % 20}",
                        events=[event_pb2.EventData(event_type="Bulk", payload=payload) for _ in range(50)],
                    ),
                    timeout=10,
                )
                n += 1
                time.sleep(0.01)

        threads = [
            threading.Thread(target=f) for f in (stalled_subscribers, reading_subscriber, bulk_writer, writer.run)
        ]
        for t in threads:
            t.start()
        duration = 40.0 if SOAK else 15.0
        started = time.monotonic()
        while time.monotonic() - started < duration:
            time.sleep(0.5)
            peak[0] = max(peak[0], _rss_mb(query_pid))
        stop.set()
        writer.stop.set()
        for t in threads:
            t.join(30)
        growth = peak[0] - before
        print(
            f"query RSS {before:.0f} MB before, peak {peak[0]:.0f} MB (+{growth:.0f} MB); reader lag p99 "
            f"{sorted(reader_lag)[int(0.99 * (len(reader_lag) - 1))] * 1000:.0f} ms over {len(reader_lag)} events"
        )
        # The stated bound (docs/OPERATIONS.md): 1,000 stalled subscribers cost the query process at most
        # 250 MB (a 64 KiB buffer and one message of at most 64 KiB each, and flow-control windows).
        assert growth < 250, growth
        assert reader_lag and sorted(reader_lag)[int(0.99 * (len(reader_lag) - 1))] < 2.0
        assert len(writer.acked) > 50 and not writer.refusals, writer.refusals
    finally:
        suite.stop_all()


def test_overload_every_call_succeeds_or_is_refused_at_once(tmp_path: object) -> None:
    # The bound lowered from 512 to 64: a Python client on this machine cannot keep 512 calls inside the
    # ingest process for long (it answers them too quickly), so the default bound was reached only in the
    # first moments, and the test would pass or fail with the machine's mood. 2,000 callers against 64 is
    # an overload every time; what is checked is the same (refusals at once, successes within bounds).
    suite = Suite(  # type: ignore[operator]
        tmp_path / "overload", extra_env={"ALLSOURCE_LIMITS__MAX_IN_FLIGHT_CALLS": "64"}
    ).start_all()
    try:
        from allsource.v1 import auth_pb2, auth_pb2_grpc

        key = (
            auth_pb2_grpc.AuthServiceStub(suite.channel("admin"))
            .CreateApiKey(auth_pb2.CreateApiKeyRequest(name="load", role=auth_pb2.ROLE_DEVELOPER))
            .secret
        )
        metadata: Metadata = (("authorization", f"Bearer {key}"),)
        duration = 20.0 if SOAK else 10.0
        ok_latency: list[float] = []
        refusal_latency: list[float] = []
        other: list[str] = []
        written: list[str] = []

        async def main() -> None:
            channels = [
                grpc.aio.insecure_channel(suite.address("ingest"), options=[("grpc.use_local_subchannel_pool", 1)])
                for _ in range(8)
            ]
            stubs = [ingest_pb2_grpc.IngestServiceStub(c) for c in channels]
            ends = time.monotonic() + duration

            async def caller(i: int) -> None:
                n = 0
                while time.monotonic() < ends:
                    request = ingest_pb2.AppendEventsRequest(
                        stream_id=f"o{i}-{n}", events=[event_pb2.EventData(event_type="O", payload=b"{}")]
                    )
                    began = time.perf_counter()
                    try:
                        await stubs[i % 8].AppendEvents(request, metadata=metadata, timeout=30)
                        ok_latency.append(time.perf_counter() - began)
                        written.append(request.stream_id)
                    except grpc.aio.AioRpcError as err:
                        code, reason, retry = details(err)  # type: ignore[arg-type]
                        if (code, reason) == ("UNAVAILABLE", "OVERLOADED") and retry:
                            refusal_latency.append(time.perf_counter() - began)
                            await asyncio.sleep(retry)
                        else:
                            other.append(f"{code}/{reason}")
                    n += 1

            # 2,000 concurrent callers: far more than the ingest process takes on (64 in flight here).
            await asyncio.gather(*(caller(i) for i in range(2000)))
            for channel in channels:
                await channel.close()

        asyncio.run(main())
        assert not other, collections_summary(other)
        assert refusal_latency, "nothing was refused: this was not an overload"
        p99 = sorted(ok_latency)[int(0.99 * (len(ok_latency) - 1))]
        refused_p50 = statistics.median(refusal_latency)
        print(
            f"overload: {len(ok_latency)} ok (p99 {p99 * 1000:.0f} ms), {len(refusal_latency)} refused "
            f"(p50 {refused_p50 * 1000:.0f} ms)"
        )
        # Loose bounds (DECISIONS.md): on a slow machine the 2,000-call Python client's own pace shows in every
        # latency (3.2 s p99 on a VM 3x slower than the one the figures in OPERATIONS.md come from); what
        # matters is that nothing waits for its 60 s deadline.
        assert p99 < 5.0, p99  # the stated bound for successful calls under overload (docs/OPERATIONS.md)
        assert refused_p50 < 5.0, refused_p50
        with suite.client(timeout=60) as client:
            stored = {e.stream_id for e in client.list_events(page_size=1000) if e.stream_id.startswith("o")}
        assert stored == set(written)
    finally:
        suite.stop_all()


def collections_summary(items: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out


def test_with_storage_down_cached_events_still_answer_and_the_rest_fails_fast(chaos_suite: Suite) -> None:
    # The breaker opens on the first call that cannot reach storage and stays open through the test, so
    # which refusal carries RetryInfo does not depend on the machine's speed.
    chaos_suite.extra_env = {"ALLSOURCE_GRPC__BREAKER_FAILURES": "1", "ALLSOURCE_GRPC__BREAKER_OPEN_S": "30"}
    suite = chaos_suite.start_all()
    with suite.client(timeout=10) as client:
        seen = client.append("degraded", [event_pb2.EventData(event_type="E", payload=b'{"a":1}')])
        other = client.append("degraded", [event_pb2.EventData(event_type="E", payload=b'{"a":2}')])
        cached = client.get_event(seen.event_ids[0])  # read once through this query replica
        suite.kill("storage")
        suite.wait_until(lambda: not serving(suite, "query"), timeout=10, what="query reporting NOT_SERVING")
        assert client.get_event(seen.event_ids[0]) == cached
        query = query_pb2_grpc.QueryServiceStub(suite.channel("query"))
        ingest = ingest_pb2_grpc.IngestServiceStub(suite.channel("ingest"))
        append = ingest_pb2.AppendEventsRequest(
            stream_id="degraded", events=[event_pb2.EventData(event_type="E", payload=b"{}")]
        )

        def refused(call: object) -> tuple[str, str, float | None]:
            began = time.perf_counter()
            with pytest.raises(grpc.RpcError) as err:
                call()  # type: ignore[operator]
            assert time.perf_counter() - began < 2.0
            return details(err.value)

        # Reads are safe to repeat: the first attempt fails, opening the breaker, which refuses the retry
        # at once with RetryInfo (a refusal that sent nothing, so any caller may try again).
        for read in (
            lambda: query.GetEvent(query_pb2.GetEventRequest(event_id=other.event_ids[0]), timeout=10),
            lambda: query.ReadStream(query_pb2.ReadStreamRequest(stream_id="degraded"), timeout=10),
        ):
            code, reason, retry = refused(read)
            assert (code, reason) == ("UNAVAILABLE", "STORAGE_UNAVAILABLE") and retry is not None and retry > 0
        # An append without a request id is not retried: its one attempt failed in transport, so whether
        # storage took it cannot be known and no RetryInfo promises that it did not (the client's
        # contract for RetryInfo). The next one meets the open breaker: refused at once, with RetryInfo.
        assert refused(lambda: ingest.AppendEvents(append, timeout=10))[:2] == ("UNAVAILABLE", "STORAGE_UNAVAILABLE")
        code, reason, retry = refused(lambda: ingest.AppendEvents(append, timeout=10))
        assert (code, reason) == ("UNAVAILABLE", "STORAGE_UNAVAILABLE") and retry is not None and retry > 0
        suite.start("storage")
        suite.wait_until(lambda: serving(suite, "query"), timeout=30, what="query serving again")
        suite.wait_until(lambda: serving(suite, "ingest"), timeout=30, what="ingest serving again")
        assert [e.version for e in client.read_stream("degraded")] == [1, 2]  # the refused appends wrote nothing
