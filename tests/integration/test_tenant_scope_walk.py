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

Below the public API, the storage service confines every signed scope by itself: its RPCs, from the
storage descriptor, are classified in one table (tenant-scoped, suite-wide, per-operation scope) and
each is called with a scope that does not cover what it names.
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
from allsource.storage.v1 import backup_pb2 as storage_backup
from allsource.storage.v1 import groups_pb2 as storage_groups_pb2
from allsource.storage.v1 import lifecycle_pb2 as storage_lifecycle
from allsource.storage.v1 import model_pb2, storage_pb2
from allsource.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    event_pb2,
    groups_pb2,
    ingest_pb2,
    lifecycle_pb2,
    query_pb2,
    tenant_pb2,
)
from allsource_client import event
from google.protobuf import duration_pb2, field_mask_pb2, message_factory
from google.protobuf.message import Message
from grpc_status import rpc_status

from shared.auth.scopes import SCOPE_KEY, SYSTEM_TENANT, ScopeSigner
from shared.core.errors import error_info
from shared.core.wire import recast
from shared.telemetry.logs import AccessLog
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
        "/allsource.v1.QueryService/BatchGetEvents": query_pb2.BatchGetEventsRequest(event_ids=[other.event_id]),
        "/allsource.v1.QueryService/ReadStreams": query_pb2.ReadStreamsRequest(
            reads=[query_pb2.StreamRead(stream_id=other.stream_id)]
        ),
        "/allsource.v1.QueryService/ListEvents": query_pb2.ListEventsRequest(
            filter=event_pb2.EventFilter(stream_id=other.stream_id)
        ),
        "/allsource.v1.QueryService/StreamEvents": query_pb2.StreamEventsRequest(
            filter=event_pb2.EventFilter(event_types=[other.event_type])
        ),
        "/allsource.v1.QueryService/GetEntityState": query_pb2.GetEntityStateRequest(stream_id=other.stream_id),
        "/allsource.v1.QueryService/Subscribe": query_pb2.SubscribeRequest(stream_id_prefix=other.stream_id),
        "/allsource.v1.QueryService/ListStreams": query_pb2.ListStreamsRequest(stream_id_prefix=other.stream_id),
        "/allsource.v1.QueryService/GetStreamMetadata": lifecycle_pb2.GetStreamMetadataRequest(
            stream_id=other.stream_id
        ),
        "/allsource.v1.IngestService/SetStreamMetadata": lifecycle_pb2.SetStreamMetadataRequest(
            stream_id=other.stream_id, expected_metadata_version=7
        ),
        "/allsource.v1.IngestService/DeleteStream": ingest_pb2.DeleteStreamRequest(
            stream_id=other.stream_id,
            expected_version=ingest_pb2.ExpectedVersion(kind=ingest_pb2.EXPECTED_VERSION_KIND_EXACT, version=12345),
        ),
        "/allsource.v1.IngestService/DeleteEvents": lifecycle_pb2.DeleteEventsRequest(
            stream_id_prefix=other.stream_id, dry_run=True
        ),
        **group_probes(other),
        "/allsource.v1.AdminService/GetSystemInfo": admin_pb2.GetSystemInfoRequest(),
        "/allsource.v1.AdminService/GetMetricsSummary": admin_pb2.GetMetricsSummaryRequest(),
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
        "/allsource.v1.AdminService/GetIndexStats": admin_pb2.GetIndexStatsRequest(),
        "/allsource.v1.AdminService/ListAuditEvents": admin_pb2.ListAuditEventsRequest(tenant_id=other.tenant_id),
        "/allsource.v1.AdminService/GetQuotaUsage": admin_pb2.GetQuotaUsageRequest(),
        "/allsource.v1.AdminService/SetQuotaOverride": admin_pb2.SetQuotaOverrideRequest(
            tenant_id=other.tenant_id,
            quota="max_events_per_day",
            value=1,
            duration=duration_pb2.Duration(seconds=60),
            reason="probe",
        ),
        "/allsource.v1.AdminService/ListQuotaOverrides": admin_pb2.ListQuotaOverridesRequest(),
        "/allsource.v1.AdminService/SetEmergencyThrottle": admin_pb2.SetEmergencyThrottleRequest(
            tenant_id=other.tenant_id, calls_per_second=1, reason="probe"
        ),
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


def group_probes(other: Other) -> dict[str, Message]:
    """Consumer-group probes, aimed at a group named like the other tenant's stream."""
    name = f"g-{other.stream_id}"
    group = groups_pb2.ConsumerGroup(name=name, stream_id_prefix=other.stream_id)
    q = "/allsource.v1.QueryService/"
    return {
        f"{q}CreateConsumerGroup": groups_pb2.CreateConsumerGroupRequest(group=group),
        f"{q}UpdateConsumerGroup": groups_pb2.UpdateConsumerGroupRequest(group=group),
        f"{q}DeleteConsumerGroup": groups_pb2.DeleteConsumerGroupRequest(name=name),
        f"{q}ListConsumerGroups": groups_pb2.ListConsumerGroupsRequest(),
        f"{q}GetConsumerGroup": groups_pb2.GetConsumerGroupRequest(name=name),
        f"{q}Consume": groups_pb2.ConsumeRequest(join=groups_pb2.ConsumeJoin(group=name)),
        f"{q}ListParked": groups_pb2.ListParkedRequest(group=name),
        f"{q}ReplayParked": groups_pb2.ReplayParkedRequest(group=name),
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
        # Unlimited: these walks are about isolation, not the plan's rate limits.
        admin_pb2.CreateTenantRequest(tenant_id=tenant_id, quota_preset=tenant_pb2.QUOTA_PRESET_UNLIMITED)
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
    # Access-log lines are buffered: once a later call's line is in storage's log, every line before it
    # is. A call that ended at its deadline (Subscribe) has its storage stream cancelled after it
    # returned, so its own line is waited for.
    barrier = f"barrier-{uuid.uuid4().hex}"
    listing = query_pb2.DESCRIPTOR.services_by_name["QueryService"].methods_by_name["ListStreams"]
    barrier_md = (*caller.metadata, ("x-request-id", barrier))
    call(walked, "query", "/allsource.v1.QueryService/ListStreams", listing, query_pb2.ListStreamsRequest(), barrier_md)
    awaited = {barrier} | {rid for rid, (_, outcome) in sent.items() if outcome == "DEADLINE_EXCEEDED"}
    walked.wait_until(
        lambda: all(storage_lines(walked, awaited).values()), timeout=10, what="storage's access-log lines"
    )
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
    # Its storage calls' access-log lines come in batches (at most AccessLog.FLUSH_AFTER_S after each): wait
    # for the read's own, then one more flush for any other.
    read = "/allsource.storage.v1.StorageService/ReadStream"
    walked.wait_until(
        lambda: any(e["method"] == read for e in storage_lines(walked, {request_id})[request_id]),
        timeout=5,
        what="storage's ReadStream line",
    )
    time.sleep(2 * AccessLog.FLUSH_AFTER_S)
    entries = storage_lines(walked, {request_id})[request_id]
    touched = [(e["method"], e.get("tenant", "")) for e in entries]
    assert ("/allsource.storage.v1.StorageService/ReadStream", other.tenant_id) in touched, touched
    assert {tenant for _, tenant in touched} <= {other.tenant_id, ""}, touched


# -- the storage service ----------------------------------------------------------------------------

DEV_SERVICE_SECRET = b"development-only-service-secret"  # the development preset's, public by design
STORAGE_SERVICE = storage_pb2.DESCRIPTOR.services_by_name["StorageService"]
TENANT_SCOPED = "tenant-scoped"  # the request names a tenant; a scope covers it only if it is that tenant's
SUITE_WIDE = "suite-wide"  # only the admin service's system scope may call it
PER_OPERATION = "per-operation scope"  # each operation names its tenant and carries its own scope


def storage_requests(tenant: str, ghost: str) -> dict[str, tuple[str, Message]]:
    """Every storage RPC: how it is scoped, and a request naming `tenant` (suite-wide ones name `ghost`, a
    tenant that does not exist, so that the admin service's own call of them changes nothing)."""
    stream = "scope-walk"
    append = recast(ingest_pb2.AppendEventsRequest(stream_id=stream, events=[event("Walked")]), model_pb2.AppendInput)
    return {
        "Append": (
            PER_OPERATION,
            storage_pb2.AppendRequest(operations=[storage_pb2.AppendOperation(tenant_id=tenant, request=append)]),
        ),
        "GetEvent": (TENANT_SCOPED, storage_pb2.GetEventRequest(tenant_id=tenant, event_id=str(uuid.UUID(int=0)))),
        "ReadStream": (TENANT_SCOPED, storage_pb2.ReadStreamRequest(tenant_id=tenant, stream_id=stream)),
        "ReadEvents": (TENANT_SCOPED, storage_pb2.ReadEventsRequest(tenant_id=tenant)),
        "ListStreams": (TENANT_SCOPED, storage_pb2.ListStreamsRequest(tenant_id=tenant)),
        "GetStream": (TENANT_SCOPED, storage_pb2.GetStreamRequest(tenant_id=tenant, stream_id=stream)),
        "Subscribe": (TENANT_SCOPED, storage_pb2.SubscribeRequest(tenant_id=tenant, from_end=True)),
        "GetSnapshot": (TENANT_SCOPED, storage_pb2.GetSnapshotRequest(tenant_id=tenant, stream_id=stream)),
        "PutSnapshot": (
            TENANT_SCOPED,
            storage_pb2.PutSnapshotRequest(tenant_id=tenant, stream_id=stream, version=99, state=b"{}"),
        ),
        "GetStats": (SUITE_WIDE, storage_pb2.GetStatsRequest()),
        "CreateBackup": (SUITE_WIDE, storage_backup.CreateBackupRequest(destination="nowhere", tenant_ids=[ghost])),
        "ListBackups": (SUITE_WIDE, storage_backup.ListBackupsRequest()),
        "GetBackup": (SUITE_WIDE, storage_backup.GetBackupRequest(backup_id=ghost)),
        "VerifyBackup": (SUITE_WIDE, storage_backup.VerifyBackupRequest(backup_id=ghost)),
        "RestoreBackup": (SUITE_WIDE, storage_backup.RestoreBackupRequest(backup_id=ghost, tenant_ids=[ghost])),
        "DeleteBackup": (SUITE_WIDE, storage_backup.DeleteBackupRequest(backup_id=ghost)),
        "PutRecord": (
            TENANT_SCOPED,
            storage_pb2.PutRecordRequest(tenant_id=tenant, record=storage_pb2.Record(namespace="walk", key="k")),
        ),
        "GetRecord": (TENANT_SCOPED, storage_pb2.GetRecordRequest(tenant_id=tenant, namespace="walk", key="k")),
        "ListRecords": (TENANT_SCOPED, storage_pb2.ListRecordsRequest(tenant_id=tenant, namespace="walk")),
        "DeleteRecord": (TENANT_SCOPED, storage_pb2.DeleteRecordRequest(tenant_id=tenant, namespace="walk", key="k")),
        "WatchRecords": (TENANT_SCOPED, storage_pb2.WatchRecordsRequest(tenant_id=tenant, namespace="walk")),
        "PutTenant": (
            SUITE_WIDE,
            storage_pb2.PutTenantRequest(tenant=model_pb2.TenantRecord(tenant_id=ghost), expected_revision=7),
        ),
        "GetTenant": (TENANT_SCOPED, storage_pb2.GetTenantRequest(tenant_id=tenant)),
        "ListTenants": (SUITE_WIDE, storage_pb2.ListTenantsRequest()),
        "DeleteTenant": (SUITE_WIDE, storage_pb2.DeleteTenantRequest(tenant_id=ghost)),
        "GetTenantUsage": (TENANT_SCOPED, storage_pb2.GetTenantUsageRequest(tenant_id=tenant)),
        "AddUsage": (TENANT_SCOPED, storage_pb2.AddUsageRequest(tenant_id=tenant, queries=1)),
        "GetStreamMetadata": (
            TENANT_SCOPED,
            storage_lifecycle.GetStreamMetadataRequest(tenant_id=tenant, stream_id=stream),
        ),
        "SetStreamMetadata": (
            TENANT_SCOPED,
            storage_lifecycle.SetStreamMetadataRequest(tenant_id=tenant, stream_id=stream, expected_metadata_version=7),
        ),
        "DeleteStream": (
            TENANT_SCOPED,
            storage_lifecycle.DeleteStreamRequest(
                tenant_id=tenant,
                stream_id=stream,
                expected_version=model_pb2.ExpectedVersion(kind=model_pb2.EXPECTED_VERSION_KIND_EXACT, version=12345),
            ),
        ),
        "DeleteEvents": (
            TENANT_SCOPED,
            storage_lifecycle.DeleteEventsRequest(tenant_id=tenant, stream_id_prefix=stream, dry_run=True),
        ),
        "CreateConsumerGroup": (
            TENANT_SCOPED,
            storage_groups_pb2.CreateConsumerGroupRequest(
                tenant_id=tenant, group=groups_pb2.ConsumerGroup(name="walk")
            ),
        ),
        "UpdateConsumerGroup": (
            TENANT_SCOPED,
            storage_groups_pb2.UpdateConsumerGroupRequest(
                tenant_id=tenant, group=groups_pb2.ConsumerGroup(name="walk")
            ),
        ),
        "DeleteConsumerGroup": (
            TENANT_SCOPED,
            storage_groups_pb2.DeleteConsumerGroupRequest(tenant_id=tenant, name="x"),
        ),
        "ListConsumerGroups": (TENANT_SCOPED, storage_groups_pb2.ListConsumerGroupsRequest(tenant_id=tenant)),
        "GetConsumerGroup": (TENANT_SCOPED, storage_groups_pb2.GetConsumerGroupRequest(tenant_id=tenant, name="x")),
        "Consume": (
            TENANT_SCOPED,
            storage_groups_pb2.ConsumeRequest(
                tenant_id=tenant, request=groups_pb2.ConsumeRequest(join=groups_pb2.ConsumeJoin(group="x"))
            ),
        ),
        "ListParked": (TENANT_SCOPED, storage_groups_pb2.ListParkedRequest(tenant_id=tenant, group="x")),
        "ReplayParked": (TENANT_SCOPED, storage_groups_pb2.ReplayParkedRequest(tenant_id=tenant, group="x")),
        "FollowCommits": (SUITE_WIDE, storage_pb2.FollowCommitsRequest()),
        "BatchGetEvents": (
            TENANT_SCOPED,
            storage_pb2.BatchGetEventsRequest(tenant_id=tenant, event_ids=[str(uuid.UUID(int=0))]),
        ),
        "ReadStreams": (
            TENANT_SCOPED,
            storage_pb2.ReadStreamsRequest(tenant_id=tenant, reads=[storage_pb2.ReadStreamRequest(stream_id=stream)]),
        ),
        "GetIndexStats": (TENANT_SCOPED, storage_pb2.GetIndexStatsRequest(tenant_id=tenant)),
    }


def scope_for(tenant_id: str) -> str:
    """A genuine scope of the admin service acting for a tenant (or for no tenant: SYSTEM_TENANT)."""
    return ScopeSigner(DEV_SERVICE_SECRET, "admin", 60).mint(
        tenant_id, "system" if tenant_id == SYSTEM_TENANT else "user:walk"
    )


def storage_outcome(suite: Suite, name: str, request: Message, scope: str) -> tuple[str, str]:
    """(status code name, ErrorInfo reason) of one storage call made with the scope; an Append is answered
    by the outcome of its one operation (which carries the scope too)."""
    method = STORAGE_SERVICE.methods_by_name[name]
    if name == "Append":
        request.operations[0].scope = scope  # type: ignore[attr-defined]
    path = f"/{STORAGE_SERVICE.full_name}/{name}"
    kw: dict[str, Any] = {
        "request_serializer": type(request).SerializeToString,
        "response_deserializer": message_factory.GetMessageClass(method.output_type).FromString,
    }
    metadata = ((SCOPE_KEY, scope),)
    channel = suite.raw_channel("storage")
    try:
        if method.server_streaming:
            for _ in channel.unary_stream(path, **kw)(request, metadata=metadata, timeout=1):
                pass
            return "OK", ""
        reply = channel.unary_unary(path, **kw)(request, metadata=metadata, timeout=20)
        if name == "Append" and reply.outcomes[0].WhichOneof("result") == "error":
            status = reply.outcomes[0].error
            info = error_info(status)
            return next(c.name for c in grpc.StatusCode if c.value[0] == status.code), info.reason if info else ""
        return "OK", ""
    except grpc.RpcError as err:
        status = rpc_status.from_call(err)
        info = error_info(status) if status else None
        return err.code().name, info.reason if info else ""
    finally:
        channel.close()


def test_every_storage_rpc_is_classified() -> None:
    """A new storage RPC must be classified (and given a request) in storage_requests."""
    table = storage_requests("t", "ghost")
    missing = [method.name for method in STORAGE_SERVICE.methods if method.name not in table]
    assert not missing, f"classify these storage RPCs in storage_requests: {missing}"
    for method in STORAGE_SERVICE.methods:
        assert type(table[method.name][1]).DESCRIPTOR.full_name == method.input_type.full_name, method.name


def test_storage_refuses_every_scope_that_does_not_cover_the_request(walked: Suite) -> None:
    """Tenant-scoped RPCs with another tenant's scope, and suite-wide RPCs with a tenant's scope, are refused
    with TENANT_SCOPE_MISMATCH; an append operation likewise, on its own. The control: with a scope that
    does cover the request, no call is refused for its scope.

    Mutations caught: GetTenantUsage without its check_tenant, AddUsage without its require_tenant
    (services/storage/servicer.py): "GetTenantUsage (tenant-scoped): ('OK', '')" and likewise."""
    tenant = f"scoped-{uuid.uuid4().hex[:6]}"
    admin_pb2_grpc.AdminServiceStub(walked.channel("admin")).CreateTenant(
        admin_pb2.CreateTenantRequest(tenant_id=tenant), timeout=20
    )
    ghost = f"ghost-{uuid.uuid4().hex[:6]}"
    refused = ("PERMISSION_DENIED", "TENANT_SCOPE_MISMATCH")
    wrong, covered = [], []
    for name, (scoping, request) in storage_requests(tenant, ghost).items():
        foreign = scope_for("default" if scoping != SUITE_WIDE else tenant)
        got = storage_outcome(walked, name, request, foreign)
        if got != refused:
            wrong.append(f"{name} ({scoping}): {got}")
        own = scope_for(SYSTEM_TENANT if scoping == SUITE_WIDE else tenant)
        got = storage_outcome(walked, name, storage_requests(tenant, ghost)[name][1], own)
        if got[1] == refused[1] or got[0] in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
            covered.append(f"{name} ({scoping}) with a covering scope: {got}")
    assert not wrong, "not refused for a scope that does not cover them:\n" + "\n".join(wrong)
    assert not covered, "the control failed:\n" + "\n".join(covered)
