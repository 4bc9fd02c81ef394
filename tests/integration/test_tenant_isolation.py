"""Tenants cannot see, infer or disturb each other's data through any public read RPC.

Three tenants hold random streams, event types and client-chosen event ids, plus one stream id that all
of them use. Every public read RPC is called as each tenant, aimed both at its own data and at the
others'. A tenant must find exactly its own data, and another tenant's names and ids must answer exactly
as names and ids that were never written.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from allsource.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    event_pb2,
    query_pb2,
    query_pb2_grpc,
    tenant_pb2,
)
from allsource_client import AllSourceClient, AllSourceClientError, error_from_rpc, event

from tests.harness import Suite

FAST = {"ALLSOURCE_AUTH__ARGON2_MEMORY_KIB": "8192", "ALLSOURCE_AUTH__ARGON2_TIME_COST": "1"}
PASSWORD = "correct horse battery staple"
SHARED_STREAM = "orders-1"  # the same stream id in every tenant


@dataclass
class Tenant:
    tenant_id: str
    metadata: tuple[tuple[str, str], ...]
    key_id: str = ""
    username: str = ""
    # stream id -> the event ids written to it, in order
    streams: dict[str, list[str]] = field(default_factory=dict)
    event_types: set[str] = field(default_factory=set)

    @property
    def event_ids(self) -> set[str]:
        return {e for ids in self.streams.values() for e in ids}

    def client(self, suite: Suite) -> AllSourceClient:
        return suite.client(metadata=self.metadata)


def acting_on(suite: Suite, tenant_id: str) -> tuple[tuple[str, str], ...]:
    return (*suite.auth_metadata(), ("x-allsource-tenant", tenant_id))


def create_tenant(suite: Suite, tenant_id: str) -> Tenant:
    admin_pb2_grpc.AdminServiceStub(suite.channel("admin")).CreateTenant(
        # Unlimited: these walks are about isolation, not the plan's rate limits.
        admin_pb2.CreateTenantRequest(tenant_id=tenant_id, quota_preset=tenant_pb2.QUOTA_PRESET_UNLIMITED)
    )
    operator = auth_pb2_grpc.AuthServiceStub(suite.channel("admin", acting_on(suite, tenant_id)))
    username = f"admin-{uuid.uuid4().hex[:6]}"
    operator.CreateUser(auth_pb2.CreateUserRequest(username=username, password=PASSWORD, role=auth_pb2.ROLE_ADMIN))
    created = operator.CreateApiKey(auth_pb2.CreateApiKeyRequest(name="admin", role=auth_pb2.ROLE_ADMIN))
    return Tenant(tenant_id, (("authorization", f"Bearer {created.secret}"),), created.api_key.key_id, username)


def write_data(suite: Suite, tenant: Tenant, rng: random.Random) -> None:
    """Random streams with random event types and client-chosen ids, plus the shared stream id."""
    names = [f"{rng.choice(['acct', 'cart', 'user'])}-{uuid.uuid4().hex[:8]}" for _ in range(3)] + [SHARED_STREAM]
    with tenant.client(suite) as client:
        for stream_id in names:
            for _ in range(rng.randint(2, 5)):
                event_type = f"T{uuid.uuid4().hex[:6]}"
                event_id = str(uuid.uuid4())
                data = {"tenant": tenant.tenant_id, "stream": stream_id, rng.choice("abc"): rng.randint(0, 99)}
                client.append(stream_id, [event(event_type, data, event_id=event_id)])
                tenant.streams.setdefault(stream_id, []).append(event_id)
                tenant.event_types.add(event_type)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Suite, list[Tenant]]]:
    suite = Suite(tmp_path_factory.mktemp("isolation"), extra_env=FAST)
    try:
        suite.start_all()
        rng = random.Random(20261127)
        suffix = uuid.uuid4().hex[:6]
        tenants = [create_tenant(suite, f"{name}-{suffix}") for name in ("alpha", "beta", "gamma")]
        for tenant in tenants:
            write_data(suite, tenant, rng)
        yield suite, tenants
    finally:
        suite.stop_all()


def outcome(call: Callable[[], Any], *hide: str) -> tuple[str, str, str, str]:
    """(code, reason, message, result) of a call, with the given names masked so answers compare."""
    try:
        result, code, reason, message = call(), "OK", "", ""
    except AllSourceClientError as err:
        result, code, reason, message = None, err.code.name, err.reason, err.message
    except grpc.RpcError as err:
        e = error_from_rpc(err)
        result, code, reason, message = None, e.code.name, e.reason, e.message
    text = repr(result)
    for name in hide:
        message, text = message.replace(name, "<name>"), text.replace(name, "<name>")
    return code, reason, message, text


def others(tenants: list[Tenant], me: Tenant) -> list[Tenant]:
    return [t for t in tenants if t is not me]


def test_each_tenant_reads_exactly_its_own_events(world: tuple[Suite, list[Tenant]]) -> None:
    suite, tenants = world
    for me in tenants:
        with me.client(suite) as client:
            listed = list(client.list_events(page_size=7))
            assert {e.event_id for e in listed} == me.event_ids, me.tenant_id
            assert {e.tenant_id for e in listed} == {me.tenant_id}
            # Positions are the tenant's own: gapless from 1, whatever the others wrote in between.
            assert [e.position for e in listed] == list(range(1, len(me.event_ids) + 1))
            streamed = list(client.stream_events(batch_size=3))
            assert [e.event_id for e in streamed] == [e.event_id for e in listed]
            for stream_id, ids in me.streams.items():
                assert [e.event_id for e in client.read_stream(stream_id)] == ids
                assert [e.event_id for e in client.read_stream(stream_id, backward=True)] == ids[::-1]
                state, version = client.get_state(stream_id)
                assert version == len(ids) and state["tenant"] == me.tenant_id
            # The stream id every tenant uses holds this tenant's events only, versioned from 1.
            shared = client.read_stream(SHARED_STREAM)
            assert [e.version for e in shared] == list(range(1, len(me.streams[SHARED_STREAM]) + 1))
            assert all(json.loads(e.payload)["tenant"] == me.tenant_id for e in shared)
            page = client.query.ListStreams(query_pb2.ListStreamsRequest(page_size=100), metadata=client.metadata)
            assert {s.stream_id for s in page.streams} == set(me.streams)
            by_type = list(client.list_events(event_pb2.EventFilter(event_types=sorted(me.event_types)[:2])))
            assert {e.event_type for e in by_type} == set(sorted(me.event_types)[:2])


def test_another_tenants_names_answer_as_names_never_written(world: tuple[Suite, list[Tenant]]) -> None:
    """GetEvent, ReadStream, GetEntityState, ListEvents, StreamEvents, ListStreams and Subscribe, aimed at
    another tenant's ids, stream ids and event types, answer exactly as for random ones."""
    suite, tenants = world
    checked = 0
    for me in tenants:
        with me.client(suite) as client:

            def probes(stream_id: str, event_id: str, event_type: str) -> dict[str, Callable[[], Any]]:
                return {
                    "GetEvent": lambda: client.get_event(event_id),
                    "ReadStream": lambda: client.read_stream(stream_id),
                    "ReadStream backward": lambda: client.read_stream(stream_id, backward=True),
                    "GetEntityState": lambda: client.get_state(stream_id),
                    "ListEvents stream": lambda: list(client.list_events(event_pb2.EventFilter(stream_id=stream_id))),
                    "ListEvents prefix": lambda: list(
                        client.list_events(event_pb2.EventFilter(stream_id_prefix=stream_id[:-1]))
                    ),
                    "ListEvents type": lambda: list(
                        client.list_events(event_pb2.EventFilter(event_types=[event_type]))
                    ),
                    "StreamEvents type": lambda: list(
                        client.stream_events(event_pb2.EventFilter(event_types=[event_type]))
                    ),
                    "ListStreams prefix": lambda: (
                        client.query.ListStreams(
                            query_pb2.ListStreamsRequest(stream_id_prefix=stream_id), metadata=client.metadata
                        ).streams
                    ),
                    "Subscribe type": lambda: caught_up_events(
                        client, query_pb2.SubscribeRequest(event_types=[event_type])
                    ),
                    "Subscribe prefix": lambda: caught_up_events(
                        client, query_pb2.SubscribeRequest(stream_id_prefix=stream_id)
                    ),
                }

            for other in others(tenants, me):
                for stream_id, ids in other.streams.items():
                    if stream_id == SHARED_STREAM:
                        continue
                    event_type = sorted(other.event_types)[0]
                    theirs = probes(stream_id, ids[0], event_type)
                    fake_stream = f"{stream_id[:4]}-{uuid.uuid4().hex[:8]}"
                    fake_id, fake_type = str(uuid.uuid4()), "Tzzzzzz"
                    never = probes(fake_stream, fake_id, fake_type)
                    for name in theirs:
                        got = outcome(theirs[name], stream_id, ids[0], event_type)
                        want = outcome(never[name], fake_stream, fake_id, fake_type)
                        assert got == want, f"{me.tenant_id} probing {other.tenant_id}: {name}"
                        checked += 1
    assert checked >= 3 * 2 * 3 * 10


def caught_up_events(client: AllSourceClient, request: query_pb2.SubscribeRequest) -> list[str]:
    """The event ids a subscription delivers during catch-up."""
    out: list[str] = []
    for message in client.subscribe(request, timeout=10):
        if message.HasField("caught_up"):
            return out
        out.extend(e.event_id for e in message.events.events)
    raise AssertionError("subscription ended before catching up")


def test_subscriptions_catch_up_on_their_own_tenant_only(world: tuple[Suite, list[Tenant]]) -> None:
    suite, tenants = world
    for me in tenants:
        with me.client(suite) as client:
            assert set(caught_up_events(client, query_pb2.SubscribeRequest())) == me.event_ids


def test_statistics_keys_users_and_audit_are_per_tenant(world: tuple[Suite, list[Tenant]]) -> None:
    suite, tenants = world
    for me in tenants:
        admin = admin_pb2_grpc.AdminServiceStub(suite.channel("admin", me.metadata))
        auth = auth_pb2_grpc.AuthServiceStub(suite.channel("admin", me.metadata))
        stats = admin.GetTenantStats(admin_pb2.GetTenantStatsRequest()).stats
        assert stats.tenant_id == me.tenant_id
        assert stats.events == len(me.event_ids) and stats.streams == len(me.streams)
        assert stats.api_keys == 1 and stats.users == 1
        keys = auth.ListApiKeys(auth_pb2.ListApiKeysRequest()).api_keys
        assert [k.key_id for k in keys] == [me.key_id]
        users = auth.ListUsers(auth_pb2.ListUsersRequest()).users
        assert [u.username for u in users] == [me.username]
        audit = admin.ListAuditEvents(admin_pb2.ListAuditEventsRequest()).events
        assert audit, "the operator's acts on this tenant (creating its user and key) are in its audit copy"
        assert {a.tenant_id for a in audit} == {me.tenant_id}
        for other in others(tenants, me):
            with pytest.raises(grpc.RpcError) as err:
                admin.ListAuditEvents(admin_pb2.ListAuditEventsRequest(tenant_id=other.tenant_id))
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert error_from_rpc(err.value).reason == "CROSS_TENANT_DENIED"


def test_naming_another_tenant_needs_the_operate_permission(world: tuple[Suite, list[Tenant]]) -> None:
    suite, tenants = world
    me, other = tenants[0], tenants[1]
    request_id = f"cross-{uuid.uuid4().hex}"
    denied = query_pb2_grpc.QueryServiceStub(
        suite.channel("query", (*me.metadata, ("x-allsource-tenant", other.tenant_id), ("x-request-id", request_id)))
    )
    with pytest.raises(grpc.RpcError) as err:
        denied.ReadStream(query_pb2.ReadStreamRequest(stream_id=SHARED_STREAM))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_from_rpc(err.value).reason == "CROSS_TENANT_DENIED"
    # Naming one's own tenant is allowed and changes nothing.
    own = query_pb2_grpc.QueryServiceStub(suite.channel("query", (*me.metadata, ("x-allsource-tenant", me.tenant_id))))
    got = own.ReadStream(query_pb2.ReadStreamRequest(stream_id=SHARED_STREAM)).events
    assert [e.event_id for e in got] == me.streams[SHARED_STREAM]
    # The operator may, and the act is audited: who, what, which tenant, when, outcome.
    request_id = f"operate-{uuid.uuid4().hex}"
    started = time.time()
    operator = query_pb2_grpc.QueryServiceStub(
        suite.channel("query", (*acting_on(suite, other.tenant_id), ("x-request-id", request_id)))
    )
    got = operator.ReadStream(query_pb2.ReadStreamRequest(stream_id=SHARED_STREAM)).events
    assert [e.event_id for e in got] == other.streams[SHARED_STREAM]
    admin = admin_pb2_grpc.AdminServiceStub(suite.channel("admin"))
    entry = None
    deadline = time.monotonic() + 5
    while entry is None and time.monotonic() < deadline:
        listed = admin.ListAuditEvents(admin_pb2.ListAuditEventsRequest(tenant_id=other.tenant_id, page_size=1000))
        entry = next((a for a in listed.events if a.request_id == request_id and a.outcome == "OK"), None)
        time.sleep(0.1)
    assert entry is not None, "the operator's read of another tenant is not in the audit log"
    assert entry.action == "/allsource.v1.QueryService/ReadStream"
    assert entry.tenant_id == other.tenant_id and entry.actor_tenant_id == "default"
    assert entry.actor and abs(entry.time.ToSeconds() - started) < 10
    # The tenant sees the act in its own copy of the audit log.
    theirs = admin_pb2_grpc.AdminServiceStub(suite.channel("admin", other.metadata))
    assert request_id in {a.request_id for a in theirs.ListAuditEvents(admin_pb2.ListAuditEventsRequest()).events}


def test_concurrent_writers_each_subscription_sees_its_own_events_in_order(
    world: tuple[Suite, list[Tenant]],
) -> None:
    """All tenants write at once; each tenant's live subscription gets its own events only, gapless."""
    suite, tenants = world
    per_writer, writers = 40, 2
    received: dict[str, list[event_pb2.Event]] = {t.tenant_id: [] for t in tenants}
    written: dict[str, list[str]] = {t.tenant_id: [] for t in tenants}
    lock = threading.Lock()
    ready = threading.Barrier(len(tenants) + 1)
    errors: list[BaseException] = []

    def subscriber(me: Tenant) -> None:
        try:
            with me.client(suite) as client:
                want = per_writer * writers
                live = False
                for message in client.subscribe(query_pb2.SubscribeRequest(from_end=True), timeout=60):
                    if message.HasField("caught_up") and not live:
                        live = True
                        ready.wait(timeout=30)
                    received[me.tenant_id].extend(message.events.events)
                    if len(received[me.tenant_id]) >= want:
                        return
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)
            ready.abort()

    def writer(me: Tenant, n: int) -> None:
        try:
            with me.client(suite) as client:
                for i in range(per_writer):
                    event_id = str(uuid.uuid4())
                    with lock:
                        written[me.tenant_id].append(event_id)
                    client.append(f"live-{n}-{i % 3}", [event("Live", {"tenant": me.tenant_id}, event_id=event_id)])
        except BaseException as exc:
            errors.append(exc)

    subs = [threading.Thread(target=subscriber, args=(t,)) for t in tenants]
    for thread in subs:
        thread.start()
    ready.wait(timeout=30)
    pens = [threading.Thread(target=writer, args=(t, n)) for t in tenants for n in range(writers)]
    for thread in pens:
        thread.start()
    for thread in pens + subs:
        thread.join(timeout=90)
    assert not errors, errors
    for me in tenants:
        got = received[me.tenant_id]
        assert {e.tenant_id for e in got} == {me.tenant_id}
        assert sorted(e.event_id for e in got) == sorted(written[me.tenant_id])
        positions = [e.position for e in got]
        first = len(me.event_ids) + 1  # the tenant's earlier events took positions 1..n
        assert positions == list(range(first, first + len(got))), f"{me.tenant_id}: not gapless"
        for stream in {e.stream_id for e in got}:
            versions = [e.version for e in got if e.stream_id == stream]
            assert versions == list(range(1, len(versions) + 1))
        for e in got:
            me.streams.setdefault(e.stream_id, []).append(e.event_id)


def test_message_texts_do_not_name_other_tenants(world: tuple[Suite, list[Tenant]]) -> None:
    """No error message a tenant can provoke carries another tenant's id."""
    suite, tenants = world
    me = tenants[0]
    names = {t.tenant_id for t in others(tenants, me)}
    texts: list[str] = []
    with me.client(suite) as client:
        for other in others(tenants, me):
            for stream_id, ids in other.streams.items():
                texts.append(" ".join(outcome(lambda i=ids[0]: client.get_event(i))))  # type: ignore[misc]
                texts.append(" ".join(outcome(lambda s=stream_id: client.read_stream(s))))  # type: ignore[misc]
    assert not [t for t in texts if any(re.search(re.escape(n), t) for n in names)]
