"""The quotas storage enforces on every append, in order: events per UTC minute, hour and day, and
storage bytes.

The writer sees every append of the suite one after another, so its check cannot be raced: an append
that would cross a limit is refused whole, before anything of it is written, however many appends arrive
at once (the over-admission bound is 0). Limits are the tenant's plan (TenantRecord.quotas, as the admin
service sets it) with the overrides in force (suite-wide records in namespace "quota_overrides", read at
start and applied as soon as one is written). The event windows are counted per tenant in memory
(`Windows`) and on disk with every batch (the minute's and the hour's counts; the day is the sum of its
hours), so a restart keeps them; the storage-bytes figure is the exact one storage keeps
(GetTenantUsageResponse.storage_bytes).
"""

from __future__ import annotations

from dataclasses import dataclass

from allsource.storage.v1 import model_pb2

from shared.core.errors import ResourceExhausted
from shared.core.timestamps import to_timestamp
from shared.limits.plans import Overrides, exceeded, limit_of, past_soft, split_override_key
from shared.limits.windows import DAY, HOUR, MINUTE, NS, window_end_ns

MINUTE_NS, HOUR_NS, DAY_NS = MINUTE * NS, HOUR * NS, DAY * NS
WINDOWS = (("max_events_per_minute", MINUTE), ("max_events_per_hour", HOUR), ("max_events_per_day", DAY))


class Windows:
    """A tenant's appended events in the current UTC minute, hour and day."""

    __slots__ = ("day", "day_events", "hour", "hour_events", "minute", "minute_events")

    def __init__(self, now_ns: int, hour_events: int = 0, day_events: int = 0, minute_events: int = 0) -> None:
        self.minute, self.minute_events = now_ns // MINUTE_NS, minute_events
        self.hour, self.hour_events = now_ns // HOUR_NS, hour_events
        self.day, self.day_events = now_ns // DAY_NS, day_events

    def counts(self, now_ns: int) -> tuple[int, int, int]:
        """Events in the minute, hour and day of `now_ns`."""
        return (
            self.minute_events if self.minute == now_ns // MINUTE_NS else 0,
            self.hour_events if self.hour == now_ns // HOUR_NS else 0,
            self.day_events if self.day == now_ns // DAY_NS else 0,
        )

    def add(self, events: int, now_ns: int) -> None:
        """Count events appended at `now_ns`."""
        minute, hour, day = self.counts(now_ns)
        self.minute, self.minute_events = now_ns // MINUTE_NS, minute + events
        self.hour, self.hour_events = now_ns // HOUR_NS, hour + events
        self.day, self.day_events = now_ns // DAY_NS, day + events


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits storage enforces for one tenant now (None: no limit)."""

    storage_bytes: int | None
    per_window: tuple[int | None, int | None, int | None]  # minute, hour, day


class StorageQuotas:
    """Every tenant's enforced limits: plans with overrides."""

    def __init__(self) -> None:
        self._plans: dict[str, model_pb2.TenantQuotas] = {}
        self.overrides = Overrides()
        # tenant -> (overrides version, valid until ns, limits) of the last lookup
        self._cache: dict[str, tuple[int, int, Limits | None]] = {}

    def set_plan(self, tenant_id: str, quotas: model_pb2.TenantQuotas | None) -> None:
        """A tenant record was written (or removed: None)."""
        if quotas is None:
            self._plans.pop(tenant_id, None)
        else:
            self._plans[tenant_id] = quotas
        self._cache.pop(tenant_id, None)

    def put_override(self, key: str, value: bytes) -> None:
        """An override record was written."""
        record = model_pb2.QuotaOverrideRecord.FromString(value)
        tenant_id, quota = split_override_key(key)
        self.overrides.set(tenant_id, quota, record.value, record.expires_at.ToNanoseconds())
        self._cache.pop(tenant_id, None)

    def delete_override(self, key: str) -> None:
        """An override record was deleted."""
        tenant_id, quota = split_override_key(key)
        self.overrides.clear(tenant_id, quota)
        self._cache.pop(tenant_id, None)

    def limits(self, tenant_id: str, now_ns: int) -> Limits | None:
        """The tenant's enforced limits now; None when it has none."""
        cached = self._cache.get(tenant_id)
        if cached is not None and cached[0] == self.overrides.version and now_ns < cached[1]:
            return cached[2]
        quotas = self._plans.get(tenant_id)
        overrides = self.overrides.of(tenant_id)
        found = Limits(
            limit_of(quotas, overrides, "max_storage_bytes", now_ns),
            (
                limit_of(quotas, overrides, "max_events_per_minute", now_ns),
                limit_of(quotas, overrides, "max_events_per_hour", now_ns),
                limit_of(quotas, overrides, "max_events_per_day", now_ns),
            ),
        )
        limits = None if found.storage_bytes is None and found.per_window == (None, None, None) else found
        until = self.overrides.next_expiry_ns(tenant_id, now_ns) or (1 << 63)
        self._cache[tenant_id] = (self.overrides.version, until, limits)
        return limits

    def window_refusal(
        self, tenant_id: str, limits: Limits, used: tuple[int, int, int], events: int, now_ns: int
    ) -> ResourceExhausted | None:
        """The refusal of an append of `events` that would cross an event window, if it would."""
        for (name, length), limit, count in zip(WINDOWS, limits.per_window, used, strict=True):
            if limit is not None and count + events > limit:
                ends = window_end_ns(length, now_ns)
                return exceeded(
                    tenant_id,
                    name,
                    limit,
                    count,
                    f"{count} of {limit} events used this UTC {name.rsplit('_', 1)[-1]}; this append has {events}",
                    retry_after=(ends - now_ns) / NS,
                    resets_at_ns=ends,
                )
        return None

    def warning(self, limits: Limits, used: tuple[int, int, int], stored: int, now_ns: int, ratio: float) -> str:
        """The soft-limit warning for a tenant at these counts (past `ratio` of a limit), or ""."""
        parts = []
        for (name, length), limit, count in zip(WINDOWS, limits.per_window, used, strict=True):
            if limit is not None and past_soft(count, limit, ratio):
                resets = to_timestamp(window_end_ns(length, now_ns)).ToJsonString()
                parts.append(f"{name}: {count} of {limit} used, resets {resets}")
        if limits.storage_bytes is not None and past_soft(stored, limits.storage_bytes, ratio):
            parts.append(f"max_storage_bytes: {stored} of {limits.storage_bytes} used")
        return "; ".join(parts)
