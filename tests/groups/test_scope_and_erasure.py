"""Consumer groups and what surrounds them: a scoped credential's groups stay within its scope (and it may not
use a group that reaches beyond it), erasure reaches parked and buffered events, a deactivated tenant's
Consume ends, an oversized ack is refused whole, and quota usage counts the groups."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import grpc
import pytest
from allsource.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    event_pb2,
    groups_pb2,
    ingest_pb2,
    ingest_pb2_grpc,
    lifecycle_pb2,
    query_pb2,
    query_pb2_grpc,
    tenant_pb2,
)

from tests.groups.support import Consumer, append, create_group, group_status
from tests.harness import Suite, wait_until
from tests.limits.support import Refusal, make_tenant, refusal

Metadata = tuple[tuple[str, str], ...]


def refused(call: Any, request: Any, timeout: float = 20) -> Refusal:
    """The refusal of a unary call (fails, naming the request, when the call succeeds)."""
    try:
        call(request, timeout=timeout)
    except grpc.RpcError as err:
        return refusal(err)
    raise AssertionError(f"{type(request).__name__} was accepted: {str(request)[:300]}")


def scoped_key(suite: Suite, md: Metadata, role: int, prefix: str = "", types: Sequence[str] = ()) -> Metadata:
    """An API key of the tenant of `md`, of `role`, limited to a stream prefix and/or event types."""
    made = auth_pb2_grpc.AuthServiceStub(suite.channel("admin", md)).CreateApiKey(
        auth_pb2.CreateApiKeyRequest(
            name="scoped",
            role=role,  # type: ignore[arg-type]
            stream_id_prefix=prefix,
            event_types=list(types),
        ),
        timeout=20,
    )
    return (("authorization", f"Bearer {made.secret}"),)


def query(suite: Suite, md: Metadata) -> query_pb2_grpc.QueryServiceStub:
    return query_pb2_grpc.QueryServiceStub(suite.channel("query", md))


def ingest(suite: Suite, md: Metadata) -> ingest_pb2_grpc.IngestServiceStub:
    return ingest_pb2_grpc.IngestServiceStub(suite.channel("ingest", md))


def streams_of(consumer: Consumer) -> set[str]:
    return {s for _, s, _ in consumer.received}


def ended(consumer: Consumer, timeout: float = 10) -> grpc.RpcError:
    """The status a consumer's stream ended with (fails if it has not ended within `timeout` seconds)."""
    consumer.thread.join(max(0.0, timeout))
    got = [(p, s) for p, s, _ in consumer.received]
    if consumer.thread.is_alive():
        pytest.fail(f"the Consume stream did not end within {timeout:.1f} s; it delivered {len(got)}: {got[:8]}")
    if consumer.error is None:
        pytest.fail(f"the Consume stream ended with OK; it delivered {len(got)}: {got[:8]}")
    return consumer.error


# -- 1, 2: scope ----------------------------------------------------------------------------------------


def test_a_scoped_keys_group_stays_within_its_prefix(suite: Suite, unique: str) -> None:
    md = suite.create_tenant(f"{unique}scope".rstrip("-"))
    # b- events before, between and after the a- ones: a group reaching beyond a- would deliver them first.
    for stream in ("b-1", "a-1", "b-2", "a-2", "b-3"):
        append(suite, md, stream, 3)
    key = scoped_key(suite, md, auth_pb2.ROLE_SERVICE_ACCOUNT, prefix="a-")
    for name in ("by-full", "by-scoped"):
        made = create_group(suite, key, name=name)  # no filter: the key's prefix is its filter
        assert made.stream_id_prefix == "a-", f"CreateConsumerGroup answered {made.stream_id_prefix!r}"
        assert group_status(suite, md, name).group.stream_id_prefix == "a-"
    consumers = [Consumer(suite, md, "by-full", "full"), Consumer(suite, key, "by-scoped", "scoped")]
    try:
        for c in consumers:
            wait_until(
                lambda c=c: len({p for p, s, _ in c.received if s.startswith("a-")}) >= 6 or c.error,
                20,
                f"{c.name}: the six a- events",
            )
            assert c.error is None, c.error
        time.sleep(0.3)  # anything beyond the prefix would have come with or before them
        for c in consumers:
            assert streams_of(c) == {"a-1", "a-2"}, (c.name, sorted(streams_of(c)))
    finally:
        for c in consumers:
            c.close()
    beyond = refused(
        query(suite, key).CreateConsumerGroup,
        groups_pb2.CreateConsumerGroupRequest(group=groups_pb2.ConsumerGroup(name="beyond", stream_id_prefix="b-")),
    )
    assert (beyond.code, beyond.reason) == ("PERMISSION_DENIED", "SCOPE_RESTRICTED"), beyond


@pytest.mark.parametrize(
    "role",
    [
        # Read and write: ReplayParked (which needs write) is refused for the scope too.
        pytest.param(auth_pb2.ROLE_SERVICE_ACCOUNT, id="read-write"),
        pytest.param(auth_pb2.ROLE_READ_ONLY, id="read-only"),
    ],
)
@pytest.mark.parametrize(
    "scope",
    [pytest.param({"prefix": "a-"}, id="prefix"), pytest.param({"types": ["Public"]}, id="event-type")],
)
def test_a_scoped_key_may_not_use_a_group_reaching_beyond_its_scope(
    suite: Suite, unique: str, scope: dict[str, object], role: int
) -> None:
    md = suite.create_tenant(f"{unique}foreign".rstrip("-"))
    append(suite, md, "b-secret", 2, kind="Secret")
    append(suite, md, "a-x1", 2, kind="Public")
    create_group(suite, md, name="all")  # by a full key, with no filter
    key = scoped_key(suite, md, role, **scope)  # type: ignore[arg-type]

    consumer = Consumer(suite, key, "all", "c")
    try:
        got = refusal(ended(consumer, 5))
    finally:
        consumer.close()
    assert (got.code, got.reason) == ("PERMISSION_DENIED", "SCOPE_RESTRICTED"), (got, consumer.received)
    assert not consumer.received
    q = query(suite, key)
    got = refused(q.ListParked, groups_pb2.ListParkedRequest(group="all"))
    assert (got.code, got.reason) == ("PERMISSION_DENIED", "SCOPE_RESTRICTED"), ("ListParked", got)
    got = refused(q.ReplayParked, groups_pb2.ReplayParkedRequest(group="all"))
    if role == auth_pb2.ROLE_SERVICE_ACCOUNT:
        assert (got.code, got.reason) == ("PERMISSION_DENIED", "SCOPE_RESTRICTED"), ("ReplayParked", got)
    else:  # no write permission: refused for that, whichever check comes first
        assert got.code == "PERMISSION_DENIED", ("ReplayParked", got)


def test_a_prefix_key_may_use_a_group_within_its_prefix(suite: Suite, unique: str) -> None:
    md = suite.create_tenant(f"{unique}within".rstrip("-"))
    append(suite, md, "b-secret", 2)
    append(suite, md, "a-x1", 2)
    create_group(suite, md, name="ax", stream_id_prefix="a-x")
    key = scoped_key(suite, md, auth_pb2.ROLE_SERVICE_ACCOUNT, prefix="a-")
    consumer = Consumer(suite, key, "ax", "c")
    try:
        wait_until(lambda: len(consumer.acked) >= 2 or consumer.error, 20, "the two a-x1 events")
        assert consumer.error is None, consumer.error
        assert streams_of(consumer) == {"a-x1"}
        parked = query(suite, key).ListParked(groups_pb2.ListParkedRequest(group="ax"), timeout=20)
        assert not parked.events
    finally:
        consumer.close()


# -- 3: erasure -----------------------------------------------------------------------------------------


def test_erased_parked_events_are_neither_listed_nor_replayed(suite: Suite, unique: str) -> None:
    md = suite.create_tenant(f"{unique}parked".rstrip("-"))
    create_group(suite, md, name="parker")
    append(suite, md, "user-42", 2, kind="Pii")
    append(suite, md, "keep-1", 2)
    append(suite, md, "user-43", 2, kind="Pii")
    parking = Consumer(suite, md, "parker", "parker", policy=lambda _: "park")
    try:
        wait_until(lambda: group_status(suite, md, "parker").status.parked_count == 6, 20, "six parked")
    finally:
        parking.close()
    erased = ingest(suite, md).DeleteEvents(lifecycle_pb2.DeleteEventsRequest(stream_id_prefix="user-"), timeout=30)
    assert erased.events_deleted == 4
    q = query(suite, md)

    listed: list[list[tuple[int, str]]] = []

    def only_kept() -> bool:
        parked = q.ListParked(groups_pb2.ListParkedRequest(group="parker"), timeout=20).events
        listed.append([(p.event.position, p.event.stream_id) for p in parked])
        return {s for _, s in listed[-1]} == {"keep-1"}

    try:
        wait_until(only_kept, 10)
    except AssertionError:
        raise AssertionError(f"ListParked after the erasure: {listed[-1]}") from None
    again = Consumer(suite, md, "parker", "again")
    try:
        assert q.ReplayParked(groups_pb2.ReplayParkedRequest(group="parker"), timeout=20).replayed == 2
        wait_until(lambda: len(again.acked) >= 2, 20, "the two keep-1 events delivered again")
        time.sleep(0.3)
        assert streams_of(again) == {"keep-1"}, sorted(again.received)
    finally:
        again.close()


@pytest.mark.parametrize("removal", ["delete-events", "soft-delete-stream"])
def test_buffered_events_removed_meanwhile_are_not_delivered(suite: Suite, unique: str, removal: str) -> None:
    md = suite.create_tenant(f"{unique}buffer".rstrip("-"))
    create_group(suite, md, name="slow")
    append(suite, md, "keep-1", 1)  # position 1: delivered and held
    append(suite, md, "user-42", 3, kind="Pii")  # 2-4: read into the group's buffer, waiting
    append(suite, md, "keep-1", 2)  # 5-6
    released = threading.Event()
    consumer = Consumer(
        suite, md, "slow", "c", policy=lambda _: "ack" if released.is_set() else "hold", max_in_flight=1
    )
    try:
        wait_until(lambda: consumer.received or consumer.error, 20, "the first event delivered")
        assert consumer.error is None, consumer.error
        assert [(p, s) for p, s, _ in consumer.received] == [(1, "keep-1")]
        if removal == "delete-events":
            erased = ingest(suite, md).DeleteEvents(
                lifecycle_pb2.DeleteEventsRequest(stream_id_prefix="user-"), timeout=30
            )
            assert erased.events_deleted == 3
        else:
            ingest(suite, md).DeleteStream(ingest_pb2.DeleteStreamRequest(stream_id="user-42"), timeout=30)
        gone = query(suite, md).ListEvents(
            query_pb2.ListEventsRequest(filter=event_pb2.EventFilter(stream_id_prefix="user-")), timeout=20
        )
        assert not gone.events  # removed for readers at once
        released.set()
        consumer.ack([1])
        wait_until(lambda: {5, 6} <= set(consumer.acked) or consumer.error, 20, "the later keep-1 events")
        assert consumer.error is None, consumer.error
        time.sleep(0.3)
        assert streams_of(consumer) == {"keep-1"}, sorted(consumer.received)
    finally:
        consumer.close()


# -- 4: deactivation ------------------------------------------------------------------------------------


def test_a_deactivated_tenants_consume_ends_like_its_subscribe(suite: Suite, unique: str) -> None:
    tenant = f"{unique}deact".rstrip("-")
    md = suite.create_tenant(tenant)
    append(suite, md, "s-1", 200)
    create_group(suite, md, name="g")

    def slow(_: groups_pb2.DeliveredEvent) -> str:
        time.sleep(0.05)
        return "ack"

    subscribe_ended: list[grpc.RpcError | None] = []

    def subscriber() -> None:
        try:
            for _ in query(suite, md).Subscribe(query_pb2.SubscribeRequest(), timeout=20):
                pass
            subscribe_ended.append(None)
        except grpc.RpcError as err:
            subscribe_ended.append(err)

    sub = threading.Thread(target=subscriber, daemon=True)
    sub.start()
    consumer = Consumer(suite, md, "g", "c", policy=slow, max_in_flight=2)
    operator = admin_pb2_grpc.AdminServiceStub(suite.channel("admin"))
    try:
        wait_until(lambda: consumer.acked or consumer.error, 20, "the consumer at work")
        assert consumer.error is None, consumer.error
        started = time.monotonic()
        operator.DeactivateTenant(admin_pb2.DeactivateTenantRequest(tenant_id=tenant), timeout=20)
        err = ended(consumer, 3 - (time.monotonic() - started))
        sub.join(5)
        assert subscribe_ended and subscribe_ended[0] is not None, "Subscribe did not end with an error"
        expected = subscribe_ended[0].code()
        assert expected == grpc.StatusCode.FAILED_PRECONDITION, refusal(subscribe_ended[0])
        assert err.code() == expected, (refusal(err), f"Subscribe ended with {expected.name}")
    finally:
        consumer.close()
        operator.ActivateTenant(admin_pb2.ActivateTenantRequest(tenant_id=tenant), timeout=20)


# -- 5: oversized ack -----------------------------------------------------------------------------------


def test_an_ack_of_1001_positions_is_refused_whole(suite: Suite, unique: str) -> None:
    md = suite.create_tenant(f"{unique}bigack".rstrip("-"))
    append(suite, md, "s-1", 20)
    create_group(suite, md, name="g")
    consumer = Consumer(suite, md, "g", "c", policy=lambda _: "hold", max_in_flight=10)
    try:
        wait_until(lambda: consumer.received or consumer.error, 20, "a delivery")
        assert consumer.error is None, consumer.error
        before = group_status(suite, md, "g").status.checkpoint
        held = [p for p, _, _ in consumer.received]
        consumer.ack(held + list(range(10_000, 10_000 + 1001 - len(held))))
        got = refusal(ended(consumer))
        assert got.code == "INVALID_ARGUMENT" and "ack.positions" in got.violations, got
    finally:
        consumer.close()
    after = group_status(suite, md, "g").status
    assert after.checkpoint == before == 0, (before, after)


# -- 6: quota usage -------------------------------------------------------------------------------------


def test_quota_usage_and_tenant_stats_count_consumer_groups(suite: Suite) -> None:
    tenant = make_tenant(
        suite, "groupcount", tenant_pb2.QUOTA_PRESET_CUSTOM, tenant_pb2.TenantQuotas(max_consumer_groups=5)
    )
    for name in ("g1", "g2"):
        create_group(suite, tenant.metadata, name=name)
    admin = admin_pb2_grpc.AdminServiceStub(suite.channel("admin", tenant.metadata))

    def usage() -> admin_pb2.QuotaStatus:
        (status,) = [
            q
            for q in admin.GetQuotaUsage(admin_pb2.GetQuotaUsageRequest(), timeout=20).quotas
            if q.quota == "max_consumer_groups"
        ]
        return status

    def stats() -> tenant_pb2.QuotaUsage:
        (used,) = [
            q
            for q in admin.GetTenantStats(admin_pb2.GetTenantStatsRequest(), timeout=20).stats.quotas
            if q.quota == "max_consumer_groups"
        ]
        return used

    # Polled a little, in case the figures are gathered a moment after the change.
    for what, figures in (("GetQuotaUsage", usage), ("GetTenantStats", stats)):
        seen: list[Any] = []

        def counted(figures: Any = figures, seen: list[Any] = seen) -> bool:
            seen.append(figures())
            return (seen[-1].used, seen[-1].limit) == (2, 5)

        try:
            wait_until(counted, 5)
        except AssertionError:
            raise AssertionError(f"{what} max_consumer_groups with 2 groups (of 5): {seen[-1]}") from None
