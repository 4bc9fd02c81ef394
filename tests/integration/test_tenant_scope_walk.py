"""Every public RPC, called by one tenant, touches only that tenant's data in storage.

The RPCs come from the descriptors. Each needs a probe here: a request aimed at another tenant's data
where the request names anything (its event ids, stream ids, user ids, key ids, its tenant id), so that a
handler which resolved the tenant from the request, or acted with the suite's system scope on tenant
data, would reach it. A new RPC without a probe fails the walk until one is written.

What the walk checks is what storage saw: storage names, in each access-log line, the tenants a call
touched (every tenant-scoped read, write and record access, or "*" for suite-wide figures), and the
public services pass their request id down. So for every probe, every storage call made on its behalf
must have touched the caller's tenant only (or suite-wide records that belong to no tenant, such as the
caller's own API key).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from allsource.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    event_pb2,
    ingest_pb2,
    query_pb2,
    tenant_pb2,
)
from allsource_client import event
from google.protobuf import field_mask_pb2
from google.protobuf.message import Message

from tests.harness import Suite

PUBLIC_MODULES = (ingest_pb2, query_pb2, admin_pb2, auth_pb2)
SERVICE_PROCESS = {"IngestService": "ingest", "QueryService": "query", "AdminService": "admin", "AuthService": "admin"}
FAST = {"ALLSOURCE_AUTH__ARGON2_MEMORY_KIB": "8192", "ALLSOURCE_AUTH__ARGON2_TIME_COST": "1"}
PASSWORD = "correct horse battery staple"


@dataclass
class Other:
    """The tenant whose data the probes aim at."""

    tenant_id: str
    stream_id: str
    event_id: str
    event_type: str
    user_id: str
    username: str
    key_id: str


@dataclass
class Caller:
    """The tenant making the calls."""

    tenant_id: str
    metadata: tuple[tuple[str, str], ...]
    refresh_token: str
    access_token: str


# Methods whose request names a tenant by design, with why that is not a leak.
NAMES_ITS_TENANT = {
    "/allsource.v1.AuthService/Login": "a login names the tenant it signs in to; the answer depends on the password",
}


def probes(other: Other, caller: Caller) -> dict[str, Message]:
    """The request each public RPC is probed with (aimed at the other tenant wherever a field allows)."""
    mask = field_mask_pb2.FieldMask(paths=["display_name"])
    return {
        "/allsource.v1.IngestService/AppendEvents": ingest_pb2.AppendEventsRequest(
            stream_id=other.stream_id, events=[event(other.event_type)]
        ),
        "/allsource.v1.IngestService/BatchAppend": ingest_pb2.BatchAppendRequest(
            append=ingest_pb2.AppendEventsRequest(stream_id=other.stream_id, events=[event(other.event_type)])
        ),
        "/allsource.v1.QueryService/GetEvent": query_pb2.GetEventRequest(event_id=other.event_id),
        "/allsource.v1.QueryService/ReadStream": query_pb2.ReadStreamRequest(stream_id=other.stream_id),
        "/allsource.v1.QueryService/ListEvents": query_pb2.ListEventsRequest(
            filter=event_pb2.EventFilter(stream_id=other.stream_id)
        ),
        "/allsource.v1.QueryService/StreamEvents": query_pb2.StreamEventsRequest(
            filter=event_pb2.EventFilter(event_types=[other.event_type])
        ),
        "/allsource.v1.QueryService/GetEntityState": query_pb2.GetEntityStateRequest(stream_id=other.stream_id),
        "/allsource.v1.QueryService/Subscribe": query_pb2.SubscribeRequest(stream_id_prefix=other.stream_id),
        "/allsource.v1.QueryService/ListStreams": query_pb2.ListStreamsRequest(stream_id_prefix=other.stream_id),
        "/allsource.v1.AdminService/GetSystemInfo": admin_pb2.GetSystemInfoRequest(),
        "/allsource.v1.AdminService/ReloadConfig": admin_pb2.ReloadConfigRequest(),
        "/allsource.v1.AdminService/GetConfig": admin_pb2.GetConfigRequest(),
        "/allsource.v1.AdminService/ListFeatureFlags": admin_pb2.ListFeatureFlagsRequest(),
        "/allsource.v1.AdminService/SetFeatureFlag": admin_pb2.SetFeatureFlagRequest(name="entity_state_snapshots"),
        "/allsource.v1.AdminService/CreateTenant": admin_pb2.CreateTenantRequest(tenant_id=other.tenant_id),
        "/allsource.v1.AdminService/GetTenant": admin_pb2.GetTenantRequest(tenant_id=other.tenant_id),
        "/allsource.v1.AdminService/ListTenants": admin_pb2.ListTenantsRequest(),
        "/allsource.v1.AdminService/UpdateTenant": admin_pb2.UpdateTenantRequest(
            tenant=tenant_pb2.Tenant(tenant_id=other.tenant_id, display_name="taken over"), update_mask=mask
        ),
        "/allsource.v1.AdminService/DeactivateTenant": admin_pb2.DeactivateTenantRequest(tenant_id=other.tenant_id),
        "/allsource.v1.AdminService/ActivateTenant": admin_pb2.ActivateTenantRequest(tenant_id=other.tenant_id),
        "/allsource.v1.AdminService/DeleteTenant": admin_pb2.DeleteTenantRequest(
            tenant_id=other.tenant_id, confirm_tenant_id=other.tenant_id
        ),
        "/allsource.v1.AdminService/GetTenantStats": admin_pb2.GetTenantStatsRequest(),
        "/allsource.v1.AdminService/ListAuditEvents": admin_pb2.ListAuditEventsRequest(tenant_id=other.tenant_id),
        "/allsource.v1.AuthService/Login": auth_pb2.LoginRequest(
            tenant_id=caller.tenant_id, username="nobody", password="wrong password!"
        ),
        "/allsource.v1.AuthService/RefreshToken": auth_pb2.RefreshTokenRequest(refresh_token=caller.refresh_token),
        "/allsource.v1.AuthService/Logout": auth_pb2.LogoutRequest(),
        "/allsource.v1.AuthService/RevokeToken": auth_pb2.RevokeTokenRequest(token=caller.access_token),
        "/allsource.v1.AuthService/WhoAmI": auth_pb2.WhoAmIRequest(),
        "/allsource.v1.AuthService/CreateUser": auth_pb2.CreateUserRequest(
            username=other.username, password=PASSWORD, role=auth_pb2.ROLE_READ_ONLY
        ),
        "/allsource.v1.AuthService/GetUser": auth_pb2.GetUserRequest(user_id=other.user_id),
        "/allsource.v1.AuthService/ListUsers": auth_pb2.ListUsersRequest(),
        "/allsource.v1.AuthService/DeleteUser": auth_pb2.DeleteUserRequest(user_id=other.user_id),
        "/allsource.v1.AuthService/SetUserRole": auth_pb2.SetUserRoleRequest(
            user_id=other.user_id, role=auth_pb2.ROLE_READ_ONLY
        ),
        "/allsource.v1.AuthService/ChangePassword": auth_pb2.ChangePasswordRequest(
            current_password="wrong password!", new_password="another long passphrase"
        ),
        "/allsource.v1.AuthService/ResetPassword": auth_pb2.ResetPasswordRequest(
            user_id=other.user_id, new_password="another long passphrase"
        ),
        "/allsource.v1.AuthService/DisableUser": auth_pb2.DisableUserRequest(user_id=other.user_id),
        "/allsource.v1.AuthService/EnableUser": auth_pb2.EnableUserRequest(user_id=other.user_id),
        "/allsource.v1.AuthService/CreateApiKey": auth_pb2.CreateApiKeyRequest(
            name="probe", role=auth_pb2.ROLE_READ_ONLY
        ),
        "/allsource.v1.AuthService/ListApiKeys": auth_pb2.ListApiKeysRequest(),
        "/allsource.v1.AuthService/RevokeApiKey": auth_pb2.RevokeApiKeyRequest(key_id=other.key_id),
        "/allsource.v1.AuthService/RotateApiKey": auth_pb2.RotateApiKeyRequest(key_id=other.key_id),
        "/allsource.v1.AuthService/RotateSigningKey": auth_pb2.RotateSigningKeyRequest(),
        "/allsource.v1.AuthService/GetPublicKeys": auth_pb2.GetPublicKeysRequest(),
    }


def public_methods() -> Iterator[tuple[str, str, Any]]:
    """(full method name, process, method descriptor) for every RPC of the public API."""
    for module in PUBLIC_MODULES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                yield f"/{service.full_name}/{method.name}", SERVICE_PROCESS[service.name], method


@pytest.fixture(scope="module")
def walked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    suite = Suite(tmp_path_factory.mktemp("scope-walk"), extra_env=FAST)
    try:
        suite.start_all()
        yield suite
    finally:
        suite.stop_all()


def make_tenant(suite: Suite, tenant_id: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Create a tenant with an admin user and key; returns (admin user name, key metadata)."""
    admin_pb2_grpc.AdminServiceStub(suite.channel("admin")).CreateTenant(
        admin_pb2.CreateTenantRequest(tenant_id=tenant_id)
    )
    operator = auth_pb2_grpc.AuthServiceStub(suite.channel("admin", acting_on(suite, tenant_id)))
    username = f"admin-{uuid.uuid4().hex[:6]}"
    operator.CreateUser(auth_pb2.CreateUserRequest(username=username, password=PASSWORD, role=auth_pb2.ROLE_ADMIN))
    key = operator.CreateApiKey(auth_pb2.CreateApiKeyRequest(name="admin", role=auth_pb2.ROLE_ADMIN)).secret
    return username, (("authorization", f"Bearer {key}"),)


def setup_tenants(suite: Suite) -> tuple[Other, Caller]:
    suffix = uuid.uuid4().hex[:6]
    other_id, caller_id = f"other-{suffix}", f"caller-{suffix}"
    other_user, other_key = make_tenant(suite, other_id)
    _, caller_key = make_tenant(suite, caller_id)
    # The other tenant's data: a stream with a client-chosen event id, a user, a key.
    event_id = str(uuid.uuid4())
    stream_id, event_type = f"secret-{suffix}", f"Secret{suffix}"
    with suite.client(metadata=other_key) as client:
        client.append(stream_id, [event(event_type, event_id=event_id)])
    other_auth = auth_pb2_grpc.AuthServiceStub(suite.channel("admin", other_key))
    me = other_auth.WhoAmI(auth_pb2.WhoAmIRequest())
    user_id = next(
        u.user_id for u in other_auth.ListUsers(auth_pb2.ListUsersRequest()).users if u.username == other_user
    )
    with suite.raw_channel("admin") as channel:
        caller_user = f"u-{suffix}"
        auth_pb2_grpc.AuthServiceStub(suite.channel("admin", caller_key)).CreateUser(
            auth_pb2.CreateUserRequest(username=caller_user, password=PASSWORD, role=auth_pb2.ROLE_ADMIN)
        )
        tokens = (
            auth_pb2_grpc.AuthServiceStub(channel)
            .Login(auth_pb2.LoginRequest(tenant_id=caller_id, username=caller_user, password=PASSWORD))
            .tokens
        )
    other = Other(other_id, stream_id, event_id, event_type, user_id, other_user, me.subject)
    return other, Caller(caller_id, caller_key, tokens.refresh_token, tokens.access_token)


def call(suite: Suite, process: str, name: str, method: Any, request: Message, metadata: Any) -> str:
    """Make one call; returns its status code name (the outcome does not matter here, what it touched does)."""
    channel = suite.raw_channel(process)
    kw: dict[str, Any] = {"request_serializer": type(request).SerializeToString, "response_deserializer": None}
    try:
        if method.client_streaming:
            rpc = channel.stream_stream(name, **kw) if method.server_streaming else channel.stream_unary(name, **kw)
            result = rpc(iter([request]), metadata=metadata, timeout=3)
        else:
            rpc = channel.unary_stream(name, **kw) if method.server_streaming else channel.unary_unary(name, **kw)
            result = rpc(request, metadata=metadata, timeout=3)
        if method.server_streaming:
            for _ in result:
                pass  # Subscribe never ends: its deadline does
        return "OK"
    except grpc.RpcError as err:
        return err.code().name
    finally:
        channel.close()


def storage_lines(suite: Suite, request_ids: set[str]) -> dict[str, list[dict[str, Any]]]:
    """The storage access-log lines of the given request ids."""
    out: dict[str, list[dict[str, Any]]] = {rid: [] for rid in request_ids}
    for line in suite.log("storage").splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        if entry.get("msg") == "rpc" and entry.get("request_id") in out:
            out[entry["request_id"]].append(entry)
    return out


def test_every_public_rpc_has_a_probe() -> None:
    """A new public RPC must get a probe here (or a reason why its request names a tenant)."""
    some = Other("t", "s", str(uuid.uuid4()), "T", "u", "n", "k")
    table = probes(some, Caller("c", (), "", ""))
    missing = [name for name, _, _ in public_methods() if name not in table]
    assert not missing, f"write an isolation probe for: {missing}"
    for name, _, method in public_methods():
        assert type(table[name]).DESCRIPTOR.full_name == method.input_type.full_name, name


def test_every_public_rpc_touches_only_the_callers_tenant(walked: Suite) -> None:
    other, caller = setup_tenants(walked)
    table = probes(other, caller)
    sent: dict[str, tuple[str, str]] = {}
    for name, process, method in public_methods():
        request_id = f"walk-{uuid.uuid4().hex}"
        metadata = (*caller.metadata, ("x-request-id", request_id))
        outcome = call(walked, process, name, method, table[name], metadata)
        sent[request_id] = (name, outcome)
    time.sleep(1.0)  # access-log lines are buffered for up to 0.2 s
    seen = storage_lines(walked, set(sent))
    leaks = []
    reached = 0
    for request_id, entries in seen.items():
        name, outcome = sent[request_id]
        for entry in entries:
            tenants = {t for t in entry.get("tenant", "").split(",") if t}
            reached += bool(tenants)
            if name in NAMES_ITS_TENANT:
                continue
            if tenants - {caller.tenant_id}:
                leaks.append(f"{name} ({outcome}) -> storage {entry['method']} touched {sorted(tenants)}")
    assert not leaks, "\n".join(leaks)
    assert reached >= 20, f"only {reached} storage calls named a tenant: is the walk reaching storage?"
    # The other tenant's data is untouched: its event, stream and user are still there, unchanged.
    with walked.client(metadata=acting_on(walked, other.tenant_id)) as client:
        assert [e.event_id for e in client.read_stream(other.stream_id)] == [other.event_id]


def acting_on(suite: Suite, tenant_id: str) -> tuple[tuple[str, str], ...]:
    """The operator's credentials, acting on a tenant."""
    return (*suite.auth_metadata(), ("x-allsource-tenant", tenant_id))


def test_the_walk_would_see_a_handler_acting_on_another_tenant(walked: Suite) -> None:
    """The evidence the walk relies on: a call acting on another tenant is visible in storage's log.

    An operator's call with x-allsource-tenant acts on that tenant: storage must name it."""
    other, _ = setup_tenants(walked)
    request_id = f"check-{uuid.uuid4().hex}"
    metadata = (*acting_on(walked, other.tenant_id), ("x-request-id", request_id))
    name = "/allsource.v1.QueryService/ReadStream"
    method = query_pb2.DESCRIPTOR.services_by_name["QueryService"].methods_by_name["ReadStream"]
    assert call(walked, "query", name, method, query_pb2.ReadStreamRequest(stream_id=other.stream_id), metadata) == "OK"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        entries = storage_lines(walked, {request_id})[request_id]
        if entries:
            break
        time.sleep(0.1)
    touched = [(e["method"], e.get("tenant", "")) for e in entries]
    assert ("/allsource.storage.v1.StorageService/ReadStream", other.tenant_id) in touched, touched
    assert {tenant for _, tenant in touched} <= {other.tenant_id, ""}, touched
