"""The Redis limiter against a real redis-server started by the test: two limiters stand for two
replicas sharing one budget. Calls are made as fast as the limiters answer, on a real clock."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.core.errors import AllSourceError
from shared.core.reasons import Reason
from shared.limits.limiter import Limit
from shared.limits.redis_limiter import LEASE_TTL_S, RedisLimiter
from tests.external import RedisServer, redis_server

TIMEOUT_S = 0.1


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path / "redis") as server:
        yield server


def limiter(server: RedisServer, **kw: object) -> RedisLimiter:
    kw.setdefault("timeout_s", TIMEOUT_S)
    kw.setdefault("prefix", f"test:{time.monotonic_ns()}:")
    return RedisLimiter(server.url, **kw)  # type: ignore[arg-type]


async def call(lim: RedisLimiter, limits: tuple[Limit, ...], cost: float = 1) -> tuple[bool, float]:
    """(admitted, seconds the limiter took to answer)."""
    started = time.monotonic()
    verdict = lim.take(limits, cost)
    if not hasattr(verdict, "wait"):
        verdict = await verdict  # type: ignore[misc]
    return verdict.wait == 0, time.monotonic() - started  # type: ignore[union-attr]


async def hammer(lim: RedisLimiter, limits: tuple[Limit, ...], seconds: float) -> tuple[int, int, float]:
    """Call as fast as possible for `seconds`: (admitted, refused, slowest answer)."""
    admitted = refused = 0
    slowest = 0.0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ok, took = await call(lim, limits)
        slowest = max(slowest, took)
        admitted += ok
        refused += not ok
        await asyncio.sleep(0)
    return admitted, refused, slowest


async def until_available(lim: RedisLimiter, timeout: float = 5.0) -> None:
    """Wait (bounded) for the limiter's background probe to find Redis again."""
    for _ in range(int(timeout / 0.05)):
        if lim.available:
            return
        await asyncio.sleep(0.05)


def test_two_replicas_admit_the_shared_limit_within_the_lease_bound(redis: RedisServer) -> None:
    async def body() -> None:
        prefix = f"shared:{time.monotonic_ns()}:"
        a, b = limiter(redis, prefix=prefix, lease_s=0.1), limiter(redis, prefix=prefix, lease_s=0.1)
        limit = Limit("t:acme", rate=200, burst=100, name="max_request_units_per_second")
        seconds = 2.0
        started = time.monotonic()
        (got_a, _, _), (got_b, _, _) = await asyncio.gather(hammer(a, (limit,), seconds), hammer(b, (limit,), seconds))
        elapsed = time.monotonic() - started
        allowance = limit.burst + limit.rate * elapsed
        lease = limit.rate * 0.1  # one lease per replica may be spent later than it was taken
        total = got_a + got_b
        assert total <= allowance + 2 * lease, (got_a, got_b, allowance)
        assert total >= 0.8 * (limit.burst + limit.rate * seconds), (got_a, got_b)  # not starved either
        assert got_a > 0.2 * total and got_b > 0.2 * total, (got_a, got_b)  # both replicas take part
        # Leases: far fewer round trips than admitted calls.
        assert a.round_trips + b.round_trips < total / 5, (a.round_trips, b.round_trips, total)
        print(f"leases: {got_a} + {got_b} admitted in {elapsed:.2f} s, {a.round_trips + b.round_trips} round trips")
        await a.close()
        await b.close()

    asyncio.run(body())


def test_a_refused_tenant_does_not_hammer_redis(redis: RedisServer) -> None:
    async def body() -> None:
        lim = limiter(redis)
        limit = Limit("t:noisy", rate=5, burst=5, name="max_request_units_per_second")
        for _ in range(5):
            assert (await call(lim, (limit,)))[0]
        trips = lim.round_trips
        started = time.monotonic()
        results = [await call(lim, (limit,)) for _ in range(500)]
        refilled = 5 * (time.monotonic() - started)
        assert sum(ok for ok, _ in results) <= refilled + 2  # at most what refilled meanwhile (and a lease)
        assert lim.round_trips - trips <= 10, lim.round_trips - trips
        await lim.close()

    asyncio.run(body())


@pytest.mark.parametrize("fail_open", [True, False], ids=["fail-open", "fail-closed"])
def test_redis_stopped_mid_test_never_hangs_a_call_and_recovers(redis: RedisServer, fail_open: bool) -> None:
    async def body() -> None:
        lim = limiter(redis, fail_open=fail_open)
        limit = Limit("t:acme", rate=50, burst=50, name="max_request_units_per_second")
        assert (await call(lim, (limit,)))[0]
        redis.stop()
        await asyncio.sleep(LEASE_TTL_S + 0.1)  # the lease taken before has expired
        admitted, refused, slowest = 0, 0, 0.0
        errors: list[AllSourceError] = []
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            started = time.monotonic()
            try:
                ok, _ = await call(lim, (limit,))
            except AllSourceError as exc:
                errors.append(exc)
                ok = False
            slowest = max(slowest, time.monotonic() - started)
            admitted += ok
            refused += not ok
            await asyncio.sleep(0.002)
        assert slowest < TIMEOUT_S + 0.15, slowest  # bounded by limits.redis_timeout_s, never a hang
        assert lim.failures >= 1 and not lim.available
        if fail_open:
            # Per-replica buckets of the same limit: at most the burst plus the rate over the outage.
            assert not errors
            assert 0 < admitted <= limit.burst + limit.rate * 1.6 + 1, admitted
        else:
            assert admitted == 0 and errors
            assert {e.reason for e in errors} == {Reason.LIMITER_UNAVAILABLE}
            assert all(e.code.name == "UNAVAILABLE" and e.retry_after for e in errors)
        redis.start()  # the same port
        await until_available(lim)
        assert lim.available, "the limiter should use Redis again once it answers"
        trips = lim.round_trips
        assert (await call(lim, (limit,)))[0]
        assert lim.round_trips > trips
        await lim.close()

    asyncio.run(body())


def test_a_hung_redis_costs_at_most_the_timeout(redis: RedisServer) -> None:
    async def body() -> None:
        lim = limiter(redis, fail_open=True)
        limit = Limit("t:acme", rate=1000, burst=1000, name="max_request_units_per_second")
        assert (await call(lim, (limit,)))[0]
        assert redis.proc is not None
        os.kill(redis.proc.pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(LEASE_TTL_S + 0.1)
            slowest = 0.0
            for _ in range(50):
                ok, took = await call(lim, (limit,))
                assert ok
                slowest = max(slowest, took)
            assert slowest < TIMEOUT_S + 0.15, slowest
        finally:
            os.kill(redis.proc.pid, signal.SIGCONT)
        await until_available(lim)
        assert lim.available
        await lim.close()

    asyncio.run(body())
