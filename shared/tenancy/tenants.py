"""Tenant quotas: presets, metadata rules, and quota utilisation."""

from __future__ import annotations

import re

from allsource.v1 import tenant_pb2

from shared.core.text import CONTROL

METADATA_KEY = re.compile(r"[A-Za-z0-9._/-]{1,63}")
MAX_METADATA = 64
MiB = 1024 * 1024

Q = tenant_pb2.TenantQuotas
PRESETS: dict[int, tenant_pb2.TenantQuotas] = {
    tenant_pb2.QUOTA_PRESET_FREE: Q(
        max_events_per_day=10_000,
        max_events_per_hour=2_000,
        max_events_per_minute=200,
        max_storage_bytes=100 * MiB,
        max_queries_per_hour=1_000,
        max_api_keys=2,
        max_users=5,
        max_projections=1,
        max_pipelines=1,
        max_consumer_groups=2,
        max_event_bytes=64 * 1024,
        max_result_bytes=MiB,
        max_request_units_per_second=100,
        max_request_units_burst=500,
    ),
    tenant_pb2.QUOTA_PRESET_PROFESSIONAL: Q(
        max_events_per_day=1_000_000,
        max_events_per_hour=100_000,
        max_events_per_minute=10_000,
        max_storage_bytes=10 * 1024 * MiB,
        max_queries_per_hour=100_000,
        max_api_keys=25,
        max_users=100,
        max_projections=10,
        max_pipelines=10,
        max_consumer_groups=50,
        max_event_bytes=MiB,
        max_result_bytes=4 * MiB,
        max_request_units_per_second=2_000,
        max_request_units_burst=10_000,
    ),
    tenant_pb2.QUOTA_PRESET_UNLIMITED: Q(),
    tenant_pb2.QUOTA_PRESET_CUSTOM: Q(),
}
QUOTA_FIELDS = tuple(f.name for f in Q.DESCRIPTOR.fields)
# Limits on each request, or rates, rather than on an amount that accumulates: nothing is "used" of them.
PER_REQUEST = frozenset(
    {"max_event_bytes", "max_result_bytes", "max_request_units_per_second", "max_request_units_burst"}
)


def quotas_for(preset: int, explicit: tenant_pb2.TenantQuotas | None = None) -> tenant_pb2.TenantQuotas:
    """The preset's quotas with every set field of `explicit` laid over them."""
    quotas = Q()
    quotas.CopyFrom(PRESETS[preset])
    if explicit is not None:
        for name in QUOTA_FIELDS:
            if explicit.HasField(name):
                setattr(quotas, name, getattr(explicit, name))
    return quotas


def metadata_violations(metadata: dict[str, str], path: str) -> list[tuple[str, str]]:
    """Field violations of tenant metadata."""
    violations = []
    if len(metadata) > MAX_METADATA:
        violations.append((path, f"at most {MAX_METADATA} entries"))
    for key, value in metadata.items():
        if not METADATA_KEY.fullmatch(key):
            violations.append((f"{path}[{key[:64]!r}]", "keys are 1-63 letters, digits and . _ / -"))
        elif len(value) > 256 or CONTROL.search(value):
            violations.append((f"{path}[{key!r}]", "values are up to 256 characters without control characters"))
    return violations


def quota_usage(quotas: tenant_pb2.TenantQuotas, used: dict[str, int]) -> list[tenant_pb2.QuotaUsage]:
    """Every quota with what is used of it."""
    out = []
    for name in QUOTA_FIELDS:
        usage = tenant_pb2.QuotaUsage(quota=name, used=used.get(name, 0))
        if quotas.HasField(name):
            limit = getattr(quotas, name)
            usage.limit = limit
            if name not in PER_REQUEST:
                usage.utilization_percent = (usage.used / limit * 100) if limit else (100.0 if usage.used else 0.0)
        out.append(usage)
    return out
