"""A page token belongs to the request that produced it: every paginated RPC refuses it (INVALID_ARGUMENT,
INVALID_PAGE_TOKEN) for a request with any other parameter changed or made for another tenant, and
accepts it with another page size (AIP-158).

The RPCs come from the descriptors (every request with a `page_token` field), and so do the parameters
to change: each field of the request except the page size and token, each field of a nested message
(the event filter) on its own. Tokens are opaque here: only the public API is used.

Mutations this catches (each applied once and seen to fail): ListEvents' token fingerprint without the
filter ("ListEvents: filter.stream_id changed: token accepted", and so on for every filter field);
ListStreams' without the prefix; ListUsers' without the tenant ("ListUsers: the operator acting on
another tenant: token accepted"). It also found ListTenants' token bound to no tenant at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from allsource.v1 import admin_pb2, auth_pb2, event_pb2, groups_pb2, ingest_pb2, options_pb2, query_pb2
from allsource_client import error_from_rpc, event
from google.protobuf import duration_pb2, message_factory
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

from shared.auth import rbac
from tests.groups.support import Consumer, create_group, group_status
from tests.harness import Suite, wait_until

PUBLIC_MODULES = (ingest_pb2, query_pb2, admin_pb2, auth_pb2)
PROCESS = {"IngestService": "ingest", "QueryService": "query", "AdminService": "admin", "AuthService": "admin"}
PAGING = ("page_size", "page_token")
# Not parameters of the query: how fresh a replica must be before it answers (F13). A later page may ask
# for more freshness than the first without changing what is being paged through.
FRESHNESS = ("min_position",)
PASSWORD = "correct horse battery staple"
Metadata = tuple[tuple[str, str], ...]


def paginated() -> Iterator[tuple[str, ServiceDescriptor, MethodDescriptor]]:
    """(path, service, method) of every public RPC whose request takes a page token."""
    for module in PUBLIC_MODULES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                if "page_token" in method.input_type.fields_by_name:
                    yield f"/{service.full_name}/{method.name}", service, method


@dataclass
class Data:
    """What the first pages are made of (in the default tenant), and the other tenant."""

    stream_id: str
    prefix: str
    event_type: str
    other_tenant: str
    other_key: Metadata


def first_requests(data: Data) -> dict[str, Message]:
    """For each paginated RPC, a request with more than one page of results at page size 1."""
    return {
        "/allsource.v1.QueryService/ReadStream": query_pb2.ReadStreamRequest(
            stream_id=data.stream_id, direction=query_pb2.READ_DIRECTION_FORWARD
        ),
        "/allsource.v1.QueryService/ListEvents": query_pb2.ListEventsRequest(
            filter=event_pb2.EventFilter(event_types=[data.event_type])
        ),
        "/allsource.v1.QueryService/ListStreams": query_pb2.ListStreamsRequest(stream_id_prefix=data.prefix),
        "/allsource.v1.QueryService/ListConsumerGroups": groups_pb2.ListConsumerGroupsRequest(),
        "/allsource.v1.QueryService/ListParked": groups_pb2.ListParkedRequest(group=data.prefix + "g1"),
        "/allsource.v1.AdminService/ListTenants": admin_pb2.ListTenantsRequest(),
        "/allsource.v1.AdminService/ListAuditEvents": admin_pb2.ListAuditEventsRequest(),
        "/allsource.v1.AdminService/ListQuotaOverrides": admin_pb2.ListQuotaOverridesRequest(),
        "/allsource.v1.AuthService/ListUsers": auth_pb2.ListUsersRequest(),
        "/allsource.v1.AuthService/ListApiKeys": auth_pb2.ListApiKeysRequest(),
    }


def changed_value(message: Message, field: FieldDescriptor) -> None:
    """Give one scalar (or timestamp, or repeated string) field of the message another valid value."""
    name = field.name
    if field.message_type is not None and field.message_type.full_name == "google.protobuf.Timestamp":
        stamp = getattr(message, name)
        stamp.seconds = stamp.seconds + 1 if message.HasField(name) else 1_700_000_000
    elif field.is_repeated and field.type == FieldDescriptor.TYPE_STRING:
        getattr(message, name).append("Other")
    elif field.is_repeated or field.message_type is not None:
        raise AssertionError(f"no rule to change {message.DESCRIPTOR.name}.{name}: write one here")
    elif field.type == FieldDescriptor.TYPE_STRING:
        setattr(message, name, f"{getattr(message, name)}-other" if getattr(message, name) else "other")
    elif field.type == FieldDescriptor.TYPE_ENUM:
        current = getattr(message, name)
        setattr(message, name, next(v.number for v in field.enum_type.values if v.number not in (0, current)))
    elif field.type == FieldDescriptor.TYPE_BOOL:
        setattr(message, name, not getattr(message, name))
    else:
        setattr(message, name, getattr(message, name) + 1)


def variants(message: Message, prefix: str = "") -> Iterator[tuple[str, Message]]:
    """(field path, copy of the message with that one parameter changed) for every parameter."""
    for field in message.DESCRIPTOR.fields:
        if not prefix and field.name in PAGING + FRESHNESS:
            continue
        nested = field.message_type is not None and field.message_type.full_name != "google.protobuf.Timestamp"
        if nested and not field.is_repeated:
            for path, inner in variants(getattr(message, field.name), f"{prefix}{field.name}."):
                copy = type(message)()
                copy.CopyFrom(message)
                getattr(copy, field.name).CopyFrom(inner)
                yield path, copy
            continue
        copy = type(message)()
        copy.CopyFrom(message)
        changed_value(copy, field)
        yield f"{prefix}{field.name}", copy


def call(suite: Suite, method: MethodDescriptor, service: ServiceDescriptor, request: Message, md: Metadata) -> Any:
    response = message_factory.GetMessageClass(method.output_type)
    with suite.raw_channel(PROCESS[service.name]) as channel:
        rpc = channel.unary_unary(
            f"/{service.full_name}/{method.name}",
            request_serializer=type(request).SerializeToString,
            response_deserializer=response.FromString,
        )
        return rpc(request, metadata=md, timeout=20)


def with_page(request: Message, token: str, size: int = 1) -> Message:
    copy = type(request)()
    copy.CopyFrom(request)
    copy.page_size = size
    copy.page_token = token
    return copy


@pytest.fixture(scope="module")
def data(suite: Suite) -> Data:
    """Two pages of everything in the default tenant, and another tenant with an admin key of its own."""
    unique = uuid.uuid4().hex[:10]
    prefix, event_type = f"pages-{unique}-", f"Paged{unique}"
    with suite.client() as client:
        client.append(prefix + "a", [event(event_type), event(event_type), event(event_type)])
        client.append(prefix + "b", [event(event_type)])
    operator = suite.auth_metadata()
    # Two consumer groups, the first with the 3 events of stream "a" parked.
    for name in ("g1", "g2"):
        create_group(suite, operator, name=prefix + name, stream_id=prefix + "a")
    parker = Consumer(suite, operator, prefix + "g1", "parker", policy=lambda _: "park")
    try:
        wait_until(lambda: group_status(suite, operator, prefix + "g1").status.parked_count == 3, 20, "3 parked")
    finally:
        parker.close()
    auth = "/allsource.v1.AuthService/"
    for _ in range(2):
        username = f"pager-{uuid.uuid4().hex[:8]}"
        suite.channel("admin", operator).unary_unary(
            auth + "CreateUser", request_serializer=auth_pb2.CreateUserRequest.SerializeToString
        )(auth_pb2.CreateUserRequest(username=username, password=PASSWORD, role=auth_pb2.ROLE_READ_ONLY), timeout=20)
    create_key = suite.channel("admin", operator).unary_unary(
        auth + "CreateApiKey",
        request_serializer=auth_pb2.CreateApiKeyRequest.SerializeToString,
        response_deserializer=auth_pb2.CreateApiKeyResponse.FromString,
    )
    create_key(auth_pb2.CreateApiKeyRequest(name="pager", role=auth_pb2.ROLE_READ_ONLY), timeout=20)
    set_override = suite.channel("admin", operator).unary_unary(
        "/allsource.v1.AdminService/SetQuotaOverride",
        request_serializer=admin_pb2.SetQuotaOverrideRequest.SerializeToString,
    )
    for quota in ("max_projections", "max_pipelines"):  # not enforced: harmless to the other tests
        set_override(
            admin_pb2.SetQuotaOverrideRequest(
                tenant_id="default",
                quota=quota,
                value=1000,
                duration=duration_pb2.Duration(seconds=600),
                reason="paging",
            ),
            timeout=20,
        )
    other = f"pages-{unique}"
    suite.channel("admin", operator).unary_unary(
        "/allsource.v1.AdminService/CreateTenant", request_serializer=admin_pb2.CreateTenantRequest.SerializeToString
    )(admin_pb2.CreateTenantRequest(tenant_id=other), timeout=20)
    acting = (*operator, ("x-allsource-tenant", other))
    made = suite.channel("admin", acting).unary_unary(
        auth + "CreateApiKey",
        request_serializer=auth_pb2.CreateApiKeyRequest.SerializeToString,
        response_deserializer=auth_pb2.CreateApiKeyResponse.FromString,
    )(auth_pb2.CreateApiKeyRequest(name="admin", role=auth_pb2.ROLE_ADMIN), timeout=20)
    return Data(prefix + "a", prefix, event_type, other, (("authorization", f"Bearer {made.secret}"),))


def test_every_paginated_rpc_has_a_first_request() -> None:
    """A new paginated RPC must get a first request here."""
    table = first_requests(Data("s", "p", "T", "o", ()))
    missing = [path for path, _, _ in paginated() if path not in table]
    assert not missing, f"write a first request for: {missing}"
    for path, _, method in paginated():
        assert type(table[path]).DESCRIPTOR.full_name == method.input_type.full_name, path
        assert [name for name in PAGING if name not in method.input_type.fields_by_name] == [], path


def test_a_page_token_is_refused_for_any_other_request_or_tenant(suite: Suite, data: Data) -> None:
    operator = suite.auth_metadata()
    other_tenant_callers = {
        "the operator acting on another tenant": (*operator, ("x-allsource-tenant", data.other_tenant)),
        "another tenant (its own key)": data.other_key,
    }
    admin_permissions = rbac.permissions_of(auth_pb2.ROLE_ADMIN, tenant_id=data.other_tenant)
    requirements = rbac.requirements(s for m in PUBLIC_MODULES for s in m.DESCRIPTOR.services_by_name.values())
    table = first_requests(data)
    problems: list[str] = []
    probed = 0
    for path, service, method in paginated():
        name = method.name
        first = call(suite, method, service, with_page(table[path], ""), operator)
        token = first.next_page_token
        assert token, f"{name}: no second page at page size 1 (create more data for it)"
        # The same request, and the same with another page size, go on from the token.
        call(suite, method, service, with_page(table[path], token), operator)
        call(suite, method, service, with_page(table[path], token, size=2), operator)

        attempts: list[tuple[str, Message, Metadata]] = [
            (f"{field} changed", changed, operator) for field, changed in variants(table[path])
        ]
        for who, metadata in other_tenant_callers.items():
            if who.startswith("another tenant") and requirements[path].permission not in admin_permissions:
                continue  # a tenant's own administrator may not call it at all
            attempts.append((who, table[path], metadata))
        for what, request, metadata in attempts:
            probed += 1
            try:
                call(suite, method, service, with_page(request, token), metadata)
                problems.append(f"{name}: {what}: token accepted")
            except grpc.RpcError as err:
                got = (err.code(), error_from_rpc(err).reason)
                if got != (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN"):
                    problems.append(f"{name}: {what}: {got[0].name} {got[1]} ({err.details()})")
    assert not problems, "\n".join(problems)
    assert probed >= 20, f"only {probed} probes"
    assert options_pb2.PERMISSION_OPERATE not in admin_permissions
