"""Rate limiters: which calls may go now, by token buckets keyed by what they limit.

A call names every limit that applies to it (the suite's global rate, its tenant's plan, its tenant's
rate for the RPC, its credential's) and a cost; it is admitted only if every bucket can pay, and then
every bucket pays. `MemoryLimiter` keeps the buckets in the process (one replica: the embedded
default); `shared.limits.redis_limiter.RedisLimiter` shares them between replicas through Redis.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from shared.limits.bucket import TokenBucket

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Limit:
    """One rate limit as it applies to a call."""

    key: str  # the bucket: "g" (global), "t:<tenant>", "m:<tenant>:<method>", "c:<credential>", ...
    rate: float  # units per second
    burst: float  # the bucket's size
    name: str  # what refusals and warnings name: a TenantQuotas field or a setting


@dataclass(slots=True)
class Verdict:
    """What the limiter decided for one call."""

    wait: float  # 0: admitted (and paid); otherwise refused, and the seconds until it could be paid
    limit: Limit | None  # the limit that refused it, else the most restrictive one (least remaining)
    remaining: int = 0  # whole units left in that limit's bucket
    reset_s: float = 0.0  # seconds until that bucket is full again
    soft: Limit | None = None  # a limit this call took past its soft share


class RateLimiter(Protocol):
    """Decides calls; `take` may answer at once or, for a shared backend, after a round trip."""

    def take(self, limits: Sequence[Limit], cost: float) -> Verdict | Awaitable[Verdict]: ...

    def charge(self, limits: Sequence[Limit], cost: float) -> None:
        """Take `cost` whatever is left (into debt): for what a call turned out to cost."""

    async def close(self) -> None: ...


def verdict_of(limits: Sequence[Limit], buckets: Sequence[TokenBucket], soft_ratio: float) -> Verdict:
    """The verdict of an admitted call whose cost the buckets have paid: the most restrictive limit and
    the first past its soft share."""
    best = 0
    soft = None
    for i, bucket in enumerate(buckets):
        if bucket.tokens < buckets[best].tokens:
            best = i
        if soft is None and bucket.burst - bucket.tokens >= bucket.burst * soft_ratio:
            soft = limits[i]
    return Verdict(0.0, limits[best], buckets[best].remaining(), buckets[best].reset_s(), soft)


class MemoryLimiter:
    """Token buckets in this process."""

    def __init__(
        self, *, soft_ratio: float = 0.8, max_buckets: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.soft_ratio = soft_ratio
        self.max_buckets = max_buckets
        self.clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, limits: Sequence[Limit], cost: float) -> Verdict:
        now = self.clock()
        buckets = []
        refused: Limit | None = None
        longest = 0.0
        for limit in limits:
            bucket = self._buckets.get(limit.key)
            if bucket is None:
                bucket = self._new(limit, now)
            elif bucket.rate != limit.rate or bucket.burst != limit.burst:
                bucket.configure(limit.rate, limit.burst)
            wait = bucket.wait(cost, now)
            if wait > longest:
                longest, refused = wait, limit
            buckets.append(bucket)
        if refused is not None:
            bucket = self._buckets[refused.key]
            return Verdict(longest, refused, bucket.remaining(), bucket.reset_s())
        for bucket in buckets:
            bucket.tokens -= cost
        return verdict_of(limits, buckets, self.soft_ratio)

    def charge(self, limits: Sequence[Limit], cost: float) -> None:
        now = self.clock()
        for limit in limits:
            bucket = self._buckets.get(limit.key) or self._new(limit, now)
            bucket.refill(now)
            bucket.tokens -= cost

    def _new(self, limit: Limit, now: float) -> TokenBucket:
        if len(self._buckets) >= self.max_buckets:
            # A full bucket is the same as no bucket: forgetting those loses nothing.
            self._buckets = {k: b for k, b in self._buckets.items() if not b.full(now)}
            if len(self._buckets) >= self.max_buckets:
                log.warning("rate-limit buckets at their bound; starting afresh", extra={"buckets": len(self._buckets)})
                self._buckets.clear()
        bucket = self._buckets[limit.key] = TokenBucket(limit.rate, limit.burst, now)
        return bucket

    def state(self, key: str) -> TokenBucket | None:
        """A bucket, for reports and tests."""
        return self._buckets.get(key)

    async def close(self) -> None:
        return None
