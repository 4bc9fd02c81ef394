"""Operations calls with values past their bounds are refused with the field named (never INTERNAL or
UNKNOWN), and a throttle's refusal never asks a client to wait longer than a day."""

from __future__ import annotations

import time

import grpc
import pytest
from allsource.v1 import admin_pb2, admin_pb2_grpc, tenant_pb2
from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2

from tests.harness import Suite
from tests.limits.support import refusal


def refused(call: object, *args: object, **kw: object) -> tuple[str, list[str]]:
    with pytest.raises(grpc.RpcError) as err:
        call(*args, **kw)  # type: ignore[operator]
    found = refusal(err.value)
    return found.code, found.violations


def test_out_of_range_operations_values_are_invalid_arguments(suite: Suite, unique: str) -> None:
    """A throttle rate of 1e-300 (it made every throttled call fail UNKNOWN: the wait overflowed), an
    audit start_time outside Timestamp's range (INTERNAL), a feature flag's unknown bucket_by (accepted
    and silently read as 'tenant'), and an update mask of 900,000 paths (3 s of the admin loop)."""
    admin = admin_pb2_grpc.AdminServiceStub(suite.channel("admin"))
    tenant = f"{unique}bounds".rstrip("-")
    suite.create_tenant(tenant)
    throttle = admin_pb2.SetEmergencyThrottleRequest(
        tenant_id=tenant, calls_per_second=1e-300, reason="incident", duration=duration_pb2.Duration(seconds=600)
    )
    assert refused(admin.SetEmergencyThrottle, throttle) == ("INVALID_ARGUMENT", ["calls_per_second"])
    for start in (timestamp_pb2.Timestamp(seconds=10**15), timestamp_pb2.Timestamp(seconds=1, nanos=-1)):
        audit = admin_pb2.ListAuditEventsRequest(start_time=start)
        assert refused(admin.ListAuditEvents, audit) == ("INVALID_ARGUMENT", ["start_time"])
    flag = admin_pb2.SetFeatureFlagRequest(name="entity_state_snapshots", enabled=True, percentage=50, bucket_by=99)  # type: ignore[arg-type]
    assert refused(admin.SetFeatureFlag, flag) == ("INVALID_ARGUMENT", ["bucket_by"])
    update = admin_pb2.UpdateTenantRequest(
        tenant=tenant_pb2.Tenant(tenant_id=tenant, quotas=tenant_pb2.TenantQuotas(max_users=7)),
        update_mask=field_mask_pb2.FieldMask(paths=["quotas.max_users"] * 900_000),
    )
    started = time.monotonic()
    assert refused(admin.UpdateTenant, update, timeout=30) == ("INVALID_ARGUMENT", ["update_mask"])
    assert time.monotonic() - started < 2.5


def test_a_refusals_wait_is_at_most_a_day_whatever_was_computed() -> None:
    """A wait computed from a tiny rate (1e-300 calls a second gave ~1e300 s) made building the refusal
    raise OverflowError, and the call failed UNKNOWN with no details; a refusal's RetryInfo now says at
    most a day."""
    from google.rpc import error_details_pb2

    from shared.core.errors import ResourceExhausted

    status = ResourceExhausted("throttled", reason="RATE_LIMITED", retry_after=1e300).to_status()
    info = error_details_pb2.RetryInfo()
    assert any(d.Unpack(info) for d in status.details)
    assert info.retry_delay.seconds == 86_400
