"""Consumer-group options on real processes: where a group starts (end, a position), its filters (event
types, one exact stream), the in-flight figures GetConsumerGroup reports, the consumer bound, and parked
events kept across kill -9 restarts of storage and query."""

from __future__ import annotations

from collections.abc import Sequence

from allsource.v1 import groups_pb2, query_pb2_grpc

from tests.groups.support import Consumer, append, create_group, group_status
from tests.groups.test_consumer_groups import reason_of
from tests.harness import Suite, wait_until


def delivered_positions(suite: Suite, md: Sequence[tuple[str, str]], consumer: Consumer) -> set[int]:
    """The positions the consumer acked once its group has no lag: the group's checkpoint reached the head
    only after every event it delivered was acked (the consumer notes an ack as it sends it), so nothing
    more can arrive."""
    wait_until(lambda: group_status(suite, md, consumer.group).status.lag == 0, 30, f"{consumer.group}: no lag")
    return set(consumer.acked)


def test_a_group_starts_at_the_end_or_a_position_and_filters_by_type_and_exact_stream(
    suite: Suite, unique: str
) -> None:
    md = suite.create_tenant(f"{unique}opts".rstrip("-"))  # a tenant of its own: positions start at 1
    append(suite, md, f"{unique}a", 10)  # 1..10
    append(suite, md, f"{unique}a", 5, kind="Tock")  # 11..15
    append(suite, md, f"{unique}b", 5)  # 16..20
    create_group(suite, md, name="from-end", start=groups_pb2.CONSUMER_GROUP_START_END)
    create_group(suite, md, name="from-15", start=groups_pb2.CONSUMER_GROUP_START_POSITION, start_position=15)
    create_group(suite, md, name="tocks", event_types=["Tock"])
    create_group(suite, md, name="only-b", stream_id=f"{unique}b")
    create_group(suite, md, name="a-prefix-no-tocks", stream_id_prefix=f"{unique}a", event_types=["Tick"])
    append(suite, md, f"{unique}a", 3)  # 21..23, after every group was created
    consumers = {name: Consumer(suite, md, name, f"{name}-c") for name in ("from-end", "from-15", "tocks", "only-b")}
    consumers["a-prefix-no-tocks"] = Consumer(suite, md, "a-prefix-no-tocks", "c")
    try:
        assert delivered_positions(suite, md, consumers["from-end"]) == {21, 22, 23}
        assert delivered_positions(suite, md, consumers["from-15"]) == set(range(16, 24))
        assert delivered_positions(suite, md, consumers["tocks"]) == set(range(11, 16))
        assert delivered_positions(suite, md, consumers["only-b"]) == set(range(16, 21))
        assert delivered_positions(suite, md, consumers["a-prefix-no-tocks"]) == {*range(1, 11), 21, 22, 23}
    finally:
        for consumer in consumers.values():
            consumer.close()


def test_in_flight_is_reported_per_consumer_and_a_group_takes_at_most_64_consumers(suite: Suite, unique: str) -> None:
    md = suite.create_tenant(f"{unique}flight".rstrip("-"))
    create_group(suite, md, name="held")
    append(suite, md, f"{unique}a", 20)
    holder = Consumer(suite, md, "held", "holder", policy=lambda _: "hold", max_in_flight=5)
    others: list[Consumer] = []
    try:
        status = wait_until(
            lambda: (s := group_status(suite, md, "held").status).in_flight == 5 and s, 20, "5 events in flight"
        )
        assert [(c.name, c.in_flight) for c in status.consumers] == [("holder", 5)]
        assert status.checkpoint == 0 and status.lag == 20
        others = [Consumer(suite, md, "held", f"o{i}", policy=lambda _: "hold", max_in_flight=1) for i in range(63)]
        for consumer in others:
            consumer.wait_joined()
        late = Consumer(suite, md, "held", "one-too-many")
        wait_until(lambda: late.error is not None, 20, "the 65th consumer refused")
        assert late.error is not None and reason_of(late.error) == "TOO_MANY_CONSUMERS"
        late.close()
        assert len(group_status(suite, md, "held").status.consumers) == 64
    finally:
        for consumer in [holder, *others]:
            consumer.close()


def test_parked_events_survive_kill_9_of_storage_and_query(fresh_suite: Suite) -> None:
    fresh_suite.start_all()
    md = fresh_suite.create_tenant("parking")
    create_group(fresh_suite, md, name="p")
    append(fresh_suite, md, "s-1", 30)
    parker = Consumer(fresh_suite, md, "p", "parker", policy=lambda d: "park" if d.event.position % 3 == 0 else "ack")
    wait_until(lambda: group_status(fresh_suite, md, "p").status.parked_count == 10, 30, "10 parked")
    parker.close()
    for service in ("storage", "query"):
        fresh_suite.kill(service)
        fresh_suite.start(service)
    stub = query_pb2_grpc.QueryServiceStub(fresh_suite.channel("query", md))
    parked = stub.ListParked(groups_pb2.ListParkedRequest(group="p", page_size=100)).events
    assert sorted(p.event.position for p in parked) == [p for p in range(1, 31) if p % 3 == 0]
    status = group_status(fresh_suite, md, "p").status
    # Counted from the parked events' records: the group's own record, rewritten a little after each
    # move, may predate the last parks (it did once on two workers: 10 records, a count of 0).
    assert status.parked_count == 10
    # The checkpoint is the last one saved, so events acked after it come again (at least once), and
    # none at or below it does.
    restarted_at = status.checkpoint
    parked_positions = {p for p in range(1, 31) if p % 3 == 0}
    again = Consumer(fresh_suite, md, "p", "again")
    try:
        assert stub.ReplayParked(groups_pb2.ReplayParkedRequest(group="p")).replayed == 10
        # Replayed events stay parked until acked: none parked means every one came again and was acked.
        wait_until(lambda: group_status(fresh_suite, md, "p").status.parked_count == 0, 30, "every replay acked")
        assert parked_positions <= set(again.acked)
        assert all(p > restarted_at for p in set(again.acked) - parked_positions), (restarted_at, again.acked)
    finally:
        again.close()
