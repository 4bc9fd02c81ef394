"""AdminService's quota operations (mixed into AdminServicer): what a tenant uses of every quota,
temporary overrides, and emergency throttles.

Overrides and throttles are suite-wide records (shared.limits.plans). Each change is written, then
announced on the auth change feed (LIMITS_CHANGED): every public replica reads them again at once, and
storage applies an override of a quota it enforces as soon as the record is written. Expired overrides
stop applying on their own (expiry is checked on use) and are removed the next time the tenant's
overrides are changed.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import grpc
from allsource.storage.v1 import records_pb2, storage_pb2
from allsource.v1 import admin_pb2, tenant_pb2

from shared.auth.principal import Principal
from shared.core import pagination
from shared.core.errors import InvalidArgument
from shared.core.reasons import Reason
from shared.core.text import CONTROL
from shared.core.timestamps import to_timestamp
from shared.limits.governor import quota_state
from shared.limits.plans import (
    MAX_OVERRIDE_S,
    NS_QUOTA_OVERRIDES,
    NS_THROTTLES,
    SUITE_THROTTLE,
    Override,
    limit_of,
    override_key,
    split_override_key,
)
from shared.limits.windows import WINDOWED, window_end_ns
from shared.tenancy.tenants import QUOTA_FIELDS

if TYPE_CHECKING:
    from services.admin.auth import AuthServicer
    from shared.config.settings import Settings
    from shared.storage.client import StorageClient

K = records_pb2.AuthChangeKind
MAX_THROTTLE_S = 90 * 86400


def _reason_problem(reason: str) -> str | None:
    if not reason.strip():
        return "required: say why"
    if len(reason) > 500 or CONTROL.search(reason):
        return "up to 500 characters without control characters"
    return None


MIN_THROTTLE_RATE = 0.001  # calls a second: one in about 17 minutes; slower is not a throttle but a block
NS_CONSUMER_GROUPS = "consumer_groups"  # storage's group records (services/storage/groups.py)


class QuotaAdmin:
    """The quota RPCs of AdminService."""

    settings: Settings
    storage: StorageClient
    auth: AuthServicer

    if TYPE_CHECKING:  # services.admin.tenants.TenantAdmin, which AdminServicer mixes in beside this class

        def _operator(self) -> Principal: ...

        async def _get(self, tenant_id: str) -> tuple[tenant_pb2.Tenant, int]: ...

    async def _overrides(self, tenant_id: str) -> list[admin_pb2.QuotaOverride]:
        """Every override record of a tenant (expired ones included)."""
        out: list[admin_pb2.QuotaOverride] = []
        after = f"{tenant_id}/"
        while True:
            page = await self.auth.records.list("", NS_QUOTA_OVERRIDES, after, 100)
            for key, value, _ in page:
                if split_override_key(key)[0] != tenant_id:
                    return out
                out.append(admin_pb2.QuotaOverride.FromString(value))
            if len(page) < 100:
                return out
            after = page[-1][0]

    async def _throttles(self, tenant_id: str) -> list[admin_pb2.EmergencyThrottle]:
        now = time.time_ns()
        out: list[admin_pb2.EmergencyThrottle] = []
        for key in (SUITE_THROTTLE, tenant_id):
            found = await self.auth.records.get("", NS_THROTTLES, key)
            if found is not None:
                throttle = admin_pb2.EmergencyThrottle.FromString(found[0])
                if not throttle.HasField("expires_at") or throttle.expires_at.ToNanoseconds() > now:
                    out.append(throttle)
        return out

    async def used_quotas(self, tenant_id: str, usage: storage_pb2.GetTenantUsageResponse) -> dict[str, int]:
        """What a tenant uses of each quota that counts something."""
        return {
            "max_events_per_day": usage.events_today,
            "max_events_per_hour": usage.events_this_hour,
            "max_events_per_minute": usage.events_this_minute,
            "max_storage_bytes": usage.storage_bytes,
            "max_queries_per_hour": usage.queries_this_hour,
            "max_api_keys": await self.auth.count_active_keys(tenant_id),
            "max_users": await self.auth.count_users(tenant_id),
            # A tenant holds at most 1,000 groups (services/storage/groups.py MAX_GROUPS): one page.
            "max_consumer_groups": len(await self.auth.records.list(tenant_id, NS_CONSUMER_GROUPS, "", 1001)),
            # Projections and pipelines do not exist yet: none are used.
        }

    async def GetQuotaUsage(
        self, request: admin_pb2.GetQuotaUsageRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.GetQuotaUsageResponse:
        tenant_id = self._operator().tenant_id
        tenant, _ = await self._get(tenant_id)
        usage = await self.storage.get_tenant_usage(storage_pb2.GetTenantUsageRequest(tenant_id=tenant_id))
        used = await self.used_quotas(tenant_id, usage)
        now = time.time_ns()
        overrides = {o.quota: Override(o.value, o.expires_at.ToNanoseconds()) for o in await self._overrides(tenant_id)}
        ratio = self.settings.limits.soft_limit_ratio
        response = admin_pb2.GetQuotaUsageResponse(tenant_id=tenant_id, soft_limit_ratio=ratio)
        for name in QUOTA_FIELDS:
            limit = limit_of(tenant.quotas, overrides, name, now)
            status = response.quotas.add(quota=name, used=used.get(name, 0))
            if limit is not None:
                status.limit = limit
            if name in WINDOWED:
                status.resets_at.CopyFrom(to_timestamp(window_end_ns(WINDOWED[name], now)))
            if name in used:
                status.state = quota_state(status.used, limit, ratio)
            else:  # a limit on each request, or a rate: nothing accumulates against it here
                status.state = admin_pb2.QUOTA_STATE_UNLIMITED if limit is None else admin_pb2.QUOTA_STATE_OK
            found = overrides.get(name)
            status.overridden = found is not None and found.expires_ns > now
        response.throttles.extend(await self._throttles(tenant_id))
        return response

    async def SetQuotaOverride(
        self, request: admin_pb2.SetQuotaOverrideRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.SetQuotaOverrideResponse:
        operator = self._operator()
        violations = []
        if request.quota not in QUOTA_FIELDS:
            violations.append(("quota", f"must be a quota: {', '.join(QUOTA_FIELDS)}"))
        if not request.clear:
            if problem := _reason_problem(request.reason):
                violations.append(("reason", problem))
            seconds = request.duration.ToNanoseconds() / 1e9 if request.HasField("duration") else 0
            if not 0 < seconds <= MAX_OVERRIDE_S:
                violations.append(("duration", "required: more than 0 and at most 90 days"))
        if not request.tenant_id:
            violations.append(("tenant_id", "required"))
        if violations:
            raise InvalidArgument(
                "the quota override is invalid", reason=Reason.INVALID_QUOTA_OVERRIDE, violations=violations
            )
        await self._get(request.tenant_id)  # NOT_FOUND (TENANT_NOT_FOUND) for an unknown tenant
        records = self.auth.records
        now = time.time_ns()
        for stale in await self._overrides(request.tenant_id):
            if stale.expires_at.ToNanoseconds() <= now:
                await records.delete("", NS_QUOTA_OVERRIDES, override_key(stale.tenant_id, stale.quota))
        key = override_key(request.tenant_id, request.quota)
        response = admin_pb2.SetQuotaOverrideResponse()
        if request.clear:
            await records.delete("", NS_QUOTA_OVERRIDES, key)
        else:
            override = admin_pb2.QuotaOverride(
                tenant_id=request.tenant_id,
                quota=request.quota,
                value=request.value,
                expires_at=to_timestamp(now + request.duration.ToNanoseconds()),
                reason=request.reason,
                set_by=operator.ref,
                set_at=to_timestamp(now),
            )
            await records.put("", NS_QUOTA_OVERRIDES, key, override.SerializeToString())
            response.override.CopyFrom(override)
        await self.auth.feed.publish(K.AUTH_CHANGE_KIND_LIMITS_CHANGED, request.tenant_id)
        return response

    async def ListQuotaOverrides(
        self, request: admin_pb2.ListQuotaOverridesRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ListQuotaOverridesResponse:
        tenant_id = self._operator().tenant_id
        size = pagination.page_size(request.page_size, 100, 1000)
        bound = pagination.fingerprint("ListQuotaOverrides", tenant_id)
        after = ""
        if request.page_token:
            after = pagination.cursor_str(pagination.decode(request.page_token, bound), "q")
        now = time.time_ns()
        live = [o for o in await self._overrides(tenant_id) if o.expires_at.ToNanoseconds() > now and o.quota > after]
        live.sort(key=lambda o: o.quota)
        response = admin_pb2.ListQuotaOverridesResponse(overrides=live[:size])
        if len(live) > size:
            response.next_page_token = pagination.encode(bound, {"q": live[size - 1].quota})
        return response

    async def SetEmergencyThrottle(
        self, request: admin_pb2.SetEmergencyThrottleRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.SetEmergencyThrottleResponse:
        operator = self._operator()
        violations = []
        cps = request.calls_per_second
        if not (cps == 0 or MIN_THROTTLE_RATE <= cps < float("inf")):
            violations.append(("calls_per_second", f"must be 0 (clear) or at least {MIN_THROTTLE_RATE}"))
        seconds = request.duration.ToNanoseconds() / 1e9 if request.HasField("duration") else None
        if cps > 0:
            if problem := _reason_problem(request.reason):
                violations.append(("reason", problem))
            if seconds is not None and not 0 < seconds <= MAX_THROTTLE_S:
                violations.append(("duration", "more than 0 and at most 90 days (or unset: until cleared)"))
        if violations:
            raise InvalidArgument(
                "the emergency throttle is invalid", reason=Reason.INVALID_ARGUMENT, violations=violations
            )
        if request.tenant_id:
            await self._get(request.tenant_id)
        key = request.tenant_id or SUITE_THROTTLE
        response = admin_pb2.SetEmergencyThrottleResponse()
        if cps == 0:
            await self.auth.records.delete("", NS_THROTTLES, key)
        else:
            now = time.time_ns()
            throttle = admin_pb2.EmergencyThrottle(
                tenant_id=request.tenant_id,
                calls_per_second=cps,
                reason=request.reason,
                set_by=operator.ref,
                set_at=to_timestamp(now),
            )
            if seconds is not None:
                throttle.expires_at.CopyFrom(to_timestamp(now + request.duration.ToNanoseconds()))
            await self.auth.records.put("", NS_THROTTLES, key, throttle.SerializeToString())
            response.throttle.CopyFrom(throttle)
        await self.auth.feed.publish(K.AUTH_CHANGE_KIND_LIMITS_CHANGED, request.tenant_id)
        return response

    async def forget_limits(self, tenant_id: str) -> None:
        """Remove a deleted tenant's overrides and throttle (a tenant created later under its id starts clean)."""
        for override in await self._overrides(tenant_id):
            await self.auth.records.delete("", NS_QUOTA_OVERRIDES, override_key(tenant_id, override.quota))
        await self.auth.records.delete("", NS_THROTTLES, tenant_id)
        await self.auth.feed.publish(K.AUTH_CHANGE_KIND_LIMITS_CHANGED, tenant_id)
