"""What rate limits cost: single appends with 32 clients, limits off / in memory / in Redis, side by side.

    .venv/bin/python bench/limits.py [--rounds 5] [--calls 6000] [--quick]

Three suites run at once on this machine: `limits.rate_limits = false` (the baseline), the in-memory
backend, and the Redis backend against a private redis-server on a free loopback port. Each has a tenant
whose plan has a rate limit so high it never refuses (1e9 units per second): every call pays for the
whole limiter path (plan, buckets, x-ratelimit-* metadata) without being refused. The clients use that
tenant's API key, not the operator's (operators are exempt from limits). Rounds alternate the order of
the suites so that the machine's load affects all alike; the medians and ratios are printed.

Then the limiter's own cost per call, in this process: the admission stage's `enter` on one call, with
the governor off, in memory, and with Redis (leases), p50 and p99 over many calls.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import run as bench  # noqa: E402
from allsource.v1 import (  # noqa: E402
    admin_pb2,
    admin_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    event_pb2,
    ingest_pb2,
    options_pb2,
    tenant_pb2,
)

from shared.auth import rbac  # noqa: E402
from shared.auth.principal import Principal  # noqa: E402
from shared.config.settings import LimitsSettings  # noqa: E402
from shared.limits.book import LimitBook  # noqa: E402
from shared.limits.governor import Governor  # noqa: E402
from shared.limits.limiter import MemoryLimiter, RateLimiter  # noqa: E402
from shared.limits.redis_limiter import RedisLimiter  # noqa: E402
from shared.rpc.chain import Call, MethodInfo  # noqa: E402
from shared.stages.admission import Admission  # noqa: E402
from tests.external import RedisServer  # noqa: E402
from tests.harness import Suite  # noqa: E402

HUGE = 1_000_000_000
APPEND = "/allsource.v1.IngestService/AppendEvents"


def tenant_key(suite: Suite) -> tuple[tuple[str, str], ...]:
    """A tenant whose rate limit never refuses, and a writer key of it."""
    admin_pb2_grpc.AdminServiceStub(suite.channel("admin")).CreateTenant(
        admin_pb2.CreateTenantRequest(
            tenant_id="bench",
            quota_preset=tenant_pb2.QUOTA_PRESET_CUSTOM,
            quotas=tenant_pb2.TenantQuotas(max_request_units_per_second=HUGE, max_request_units_burst=HUGE),
        ),
        timeout=20,
    )
    acting = (*suite.auth_metadata(), ("x-allsource-tenant", "bench"))
    made = auth_pb2_grpc.AuthServiceStub(suite.channel("admin", acting)).CreateApiKey(
        auth_pb2.CreateApiKeyRequest(name="bench", role=auth_pb2.ROLE_SERVICE_ACCOUNT), timeout=20
    )
    return (("authorization", f"Bearer {made.secret}"),)


# -- the limiter's own cost ---------------------------------------------------------------------------


class _Context:
    async def send_initial_metadata(self, metadata: Any) -> None:
        return None

    def set_trailing_metadata(self, metadata: Any) -> None:
        return None


class _Records:
    async def list(self, *a: Any) -> list[Any]:
        return []


async def admission_cost(limiter: RateLimiter | None, calls: int) -> tuple[float, float]:
    """p50 and p99 (microseconds) of the admission stage's enter on one append of one event."""
    requirement = rbac.requirements([ingest_pb2.DESCRIPTOR.services_by_name["IngestService"]])[APPEND]
    settings = LimitsSettings(rate_limits=limiter is not None)
    governor = Governor(settings, LimitBook(_Records()), limiter or MemoryLimiter())  # type: ignore[arg-type]
    stage = Admission(settings, governor)
    principal = Principal(
        "api_key", "k", "k", "bench", auth_pb2.ROLE_SERVICE_ACCOUNT, frozenset({options_pb2.PERMISSION_WRITE})
    )
    tenant = tenant_pb2.Tenant(
        tenant_id="bench",
        quotas=tenant_pb2.TenantQuotas(max_request_units_per_second=HUGE, max_request_units_burst=HUGE),
    )
    request = ingest_pb2.AppendEventsRequest(stream_id="s", events=[event_pb2.EventData(event_type="E", payload=b"{}")])
    info = MethodInfo(APPEND, requirement)
    context = _Context()
    samples = []
    for i in range(calls + 1000):
        call = Call(info, context, request, (), "", 0.0, principal=principal, tenant=tenant)  # type: ignore[arg-type]
        started = time.perf_counter_ns()
        pending = stage.enter(call)
        if pending is not None:
            await pending
        took = time.perf_counter_ns() - started
        stage.exit(call, None)  # type: ignore[arg-type]
        if i >= 1000:  # after warm-up
            samples.append(took / 1000)
    samples.sort()
    return samples[len(samples) // 2], samples[int(0.99 * (len(samples) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=6000)
    parser.add_argument("--quick", action="store_true", help="small sizes (checks the script, not speed)")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.calls = 1, 300
    workdir = Path(tempfile.mkdtemp(prefix="allsource-limits-"))
    redis = RedisServer(workdir / "redis").start()
    suites = {
        "limits off": Suite(workdir / "off", extra_env={"ALLSOURCE_LIMITS__RATE_LIMITS": "false"}),
        "in memory": Suite(workdir / "memory"),
        "redis": Suite(
            workdir / "redis-suite",
            extra_env={"ALLSOURCE_LIMITS__BACKEND": "redis", "ALLSOURCE_LIMITS__REDIS_URL": redis.url},
        ),
    }
    figures: dict[str, list[float]] = {name: [] for name in suites}
    keys: dict[str, tuple[tuple[str, str], ...]] = {}
    try:
        for name, suite in suites.items():
            suite.start_all()
            keys[name] = tenant_key(suite)
        names = list(suites)
        for r in range(args.rounds):
            order = names[r % 3 :] + names[: r % 3]
            for name in order:
                bench.CREDENTIALS = keys[name]
                figures[name].append(asyncio.run(bench.single_appends(suites[name].address("ingest"), args.calls)))
            print(
                f"round {r + 1}/{args.rounds}: " + "; ".join(f"{n} {figures[n][-1]:,.0f}/s" for n in names), flush=True
            )
    finally:
        for suite in suites.values():
            suite.stop_all()
        redis.stop()
    base = statistics.median(figures["limits off"])
    print(f"\nAppendEvents calls/s, 32 clients, median of {args.rounds} interleaved rounds")
    for name in suites:
        value = statistics.median(figures[name])
        ratios = [a / b for a, b in zip(figures[name], figures["limits off"], strict=True)]
        print(
            f"  {name:<12} {value:>8,.0f}/s  ratio to limits off {value / base:.2f} "
            f"(per round {', '.join(f'{x:.2f}' for x in ratios)})"
        )

    async def costs() -> dict[str, tuple[float, float]]:
        calls = 2000 if args.quick else 50_000
        redis_cost = RedisServer(workdir / "redis-cost").start()
        try:
            shared = RedisLimiter(redis_cost.url, prefix="bench:")
            out = {
                "off": await admission_cost(None, calls),
                "in memory": await admission_cost(MemoryLimiter(), calls),
                "redis (leases)": await admission_cost(shared, calls),
            }
            print(f"  (redis round trips for {calls + 1000} calls: {shared.round_trips})")
            await shared.close()
            return out
        finally:
            redis_cost.stop()

    results = asyncio.run(costs())
    print("\nthe admission stage's own cost per call (this process), microseconds")
    for name, (p50, p99) in results.items():
        print(f"  {name:<16} p50 {p50:6.1f}  p99 {p99:6.1f}")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
