"""Helpers of the quota and rate-limit tests: tenants with chosen plans, refusals taken apart."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import grpc
from allsource.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    event_pb2,
    ingest_pb2,
    ingest_pb2_grpc,
    query_pb2_grpc,
    tenant_pb2,
)
from allsource_client import status_from_call
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2

from tests.harness import Suite

Metadata = tuple[tuple[str, str], ...]


@dataclass
class Refusal:
    """A failed call's status, taken apart."""

    code: str
    reason: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    quota: list[error_details_pb2.QuotaFailure.Violation] = field(default_factory=list)
    retry_s: float | None = None
    violations: list[str] = field(default_factory=list)
    trailing: dict[str, str] = field(default_factory=dict)


def refusal(err: grpc.RpcError) -> Refusal:
    out = Refusal(err.code().name)  # type: ignore[attr-defined]
    out.trailing = {k: v for k, v in err.trailing_metadata() or () if isinstance(v, str)}  # type: ignore[attr-defined]
    status = status_from_call(err)
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            out.reason, out.metadata = info.reason, dict(info.metadata)
        elif detail.Is(error_details_pb2.QuotaFailure.DESCRIPTOR):
            quota = error_details_pb2.QuotaFailure()
            detail.Unpack(quota)
            out.quota = list(quota.violations)
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            out.retry_s = retry.retry_delay.ToNanoseconds() / 1e9
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            out.violations = [v.field for v in bad.field_violations]
    return out


def refused(fn: Any, *args: Any, **kw: Any) -> Refusal:
    try:
        fn(*args, **kw)
    except grpc.RpcError as err:
        return refusal(err)
    raise AssertionError(f"{fn} was not refused")


@dataclass
class Tenant:
    """A tenant made for a test, with an admin API key, and stubs on its credential."""

    suite: Suite
    tenant_id: str
    metadata: Metadata
    channels: list[grpc.Channel] = field(default_factory=list)

    def _channel(self, service: str, address: str | None = None) -> grpc.Channel:
        channel = grpc.insecure_channel(address or self.suite.address(service))
        self.channels.append(channel)
        return channel

    def ingest(self, address: str | None = None) -> ingest_pb2_grpc.IngestServiceStub:
        return ingest_pb2_grpc.IngestServiceStub(self._channel("ingest", address))

    def query(self) -> query_pb2_grpc.QueryServiceStub:
        return query_pb2_grpc.QueryServiceStub(self._channel("query"))

    def admin(self) -> admin_pb2_grpc.AdminServiceStub:
        return admin_pb2_grpc.AdminServiceStub(self._channel("admin"))

    def auth(self) -> auth_pb2_grpc.AuthServiceStub:
        return auth_pb2_grpc.AuthServiceStub(self._channel("admin"))

    def close(self) -> None:
        for channel in self.channels:
            channel.close()


def make_tenant(
    suite: Suite, name: str, preset: int = tenant_pb2.QUOTA_PRESET_FREE, quotas: tenant_pb2.TenantQuotas | None = None
) -> Tenant:
    """A tenant of a plan (a preset, or CUSTOM with the given quotas) and an admin key of it."""
    tenant_id = f"{name}-{uuid.uuid4().hex[:8]}"
    request = admin_pb2.CreateTenantRequest(tenant_id=tenant_id, quota_preset=preset)  # type: ignore[arg-type]
    if quotas is not None:
        request.quotas.CopyFrom(quotas)
    operator(suite).CreateTenant(request, timeout=20)
    acting = (*suite.auth_metadata(), ("x-allsource-tenant", tenant_id))
    made = auth_pb2_grpc.AuthServiceStub(suite.channel("admin", acting)).CreateApiKey(
        auth_pb2.CreateApiKeyRequest(name="admin", role=auth_pb2.ROLE_ADMIN), timeout=20
    )
    return Tenant(suite, tenant_id, (("authorization", f"Bearer {made.secret}"),))


def operator(suite: Suite) -> admin_pb2_grpc.AdminServiceStub:
    return admin_pb2_grpc.AdminServiceStub(suite.channel("admin"))


def override(suite: Suite, tenant_id: str, quota: str, value: int, seconds: float = 600) -> admin_pb2.QuotaOverride:
    reply = operator(suite).SetQuotaOverride(
        admin_pb2.SetQuotaOverrideRequest(
            tenant_id=tenant_id,
            quota=quota,
            value=value,
            duration=duration_pb2.Duration(seconds=int(seconds), nanos=int(seconds % 1 * 1e9)),
            reason="test",
        ),
        timeout=20,
    )
    return reply.override


def append_request(
    stream_id: str, count: int = 1, size: int = 16, event_type: str = "Noted"
) -> ingest_pb2.AppendEventsRequest:
    payload = b'{"x":"' + b"a" * max(0, size - 8) + b'"}'
    return ingest_pb2.AppendEventsRequest(
        stream_id=stream_id, events=[event_pb2.EventData(event_type=event_type, payload=payload) for _ in range(count)]
    )
