"""Rate limits shared by every replica through Redis, with local leases so that Redis is not on the
path of every call.

The buckets live in Redis (one hash per bucket: tokens and the time of the last refill, by Redis's own
clock, so replicas' clocks do not matter), changed only by one Lua script, atomically. A replica does
not ask Redis per call: it takes a *lease* of tokens from a bucket (about `limits.lease_s` seconds of the
bucket's rate) and spends it locally; when a lease is half spent it fetches the next one in the
background, so under steady load calls never wait for Redis, and one round trip serves many calls.

Bounds (docs/OPERATIONS.md, "Rate limits"):
- Tokens are taken from the shared bucket when leased, so leasing never admits more than the bucket
  allows; a lease only moves *when* a token is spent, by at most its lifetime (`LEASE_TTL_S`). Over any
  interval the suite admits at most the bucket's allowance plus one lease per replica per bucket
  (rate * lease_s each); tokens leased and not spent before the lease expires are lost (admitting less,
  never more).
- A refused call is refused locally until the bucket could hold a whole lease again, without another
  round trip (so at the limit a replica may wait up to one lease longer than the bucket alone would),
  so a tenant hammering past its limit does not hammer Redis.
- Redis slow or down: no call waits longer than `limits.redis_timeout_s`. The limiter then stops
  asking Redis, probes it twice a second in the background, and meanwhile either admits by per-replica
  buckets of the same limits (`limits.fail_open = true`: each replica admits up to the whole limit, so
  the suite at most replicas x limit) or refuses with UNAVAILABLE / LIMITER_UNAVAILABLE (fail closed).
  Failures are logged (at most every 10 s) and counted; once Redis answers, shared limits resume.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from shared.core.errors import Unavailable
from shared.core.reasons import Reason
from shared.limits.limiter import Limit, MemoryLimiter, Verdict

log = logging.getLogger(__name__)

LEASE_TTL_S = 1.0
PROBE_EVERY_S = 0.5
MAX_LEASES = 100_000

# KEYS: buckets. ARGV: per bucket rate, burst, want, need. Per bucket it returns granted, the tokens left
# in Redis after the grant, and (when nothing was granted) the seconds until `need` could be.
TAKE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local out = {}
for i, key in ipairs(KEYS) do
  local base = (i - 1) * 4
  local rate = tonumber(ARGV[base + 1])
  local burst = tonumber(ARGV[base + 2])
  local want = tonumber(ARGV[base + 3])
  local need = tonumber(ARGV[base + 4])
  local state = redis.call('HMGET', key, 'tokens', 'stamp')
  local tokens = tonumber(state[1])
  local stamp = tonumber(state[2])
  if tokens == nil or stamp == nil then
    tokens = burst
    stamp = now
  end
  if now > stamp then
    tokens = math.min(burst, tokens + (now - stamp) * rate)
    stamp = now
  end
  local floor_need = math.min(need, burst)
  local granted = 0
  local wait = 0
  if tokens >= floor_need then
    granted = math.max(need, math.min(want, math.floor(tokens)))
    tokens = tokens - granted
  else
    wait = (floor_need - tokens) / rate
  end
  redis.call('HSET', key, 'tokens', tostring(tokens), 'stamp', tostring(stamp))
  redis.call('PEXPIRE', key, math.ceil((burst - tokens) / rate * 1000) + 1000)
  out[#out + 1] = tostring(granted)
  out[#out + 1] = tostring(tokens)
  out[#out + 1] = tostring(wait)
end
return out
"""


class _Lease:
    """Tokens of one bucket held by this replica, and what Redis said of the bucket last."""

    __slots__ = ("ask_share", "expires", "refilling", "remote", "remote_at", "tokens")

    def __init__(self) -> None:
        self.tokens = 0.0
        self.expires = 0.0
        self.remote = 0.0  # tokens left in Redis after the last grant
        self.remote_at = 0.0  # when (local clock)
        self.refilling = False
        # How many leases' worth Redis must be able to hold before this replica asks again: a random
        # share, drawn anew with each answer and held until the next. Replicas at the limit would otherwise
        # ask at the same moments every time, in the same order, the same one winning every lease (drawn
        # per call instead, the least of many draws made it no share at all: one replica got 12% of a
        # shared limit, the other 88%).
        self.ask_share = 1.0 + 0.3 * random.random()

    def redis_at_most(self, limit: Limit, now: float) -> float:
        """An upper bound of the tokens Redis could have now (other replicas only take)."""
        return min(limit.burst, self.remote + max(0.0, now - self.remote_at) * limit.rate)


class RedisLimiter:
    """Token buckets in Redis, spent through local leases."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "allsource:rl:",
        timeout_s: float = 0.1,
        lease_s: float = 0.1,
        fail_open: bool = True,
        soft_ratio: float = 0.8,
        clock: Callable[[], float] = time.monotonic,
        client: Any = None,
    ) -> None:
        import redis.asyncio  # imported here: only a suite configured for Redis needs the package

        self.prefix = prefix
        self.timeout_s = timeout_s
        self.lease_s = lease_s
        self.fail_open = fail_open
        self.soft_ratio = soft_ratio
        self.clock = clock
        self._redis = client or redis.asyncio.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry_on_timeout=False
        )
        self._script = self._redis.register_script(TAKE)
        self._leases: dict[str, _Lease] = {}
        self.fallback = MemoryLimiter(soft_ratio=soft_ratio, clock=clock)
        self.down_until = 0.0
        self._probe: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_complaint = -math.inf
        # Counters, for reports and tests.
        self.round_trips = 0
        self.failures = 0
        self.degraded_calls = 0

    @property
    def available(self) -> bool:
        """Whether Redis is being used (not in the degraded mode after a failure)."""
        return self.clock() >= self.down_until

    def _lease_size(self, limit: Limit) -> float:
        return float(min(limit.burst, max(1, math.ceil(limit.rate * self.lease_s))))

    # -- the call path --------------------------------------------------------------------------------

    def take(self, limits: Sequence[Limit], cost: float) -> Verdict | Awaitable[Verdict]:
        now = self.clock()
        if now < self.down_until:
            return self._degraded(limits, cost)
        leases = []
        for limit in limits:
            lease = self._leases.get(limit.key)
            if lease is None or lease.expires <= now or lease.tokens < cost:
                return self._slow(limits, cost)
            leases.append(lease)
        return self._pay(limits, leases, cost, now)

    def charge(self, limits: Sequence[Limit], cost: float) -> None:
        """Debt on the local leases: the next fetch for each bucket takes it from Redis too."""
        now = self.clock()
        if now < self.down_until:
            self.fallback.charge(limits, cost)
            return
        for limit in limits:
            lease = self._leases.get(limit.key)
            if lease is None:
                lease = self._record(limit, 0.0, limit.burst, now)
            lease.tokens -= cost

    def _pay(self, limits: Sequence[Limit], leases: Sequence[_Lease], cost: float, now: float) -> Verdict:
        best, best_left, soft = 0, math.inf, None
        for i, (limit, lease) in enumerate(zip(limits, leases, strict=True)):
            lease.tokens -= cost
            left = lease.tokens + lease.redis_at_most(limit, now)
            if left < best_left:
                best, best_left = i, left
            if soft is None and limit.burst - left >= limit.burst * self.soft_ratio:
                soft = limit
            size = self._lease_size(limit)
            if (
                not lease.refilling
                and lease.tokens < size / 2
                and lease.redis_at_most(limit, now) >= min(limit.burst, size * lease.ask_share)
            ):
                self._prefetch(limit, lease)
        limit = limits[best]
        reset = max(0.0, (limit.burst - best_left) / limit.rate) if limit.rate > 0 else 0.0
        return Verdict(0.0, limit, max(0, int(best_left)), reset, soft)

    async def _slow(self, limits: Sequence[Limit], cost: float) -> Verdict:
        for _ in range(3):
            now = self.clock()
            lacking: list[Limit] = []
            for limit in limits:
                lease = self._leases.get(limit.key)
                if lease is not None and lease.expires <= now:
                    lease.tokens = min(lease.tokens, 0.0)  # unspent tokens are given up; debt is kept
                if lease is None or lease.tokens < cost:
                    # Ask Redis only once it can have a whole lease (or this call's cost, if larger):
                    # at the limit, tokens then go a lease at a time rather than a round trip each.
                    # (A random share of a lease more, held until the next answer: _Lease.ask_share.)
                    size, least = self._lease_size(limit), min(cost, limit.burst)
                    if size > least:
                        share = lease.ask_share if lease is not None else 1.0
                        size = min(limit.burst, size * share)
                    need = max(least, size) - (lease.tokens if lease else 0.0)
                    if lease is not None and lease.remote_at and lease.redis_at_most(limit, now) < need:
                        # Redis cannot have them yet, whatever other replicas did: refuse here.
                        wait = (need - lease.redis_at_most(limit, now)) / limit.rate
                        return Verdict(wait, limit, max(0, int(lease.tokens)), self._reset(limit, lease, now))
                    lacking.append(limit)
            if not lacking:
                return self._pay(limits, [self._leases[limit.key] for limit in limits], cost, now)
            try:
                granted = await self._fetch(lacking, [cost - min(0.0, self._lease_tokens(limit)) for limit in lacking])
            except Exception as exc:  # the redis client raises its own errors, OSError and timeouts
                self._failed(exc)
                return self._degraded(limits, cost)
            now = self.clock()
            for limit, (got, remote, wait) in zip(lacking, granted, strict=True):
                lease = self._record(limit, got, remote, now)
                if not got:
                    return Verdict(wait, limit, max(0, int(remote)), self._reset(limit, lease, now))
        # Concurrent calls kept spending what was fetched: refuse this one briefly rather than loop.
        limit = limits[0]
        return Verdict(self.lease_s, limit, 0, self.lease_s)

    def _reset(self, limit: Limit, lease: _Lease, now: float) -> float:
        left = lease.tokens + lease.redis_at_most(limit, now)
        return max(0.0, (limit.burst - left) / limit.rate) if limit.rate > 0 else 0.0

    def _record(self, limit: Limit, got: float, remote: float, now: float) -> _Lease:
        lease = self._leases.get(limit.key)
        if lease is None:
            if len(self._leases) >= MAX_LEASES:
                self._leases = {k: v for k, v in self._leases.items() if v.expires > now}
            lease = self._leases[limit.key] = _Lease()
        if lease.expires <= now:
            lease.tokens = min(lease.tokens, 0.0)
        if got:
            lease.tokens += got
            lease.expires = now + LEASE_TTL_S
        lease.remote, lease.remote_at = remote, now
        lease.ask_share = 1.0 + 0.3 * random.random()
        return lease

    def _lease_tokens(self, limit: Limit) -> float:
        lease = self._leases.get(limit.key)
        return lease.tokens if lease is not None else 0.0

    async def _fetch(self, limits: Sequence[Limit], costs: Sequence[float]) -> list[tuple[float, float, float]]:
        """One round trip: a lease for each limit (at least its cost, else nothing)."""
        args: list[str] = []
        for limit, cost in zip(limits, costs, strict=True):
            want = max(cost, self._lease_size(limit))
            args += [repr(float(limit.rate)), repr(float(limit.burst)), repr(float(want)), repr(float(cost))]
        self.round_trips += 1
        async with asyncio.timeout(self.timeout_s):
            reply = await self._script(keys=[self.prefix + limit.key for limit in limits], args=args)
        values = [float(v) for v in reply]
        return [(values[i], values[i + 1], values[i + 2]) for i in range(0, len(values), 3)]

    def _prefetch(self, limit: Limit, lease: _Lease) -> None:
        lease.refilling = True

        async def refill() -> None:
            try:
                # A whole lease or nothing: sweeping up single tokens as they trickle in at the limit
                # would starve the other replicas.
                ((got, remote, _),) = await self._fetch([limit], [self._lease_size(limit)])
                self._record(limit, got, remote, self.clock())
            except Exception as exc:
                self._failed(exc)
            finally:
                lease.refilling = False

        task = asyncio.ensure_future(refill())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- Redis unavailable ----------------------------------------------------------------------------

    def _degraded(self, limits: Sequence[Limit], cost: float) -> Verdict:
        self.degraded_calls += 1
        if self.fail_open:
            return self.fallback.take(limits, cost)
        raise Unavailable(
            "rate limits cannot be checked (Redis does not answer); retry shortly",
            reason=Reason.LIMITER_UNAVAILABLE,
            metadata={"limit": "limits.backend", "value": "redis"},
            retry_after=PROBE_EVERY_S * 2,
        )

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        now = self.clock()
        self.down_until = now + 3600.0  # until the probe finds Redis again
        if now - self._last_complaint > 10:
            self._last_complaint = now
            log.warning(
                "Redis does not answer; rate limits %s until it does",
                "fall back to per-replica buckets" if self.fail_open else "refuse calls",
                extra={"detail": f"{type(exc).__name__}: {exc}"[:300]},
            )
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(self._wait_for_redis())

    async def _wait_for_redis(self) -> None:
        while True:
            await asyncio.sleep(PROBE_EVERY_S)
            try:
                async with asyncio.timeout(self.timeout_s):
                    await self._redis.ping()
            except Exception:
                continue
            self._leases.clear()  # whatever was leased before is stale
            self.down_until = 0.0
            log.warning("Redis answers again; rate limits are shared again")
            return

    async def close(self) -> None:
        for task in [*self._tasks, *([self._probe] if self._probe else [])]:
            task.cancel()
        await asyncio.gather(*self._tasks, *([self._probe] if self._probe else []), return_exceptions=True)
        await self._redis.aclose()
