"""Consumer groups on real processes: sharing, order, redelivery, nacks, parking, replay, restarts, quota."""

from __future__ import annotations

import threading
import time
from collections import Counter

import grpc
import pytest
from allsource.v1 import groups_pb2, query_pb2_grpc, tenant_pb2
from google.protobuf import duration_pb2
from grpc_status import rpc_status

from tests.groups.support import Consumer, append, create_group, group_status
from tests.harness import Suite, wait_until

N = 10_000


def fast(**kw: object) -> groups_pb2.ConsumerGroupSettings:
    """Settings with a short ack timeout, for the redelivery tests."""
    return groups_pb2.ConsumerGroupSettings(ack_timeout=duration_pb2.Duration(nanos=500_000_000), **kw)  # type: ignore[arg-type]


def reason_of(err: grpc.RpcError) -> str:
    from google.rpc import error_details_pb2

    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    return ""


def test_three_consumers_share_events_each_acked_exactly_once(suite: Suite, unique: str) -> None:
    md = suite.create_tenant(f"{unique}share".rstrip("-"))
    create_group(suite, md, name="share", stream_id_prefix=unique)
    consumers = [Consumer(suite, md, "share", f"c{i}") for i in range(3)]
    try:
        # All three in the group before the events come: otherwise, on a loaded machine, two had taken
        # everything before the third had joined (seen once on two workers: 5,500, 4,500 and 0).
        for c in consumers:
            c.wait_joined()
        for i in range(4):
            append(suite, md, f"{unique}{i}", N // 4)
        wait_until(lambda: sum(len(c.acked) for c in consumers) >= N, 60, "every event acked")
        time.sleep(0.3)
        received = Counter(p for c in consumers for p, _, _ in c.received)
        assert len(received) == N and set(received.values()) == {1}  # no failure: exactly once each
        assert all(c.received for c in consumers), [len(c.received) for c in consumers]
        status = wait_until(lambda: (s := group_status(suite, md, "share")).status.lag == 0 and s, 10, "lag 0")
        assert status.status.checkpoint == status.status.head_position
        assert len(status.status.consumers) == 3
    finally:
        for c in consumers:
            c.close()


def test_by_stream_keeps_each_streams_order(suite: Suite, unique: str) -> None:
    md = suite.create_tenant(f"{unique}order".rstrip("-"))
    create_group(
        suite,
        md,
        name="ordered",
        settings=groups_pb2.ConsumerGroupSettings(strategy=groups_pb2.CONSUMER_STRATEGY_BY_STREAM),
    )
    for i in range(6):
        append(suite, md, f"{unique}{i}", 50)
    in_flight: dict[str, int] = {}
    overlap: list[str] = []
    lock = threading.Lock()

    def slow_ack(delivered: groups_pb2.DeliveredEvent) -> str:
        with lock:
            if in_flight.get(delivered.event.stream_id):
                overlap.append(delivered.event.stream_id)
            in_flight[delivered.event.stream_id] = 1
        time.sleep(0.001)
        with lock:
            in_flight[delivered.event.stream_id] = 0
        return "ack"

    consumers = [Consumer(suite, md, "ordered", f"c{i}", policy=slow_ack) for i in range(3)]
    try:
        wait_until(lambda: sum(len(c.acked) for c in consumers) >= 300, 60, "every event acked")
        merged = sorted(((p, s) for c in consumers for p, s, _ in c.received))
        per_stream: dict[str, list[int]] = {}
        # Each consumer's deliveries of a stream are in position order, and a stream's events never
        # overlap in flight: one consumer's batch holds at most one event of a stream.
        for c in consumers:
            seen: dict[str, int] = {}
            for p, s, _ in c.received:
                assert p > seen.get(s, 0), (s, p, seen.get(s))
                seen[s] = p
        assert not overlap
        for p, s in merged:
            per_stream.setdefault(s, []).append(p)
        assert all(len(v) == 50 for v in per_stream.values())
    finally:
        for c in consumers:
            c.close()


def test_unacked_events_of_a_dead_consumer_go_to_the_others(suite: Suite, unique: str) -> None:
    md = suite.create_tenant(f"{unique}dead".rstrip("-"))
    create_group(suite, md, name="dead", settings=groups_pb2.ConsumerGroupSettings(max_in_flight_per_consumer=50))
    append(suite, md, f"{unique}a", 200)
    dying = Consumer(suite, md, "dead", "dying", policy=lambda _: "hold")
    wait_until(lambda: len(dying.received) >= 50, 20, "the dying consumer holds a batch")
    held = {p for p, _, _ in dying.received}
    dying.close()
    others = [Consumer(suite, md, "dead", f"c{i}") for i in range(2)]
    try:
        wait_until(lambda: set().union(*(set(c.acked) for c in others)) >= held, 30, "held events redelivered")
        redelivered = [(p, r) for c in others for p, _, r in c.received if p in held]
        assert all(r >= 1 for _, r in redelivered)  # they come back with a retry count
        wait_until(lambda: sum(len(c.acked) for c in others) >= 200, 30, "all acked")
    finally:
        for c in others:
            c.close()


def test_nack_retry_park_skip_and_ack_timeout(suite: Suite, unique: str) -> None:
    md = suite.create_tenant(f"{unique}nack".rstrip("-"))
    create_group(suite, md, name="nacks", settings=fast(max_retries=2))
    append(suite, md, f"{unique}a", 40)
    # by position modulo 4: 0 retry until parked, 1 park, 2 skip, 3 ack; each first delivery of a
    # position ending in 5 is held (never acked): it comes back after the ack timeout.
    held_once: set[int] = set()

    def policy(d: groups_pb2.DeliveredEvent) -> str:
        p = d.event.position
        if p % 10 == 5 and p not in held_once:
            held_once.add(p)
            return "hold"
        return ("retry", "park", "skip", "ack")[p % 4]

    consumer = Consumer(suite, md, "nacks", "c", policy=policy)
    try:
        # 10 retried past max_retries (2) + 10 parked = 20 parked
        wait_until(lambda: group_status(suite, md, "nacks").status.parked_count == 20, 30, "20 parked")
        wait_until(lambda: group_status(suite, md, "nacks").status.lag == 0, 30, "checkpoint at the head")
        got = Counter(p for p, _, _ in consumer.received)
        retries = [got[p] for p in got if p % 4 == 0]
        assert set(retries) <= {3, 4}  # first delivery + 2 retries (+1 when first held), then parked
        assert all(got[p] == 1 for p in got if p % 4 in (1, 2) and p % 10 != 5)
        timed_out = [r for p, _, r in consumer.received if p in held_once and r >= 1]
        assert timed_out, "a held event came back after the ack timeout with a retry count"
        stub = query_pb2_grpc.QueryServiceStub(suite.channel("query", md))
        parked = stub.ListParked(groups_pb2.ListParkedRequest(group="nacks", page_size=7))
        assert len(parked.events) == 7 and parked.next_page_token
        rest = stub.ListParked(
            groups_pb2.ListParkedRequest(group="nacks", page_size=7, page_token=parked.next_page_token)
        )
        assert rest.events[0].event.position > parked.events[-1].event.position
        reasons = {e.reason for e in parked.events}
        assert any("max retries" in r for r in reasons) and "test park" in reasons
    finally:
        consumer.close()


def test_replay_parked_delivers_them_again(suite: Suite, unique: str) -> None:
    md = suite.create_tenant(f"{unique}replay".rstrip("-"))
    create_group(suite, md, name="replay")
    append(suite, md, f"{unique}a", 30)
    parking = Consumer(suite, md, "replay", "parker", policy=lambda d: "park" if d.event.position % 3 == 0 else "ack")
    wait_until(lambda: group_status(suite, md, "replay").status.parked_count == 10, 30, "10 parked")
    parking.close()
    stub = query_pb2_grpc.QueryServiceStub(suite.channel("query", md))
    again = Consumer(suite, md, "replay", "again")
    try:
        assert stub.ReplayParked(groups_pb2.ReplayParkedRequest(group="replay")).replayed == 10
        wait_until(lambda: len(again.acked) >= 10, 20, "parked events delivered again")
        assert {p for p in again.acked} == {p for p in range(1, 31) if p % 3 == 0}
        wait_until(lambda: group_status(suite, md, "replay").status.parked_count == 0, 10, "none parked")
        assert not stub.ListParked(groups_pb2.ListParkedRequest(group="replay")).events
    finally:
        again.close()


def test_group_crud_and_quota(suite: Suite, unique: str) -> None:
    tenant = f"{unique}quota".rstrip("-")
    md = suite.create_tenant(tenant, quota_preset=tenant_pb2.QUOTA_PRESET_FREE)
    stub = query_pb2_grpc.QueryServiceStub(suite.channel("query", md))
    create_group(suite, md, name="one")
    create_group(suite, md, name="two", stream_id=f"{unique}x")
    with pytest.raises(grpc.RpcError) as exists:
        create_group(suite, md, name="one")
    assert exists.value.code() == grpc.StatusCode.ALREADY_EXISTS and reason_of(exists.value) == "CONSUMER_GROUP_EXISTS"
    with pytest.raises(grpc.RpcError) as over:  # the FREE plan allows 2 groups
        create_group(suite, md, name="three")
    assert over.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and reason_of(over.value) == "QUOTA_EXCEEDED"
    with pytest.raises(grpc.RpcError) as bad:
        create_group(suite, md, name="bad name!")
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT and reason_of(bad.value) == "INVALID_CONSUMER_GROUP"
    page = stub.ListConsumerGroups(groups_pb2.ListConsumerGroupsRequest(page_size=1))
    assert [g.name for g in page.groups] == ["one"] and page.next_page_token
    page = stub.ListConsumerGroups(groups_pb2.ListConsumerGroupsRequest(page_size=1, page_token=page.next_page_token))
    assert [g.name for g in page.groups] == ["two"]
    updated = stub.UpdateConsumerGroup(
        groups_pb2.UpdateConsumerGroupRequest(
            group=groups_pb2.ConsumerGroup(name="one", settings=groups_pb2.ConsumerGroupSettings(max_retries=3)),
            update_mask={"paths": ["settings.max_retries"]},
        )
    )
    assert updated.group.settings.max_retries == 3 and updated.group.settings.max_in_flight_per_consumer == 1000
    stub.DeleteConsumerGroup(groups_pb2.DeleteConsumerGroupRequest(name="one"))
    with pytest.raises(grpc.RpcError) as gone:
        group_status(suite, md, "one")
    assert reason_of(gone.value) == "CONSUMER_GROUP_NOT_FOUND"
    create_group(suite, md, name="three")  # room again after the deletion


def _restart_run(fresh_suite: Suite, service: str) -> None:
    """Consume while `service` is killed with -9 and restarted: every event is acked at least once, and
    only events that were not acked before the kill come twice."""
    fresh_suite.start_all()
    md = fresh_suite.create_tenant("restarts")
    create_group(fresh_suite, md, name="r")
    total = 3000
    append(fresh_suite, md, "s-1", total)

    def slow(_: groups_pb2.DeliveredEvent) -> str:
        time.sleep(0.002)  # ~1,000 events/s for the two: the kill comes while most are still to do
        return "ack"

    consumers = [Consumer(fresh_suite, md, "r", f"c{i}", policy=slow) for i in range(2)]
    wait_until(lambda: sum(len(c.acked) for c in consumers) >= total // 3, 30, "a third acked")
    # Acked well before the kill (their acks had time to reach storage): with storage up throughout (query
    # killed), none of these may come again; a storage restart resumes from its saved checkpoint instead.
    acked_early = {p for c in consumers for p in c.acked}
    time.sleep(0.3)
    fresh_suite.kill(service)
    acked_at_kill = len({p for c in consumers for p in c.acked})
    fresh_suite.start(service)  # meanwhile the consumers work through what they were sent before the kill
    acked_before = {p for c in consumers for p in c.acked}
    for c in consumers:
        c.close()
    consumers = [Consumer(fresh_suite, md, "r", f"d{i}") for i in range(2)]
    try:
        wait_until(
            lambda: acked_before.union(*(set(c.acked) for c in consumers)) >= set(range(1, total + 1)),
            60,
            "every event acked at least once",
        )
        assert set(range(1, total + 1)) <= acked_before | {p for c in consumers for p in c.acked}
        assert acked_at_kill < total * 0.8, "the kill came once nearly everything was done"
        if service == "query":
            again = {p for c in consumers for p, _, _ in c.received} & acked_early
            assert not again, f"{len(again)} events acked before the kill were delivered again"
    finally:
        for c in consumers:
            c.close()


def test_query_killed_and_restarted_loses_no_event(fresh_suite: Suite) -> None:
    _restart_run(fresh_suite, "query")


def test_storage_killed_and_restarted_loses_no_event(fresh_suite: Suite) -> None:
    _restart_run(fresh_suite, "storage")
