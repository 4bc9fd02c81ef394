"""Token buckets, UTC windows, effective limits and the in-memory limiter, on an injected clock."""

from __future__ import annotations

import calendar
import math

import pytest
from allsource.storage.v1 import model_pb2
from allsource.v1 import tenant_pb2

from services.storage.quotas import StorageQuotas, Windows
from shared.core.reasons import Reason
from shared.limits.bucket import TokenBucket
from shared.limits.limiter import Limit, MemoryLimiter
from shared.limits.plans import Overrides, limit_of
from shared.limits.windows import DAY, HOUR, MINUTE, NS, seconds_to_reset, window_end_ns


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def utc_ns(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: float = 0.0) -> int:
    return int((calendar.timegm((y, mo, d, h, mi, 0)) + s) * NS)


# -- the bucket ------------------------------------------------------------------------------------


def test_a_bucket_starts_full_spends_its_burst_then_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=10, burst=20, now=0.0)
    for _ in range(20):
        assert bucket.take(1, 0.0) == 0.0
    wait = bucket.take(1, 0.0)
    assert wait == pytest.approx(0.1)  # one token at 10 per second
    assert bucket.take(1, 0.05) == pytest.approx(0.05)  # half a token accrued: half the wait left
    assert bucket.take(1, 0.1) == 0.0
    assert bucket.take(5, 0.6) == 0.0  # 5 accrued in 0.5 s
    assert bucket.take(1, 0.6) > 0
    bucket.refill(100.0)
    assert bucket.tokens == 20  # never above the burst
    assert bucket.reset_s() == 0.0


def test_a_refused_take_takes_nothing() -> None:
    bucket = TokenBucket(rate=1, burst=3, now=0.0)
    assert bucket.take(2, 0.0) == 0.0
    assert bucket.take(2, 0.0) == pytest.approx(1.0)
    assert bucket.tokens == 1
    assert bucket.take(1, 0.0) == 0.0


def test_a_cost_above_the_burst_goes_when_full_and_leaves_debt() -> None:
    bucket = TokenBucket(rate=100, burst=50, now=0.0)
    assert bucket.take(500, 0.0) == 0.0  # full: admitted, 450 in debt
    assert bucket.tokens == -450
    assert bucket.wait(1, 0.0) == pytest.approx(4.51)  # the debt is paid off at the rate first
    assert bucket.reset_s() == pytest.approx(5.0)
    assert bucket.take(500, 4.0) > 0  # not full yet: the big cost waits for a full bucket
    assert bucket.take(500, 5.0) == 0.0


def test_a_new_rate_applies_at_once_and_cuts_tokens_to_the_new_burst() -> None:
    bucket = TokenBucket(rate=10, burst=100, now=0.0)
    bucket.configure(rate=1, burst=5)
    assert bucket.tokens == 5
    for _ in range(5):
        assert bucket.take(1, 0.0) == 0.0
    assert bucket.take(1, 0.0) == pytest.approx(1.0)


def test_a_bucket_without_rate_never_refills() -> None:
    bucket = TokenBucket(rate=0, burst=1, now=0.0)
    assert bucket.take(1, 0.0) == 0.0
    assert math.isinf(bucket.take(1, 10.0))


# -- UTC windows -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "length", "ends"),
    [
        (utc_ns(2026, 11, 28, 23, 59, 59.5), DAY, utc_ns(2026, 11, 29)),
        (utc_ns(2026, 11, 29), DAY, utc_ns(2026, 11, 30)),  # a boundary belongs to the window it starts
        (utc_ns(2026, 12, 31, 23, 30), DAY, utc_ns(2027, 1, 1)),
        (utc_ns(2026, 11, 28, 13, 59, 59.999), HOUR, utc_ns(2026, 11, 28, 14)),
        (utc_ns(2026, 11, 28, 13, 7, 1), MINUTE, utc_ns(2026, 11, 28, 13, 8)),
        (utc_ns(2028, 2, 28, 12), DAY, utc_ns(2028, 2, 29)),  # a leap day is a day like any other
    ],
)
def test_windows_end_on_utc_boundaries(now: int, length: int, ends: int) -> None:
    assert window_end_ns(length, now) == ends
    assert seconds_to_reset(length, now) == pytest.approx((ends - now) / NS)


def test_storage_windows_count_each_window_and_start_again_at_its_boundary() -> None:
    start = utc_ns(2026, 11, 28, 23, 58, 30)
    windows = Windows(start, hour_events=40, day_events=900)
    windows.add(10, start)
    assert windows.counts(start) == (10, 50, 910)
    next_minute = utc_ns(2026, 11, 28, 23, 59, 0)
    assert windows.counts(next_minute) == (0, 50, 910)
    windows.add(5, next_minute)
    assert windows.counts(next_minute) == (5, 55, 915)
    midnight = utc_ns(2026, 11, 29)
    assert windows.counts(midnight) == (0, 0, 0)  # a new minute, hour and day
    windows.add(1, midnight)
    assert windows.counts(midnight + NS) == (1, 1, 1)


# -- plans and overrides ---------------------------------------------------------------------------


def test_an_override_replaces_the_plan_until_it_expires() -> None:
    quotas = tenant_pb2.TenantQuotas(max_events_per_day=100)
    overrides = Overrides()
    assert limit_of(quotas, overrides.of("acme"), "max_events_per_day", 0) == 100
    assert limit_of(quotas, overrides.of("acme"), "max_storage_bytes", 0) is None  # unset: no limit
    overrides.set("acme", "max_events_per_day", 5, expires_ns=1_000)
    assert limit_of(quotas, overrides.of("acme"), "max_events_per_day", 999) == 5
    assert limit_of(quotas, overrides.of("acme"), "max_events_per_day", 1_000) == 100  # expired
    assert overrides.next_expiry_ns("acme", 10) == 1_000
    assert overrides.next_expiry_ns("acme", 1_000) is None
    assert limit_of(quotas, overrides.of("other"), "max_events_per_day", 0) == 100
    version = overrides.version
    overrides.clear("acme", "max_events_per_day")
    assert overrides.version > version and not overrides.of("acme")


def test_storage_refuses_an_append_that_would_cross_a_window_and_says_when_it_resets() -> None:
    quotas = StorageQuotas()
    quotas.set_plan("acme", model_pb2.TenantQuotas(max_events_per_minute=10, max_events_per_day=100))
    now = utc_ns(2026, 11, 28, 10, 30, 15)
    limits = quotas.limits("acme", now)
    assert limits is not None
    assert quotas.window_refusal("acme", limits, (0, 0, 0), 10, now) is None  # exactly the limit fits
    refusal = quotas.window_refusal("acme", limits, (5, 5, 5), 6, now)
    assert refusal is not None and refusal.reason == Reason.QUOTA_EXCEEDED
    assert refusal.metadata["limit"] == "max_events_per_minute" and refusal.metadata["used"] == "5"
    assert refusal.retry_after == pytest.approx(45.0)
    assert refusal.metadata["resets_at"] == "2026-11-28T10:31:00Z"
    day = quotas.window_refusal("acme", limits, (0, 0, 95), 6, now)
    assert day is not None and day.metadata["limit"] == "max_events_per_day"
    assert day.retry_after == pytest.approx((utc_ns(2026, 11, 29) - now) / NS)
    assert quotas.limits("nobody", now) is None


def test_storage_applies_an_override_record_at_once_and_drops_it_when_it_expires() -> None:
    quotas = StorageQuotas()
    quotas.set_plan("acme", model_pb2.TenantQuotas(max_storage_bytes=1_000))
    now = utc_ns(2026, 11, 28)
    record = model_pb2.QuotaOverrideRecord(tenant_id="acme", quota="max_storage_bytes", value=50)
    record.expires_at.FromNanoseconds(now + 60 * NS)
    quotas.put_override("acme/max_storage_bytes", record.SerializeToString())
    limits = quotas.limits("acme", now)
    assert limits is not None and limits.storage_bytes == 50
    later = quotas.limits("acme", now + 61 * NS)
    assert later is not None and later.storage_bytes == 1_000
    quotas.delete_override("acme/max_storage_bytes")
    assert quotas.overrides.of("acme") == {}


def test_storage_warns_from_the_soft_share() -> None:
    quotas = StorageQuotas()
    quotas.set_plan("acme", model_pb2.TenantQuotas(max_events_per_hour=100, max_storage_bytes=1000))
    now = utc_ns(2026, 11, 28, 10)
    limits = quotas.limits("acme", now)
    assert limits is not None
    assert quotas.warning(limits, (0, 79, 79), 799, now, 0.8) == ""
    warning = quotas.warning(limits, (0, 80, 80), 800, now, 0.8)
    assert "max_events_per_hour: 80 of 100 used, resets 2026-11-28T11:00:00Z" in warning
    assert "max_storage_bytes: 800 of 1000" in warning


# -- the in-memory limiter -------------------------------------------------------------------------


def test_a_call_must_pass_every_limit_and_a_refusal_pays_nothing() -> None:
    clock = Clock()
    limiter = MemoryLimiter(clock=clock)
    tenant = Limit("t:a", rate=10, burst=10, name="max_request_units_per_second")
    method = Limit("m:a:X", rate=1, burst=2, name="limits.method_units_per_second.X")
    assert limiter.take((tenant, method), 1).wait == 0
    assert limiter.take((tenant, method), 1).wait == 0
    refused = limiter.take((tenant, method), 1)
    assert refused.wait == pytest.approx(1.0) and refused.limit == method
    tenant_bucket = limiter.state("t:a")
    assert tenant_bucket is not None and tenant_bucket.tokens == 8  # the refused call took nothing
    # Another method of the same tenant still goes: the method limit is its own.
    assert limiter.take((tenant,), 1).wait == 0


def test_the_verdict_names_the_most_restrictive_limit_and_the_soft_share() -> None:
    clock = Clock()
    limiter = MemoryLimiter(clock=clock, soft_ratio=0.8)
    wide = Limit("g", rate=1000, burst=1000, name="limits.global_units_per_second")
    narrow = Limit("t:a", rate=10, burst=10, name="max_request_units_per_second")
    verdict = limiter.take((wide, narrow), 7)
    assert verdict.limit == narrow and verdict.remaining == 3 and verdict.soft is None
    assert verdict.reset_s == pytest.approx(0.7)
    verdict = limiter.take((wide, narrow), 1)
    assert verdict.remaining == 2 and verdict.soft == narrow  # 80% of the burst spent


def test_idle_buckets_are_forgotten_at_the_bound() -> None:
    clock = Clock()
    limiter = MemoryLimiter(clock=clock, max_buckets=100)
    for i in range(100):
        limiter.take((Limit(f"c:{i}", 1, 1, "x"),), 1)
    clock.now += 5  # every bucket has refilled
    limiter.take((Limit("c:new", 1, 1, "x"),), 1)
    assert len(limiter) == 1
