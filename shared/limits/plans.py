"""Effective limits: a tenant's plan (its TenantQuotas, from a preset or set one by one) with the quota
overrides in force laid over it.

Overrides are suite-wide records in namespace "quota_overrides" (key: tenant id, "/", quota; value: an
allsource.v1.QuotaOverride, read by storage as its QuotaOverrideRecord mirror); emergency throttles
are records in namespace "emergency_throttles" (key: the tenant id, or "*" for the whole suite). Both
the public services and storage resolve limits with `limit_of`, so they agree on every figure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from google.rpc import error_details_pb2

from shared.core.errors import ResourceExhausted
from shared.core.reasons import Reason
from shared.core.timestamps import to_timestamp

NS_QUOTA_OVERRIDES = "quota_overrides"
NS_THROTTLES = "emergency_throttles"
SUITE_THROTTLE = "*"  # the key of the suite-wide throttle
MAX_OVERRIDE_S = 90 * 86400


@dataclass(frozen=True, slots=True)
class Override:
    """A temporary limit for one quota of one tenant."""

    value: int
    expires_ns: int


def override_key(tenant_id: str, quota: str) -> str:
    """The record key of an override."""
    return f"{tenant_id}/{quota}"


def split_override_key(key: str) -> tuple[str, str]:
    """(tenant id, quota) of an override record key."""
    tenant_id, _, quota = key.partition("/")
    return tenant_id, quota


class Overrides:
    """The quota overrides known to a process: tenant -> quota -> override."""

    def __init__(self) -> None:
        self._by_tenant: dict[str, dict[str, Override]] = {}
        self.version = 0  # bumped on every change, so cached effective limits are recomputed

    def set(self, tenant_id: str, quota: str, value: int, expires_ns: int) -> None:
        """Set (or replace) an override."""
        self._by_tenant.setdefault(tenant_id, {})[quota] = Override(value, expires_ns)
        self.version += 1

    def clear(self, tenant_id: str, quota: str) -> None:
        """Remove an override."""
        found = self._by_tenant.get(tenant_id)
        if found is not None and found.pop(quota, None) is not None:
            if not found:
                del self._by_tenant[tenant_id]
            self.version += 1

    def replace(self, entries: Iterable[tuple[str, str, int, int]]) -> None:
        """Replace every override with (tenant, quota, value, expires_ns) entries."""
        fresh: dict[str, dict[str, Override]] = {}
        for tenant_id, quota, value, expires_ns in entries:
            fresh.setdefault(tenant_id, {})[quota] = Override(value, expires_ns)
        if fresh != self._by_tenant:
            self._by_tenant = fresh
            self.version += 1

    def of(self, tenant_id: str) -> Mapping[str, Override]:
        """A tenant's overrides (expired ones included: `limit_of` skips them)."""
        return self._by_tenant.get(tenant_id, _NONE)

    def next_expiry_ns(self, tenant_id: str, now_ns: int) -> int | None:
        """When the tenant's next override in force ends (cached limits must be recomputed then)."""
        ends = [o.expires_ns for o in self.of(tenant_id).values() if o.expires_ns > now_ns]
        return min(ends) if ends else None


_NONE: Mapping[str, Override] = {}


def limit_of(quotas: Any, overrides: Mapping[str, Override], name: str, now_ns: int) -> int | None:
    """The limit in force for one quota: an override that has not expired, else the plan's value (a
    TenantQuotas message, public or storage's mirror); None means no limit."""
    found = overrides.get(name)
    if found is not None and found.expires_ns > now_ns:
        return found.value
    if quotas is not None and quotas.HasField(name):
        return int(getattr(quotas, name))
    return None


def past_soft(used: int, limit: int, ratio: float) -> bool:
    """Whether `used` is at or past the soft share of `limit` (where calls start carrying warnings)."""
    return limit > 0 and used >= limit * ratio


def exceeded(
    tenant_id: str,
    quota: str,
    limit: int,
    used: int,
    detail: str,
    *,
    retry_after: float | None = None,
    resets_at_ns: int | None = None,
) -> ResourceExhausted:
    """The refusal of something that would cross a quota (QUOTA_EXCEEDED with a QuotaFailure)."""
    metadata = {"limit": quota, "value": str(limit), "used": str(used), "tenant_id": tenant_id}
    if resets_at_ns is not None:
        metadata["window"] = quota.rsplit("_", 1)[-1]
        metadata["resets_at"] = to_timestamp(resets_at_ns).ToJsonString()
    return ResourceExhausted(
        f"quota {quota} of tenant {tenant_id!r} would be exceeded: {detail}",
        reason=Reason.QUOTA_EXCEEDED,
        metadata=metadata,
        quota_violations=[
            error_details_pb2.QuotaFailure.Violation(
                subject=f"tenant:{tenant_id}", description=detail, quota_id=quota, quota_value=limit
            )
        ],
        retry_after=retry_after,
    )
