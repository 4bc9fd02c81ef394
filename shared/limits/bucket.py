"""A token bucket on an injected clock.

`rate` tokens are added per second, up to `burst`. A call takes its cost. A cost larger than the burst
could never be paid in one go, so such a call is admitted when the bucket is full and leaves it in
debt (negative): the average rate still holds for any cost, and the next calls wait the debt off.
"""

from __future__ import annotations

import math


class TokenBucket:
    """One bucket. Times are seconds on whatever clock the caller uses (monotonic in production)."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def refill(self, now: float) -> None:
        """Add what accrued since the last look."""
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def configure(self, rate: float, burst: float) -> None:
        """Take a new rate and burst (a plan change or an override); tokens above the burst are cut."""
        self.rate, self.burst = rate, burst
        self.tokens = min(self.tokens, burst)

    def wait(self, cost: float, now: float) -> float:
        """Seconds until `cost` can be taken; 0 when it can be now."""
        self.refill(now)
        need = min(cost, self.burst)
        if self.tokens >= need:
            return 0.0
        return (need - self.tokens) / self.rate if self.rate > 0 else math.inf

    def take(self, cost: float, now: float) -> float:
        """Take `cost` if it can be taken now (returns 0), else take nothing and return the wait."""
        wait = self.wait(cost, now)
        if wait == 0.0:
            self.tokens -= cost
        return wait

    def remaining(self) -> int:
        """Whole tokens left (as of the last refill)."""
        return max(0, int(self.tokens))

    def reset_s(self) -> float:
        """Seconds until the bucket is full again (the IETF RateLimit reset)."""
        if self.tokens >= self.burst:
            return 0.0
        return (self.burst - self.tokens) / self.rate if self.rate > 0 else math.inf

    def full(self, now: float) -> bool:
        """Whether the bucket has refilled completely (it can then be forgotten and made again)."""
        self.refill(now)
        return self.tokens >= self.burst
