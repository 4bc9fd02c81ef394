"""Two ingest replicas sharing one budget through a real redis-server started by the test; Redis stopped
and started again under load; emergency throttles reaching every replica and surviving restarts.

The suite runs with limits.backend = "redis" and a configuration file the tests rewrite and reload
(AdminService.ReloadConfig) to switch limits.fail_open.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from allsource.v1 import admin_pb2, tenant_pb2
from google.protobuf import duration_pb2

from services.suite import SERVICE_NAMES, wait_serving
from tests.external import RedisServer
from tests.harness import Suite, free_port, wait_until
from tests.limits.support import Tenant, append_request, make_tenant, operator, refusal

RATE, BURST = 40.0, 40.0
LEASE = 4.0  # limits.lease_s (0.1) of the rate


@dataclass
class Replicas:
    suite: Suite
    redis: RedisServer
    config: Path
    second: subprocess.Popen[bytes]
    second_address: str

    def addresses(self) -> list[str]:
        return [self.suite.address("ingest"), self.second_address]

    def start_second(self) -> None:
        port = int(self.second_address.rsplit(":", 1)[1])
        env = self.suite.env()
        env["ALLSOURCE_INGEST__PORT"] = str(port)
        env["ALLSOURCE_METRICS__INGEST_PORT"] = "0"  # beside the first replica's
        with open(self.suite.workdir / "ingest-2.log", "ab") as log:
            self.second = subprocess.Popen(
                [sys.executable, "-m", "services.ingest"], env=env, cwd=self.suite.workdir, stdout=log, stderr=log
            )
        assert wait_serving(self.second_address, SERVICE_NAMES["ingest"], 60, self.second), "replica 2 did not start"

    def stop_second(self) -> None:
        if self.second.poll() is None:
            self.second.terminate()
            try:
                self.second.wait(20)
            except subprocess.TimeoutExpired:
                self.second.kill()
                self.second.wait()

    def reload(self, fail_open: bool) -> None:
        self.config.write_text(f"[limits]\nfail_open = {'true' if fail_open else 'false'}\n")
        reply = operator(self.suite).ReloadConfig(admin_pb2.ReloadConfigRequest(), timeout=30)
        assert all(not r.error for r in reply.results), reply
        # The second replica is not among the suite's known addresses: it reloads on SIGHUP.
        self.second.send_signal(1)


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    workdir = tmp_path_factory.mktemp("replicas")
    redis = RedisServer(workdir / "redis").start()
    config = workdir / "limits.toml"
    config.write_text("[limits]\nfail_open = true\n")
    suite = Suite(
        workdir / "suite",
        extra_env={
            "ALLSOURCE_LIMITS__BACKEND": "redis",
            "ALLSOURCE_LIMITS__REDIS_URL": redis.url,
            "ALLSOURCE_CONFIG": str(config),
        },
    )
    running = Replicas(suite, redis, config, None, f"127.0.0.1:{free_port()}")  # type: ignore[arg-type]
    try:
        suite.start_all()
        running.start_second()
        yield running
    finally:
        running.stop_second()
        suite.stop_all()
        redis.stop()


def limited_tenant(suite: Suite, name: str) -> Tenant:
    return make_tenant(
        suite,
        name,
        tenant_pb2.QUOTA_PRESET_CUSTOM,
        tenant_pb2.TenantQuotas(max_request_units_per_second=int(RATE), max_request_units_burst=int(BURST)),
    )


@dataclass
class Load:
    admitted: list[int]  # per replica
    reasons: set[str]
    slowest: float


def hammer(tenant: Tenant, addresses: list[str], seconds: float, per_replica: int = 4) -> Load:
    """Single appends as fast as `per_replica` threads per replica can, for `seconds`."""
    admitted = [0] * len(addresses)
    reasons: set[str] = set()
    slowest = 0.0
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def work(replica: int) -> None:
        nonlocal slowest
        stub = tenant.ingest(addresses[replica])
        while time.monotonic() < end:
            started = time.monotonic()
            try:
                stub.AppendEvents(append_request(f"h{replica}"), metadata=tenant.metadata, timeout=10)
                ok, reason = True, ""
            except grpc.RpcError as err:
                ok, reason = False, refusal(err).reason
            took = time.monotonic() - started
            with lock:
                slowest = max(slowest, took)
                admitted[replica] += ok
                if reason:
                    reasons.add(reason)
            if not ok:
                time.sleep(0.005)

    threads = [threading.Thread(target=work, args=(r,)) for r in range(len(addresses)) for _ in range(per_replica)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Load(admitted, reasons, slowest)


def test_two_replicas_admit_one_shared_budget(replicas: Replicas) -> None:
    tenant = limited_tenant(replicas.suite, "shared")
    try:
        seconds = 3.0
        load = hammer(tenant, replicas.addresses(), seconds)
        total = sum(load.admitted)
        allowance = BURST + RATE * seconds
        # Shared: together no more than one budget (plus one lease per replica); two separate budgets
        # would have admitted about twice as much.
        assert total <= allowance + 2 * LEASE + RATE * 0.2, (load.admitted, allowance)
        assert total >= 0.75 * allowance, (load.admitted, allowance)
        assert min(load.admitted) > 0.15 * total, load.admitted  # both replicas take part
        assert load.reasons == {"RATE_LIMITED"}
        print(f"shared budget: {load.admitted} admitted in {seconds} s (allowance {allowance:.0f})")
    finally:
        tenant.close()


def test_redis_stopped_mid_test_neither_hangs_calls_nor_loses_the_bound(replicas: Replicas) -> None:
    tenant = limited_tenant(replicas.suite, "outage")
    try:
        hammer(tenant, replicas.addresses(), 0.5)
        replicas.redis.stop()
        # Fail open (the default): each replica admits by its own buckets of the same limit.
        seconds = 2.0
        load = hammer(tenant, replicas.addresses(), seconds)
        assert load.slowest < 1.0, load.slowest  # never a hang: redis_timeout_s bounds every wait
        total = sum(load.admitted)
        assert 0 < total <= 2 * (BURST + RATE * seconds) + 2 * LEASE, load.admitted  # replicas x limit
        # Fail closed: refused at once, UNAVAILABLE / LIMITER_UNAVAILABLE.
        replicas.reload(fail_open=False)

        def closed() -> bool:
            got = hammer(tenant, replicas.addresses(), 0.3, per_replica=1)
            return sum(got.admitted) == 0 and got.reasons == {"LIMITER_UNAVAILABLE"}

        wait_until(closed, timeout=10, what="both replicas to fail closed")
        load = hammer(tenant, replicas.addresses(), 1.0)
        assert sum(load.admitted) == 0 and load.slowest < 1.0
        # Redis back: shared limits again by themselves.
        replicas.redis.start()
        wait_until(
            lambda: all(hammer(tenant, [a], 0.3, per_replica=1).admitted[0] > 0 for a in replicas.addresses()),
            timeout=15,
            what="both replicas to use Redis again",
        )
        time.sleep(BURST / RATE + 0.5)  # let the shared bucket fill
        seconds = 2.0
        load = hammer(tenant, replicas.addresses(), seconds)
        assert sum(load.admitted) <= BURST + RATE * seconds + 2 * LEASE + RATE * 0.2, load.admitted
    finally:
        replicas.reload(fail_open=True)
        tenant.close()


def test_an_emergency_throttle_reaches_both_replicas_within_two_seconds_and_survives_restarts(
    replicas: Replicas,
) -> None:
    tenant = make_tenant(replicas.suite, "throttled", tenant_pb2.QUOTA_PRESET_UNLIMITED)
    bystander = make_tenant(replicas.suite, "bystander", tenant_pb2.QUOTA_PRESET_UNLIMITED)
    op = operator(replicas.suite)
    try:
        for address in replicas.addresses():  # unthrottled to start with
            assert hammer(tenant, [address], 0.3, per_replica=2).reasons == set()
        set_at = time.monotonic()
        op.SetEmergencyThrottle(
            admin_pb2.SetEmergencyThrottleRequest(tenant_id=tenant.tenant_id, calls_per_second=2, reason="incident"),
            timeout=10,
        )
        seen: dict[str, float] = {}

        def throttled_everywhere() -> bool:
            for address in replicas.addresses():
                if address in seen:
                    continue
                stub = tenant.ingest(address)
                for _ in range(5):
                    try:
                        stub.AppendEvents(append_request("t"), metadata=tenant.metadata, timeout=10)
                    except grpc.RpcError as err:
                        got = refusal(err)
                        if got.reason == "RATE_LIMITED" and got.metadata.get("limit") == "emergency_throttle":
                            seen[address] = time.monotonic() - set_at
                            break
            return len(seen) == 2

        wait_until(throttled_everywhere, timeout=5, what="the throttle on both replicas")
        assert max(seen.values()) < 2.0, seen
        load = hammer(tenant, replicas.addresses(), 1.0, per_replica=2)
        assert sum(load.admitted) <= 2 * (2 + 2 * 1.0) + 2, load.admitted  # 2 per second per replica
        assert hammer(bystander, replicas.addresses(), 0.3, per_replica=1).reasons == set()  # others go on
        usage = op.GetQuotaUsage(
            admin_pb2.GetQuotaUsageRequest(), metadata=(("x-allsource-tenant", tenant.tenant_id),), timeout=10
        )
        assert [(t.tenant_id, t.calls_per_second) for t in usage.throttles] == [(tenant.tenant_id, 2.0)]
        # A restarted replica applies it from its first call.
        replicas.stop_second()
        replicas.start_second()
        load = hammer(tenant, [replicas.second_address], 1.0, per_replica=2)
        assert load.reasons == {"RATE_LIMITED"} and load.admitted[0] <= 2 + 2 * 1.0 + 1, load
        # Suite-wide: every tenant, but never the operator.
        op.SetEmergencyThrottle(
            admin_pb2.SetEmergencyThrottleRequest(
                calls_per_second=1, reason="suite", duration=duration_pb2.Duration(seconds=60)
            ),
            timeout=10,
        )
        wait_until(
            lambda: "RATE_LIMITED" in hammer(bystander, replicas.addresses(), 0.5, per_replica=1).reasons,
            timeout=5,
            what="the suite-wide throttle",
        )
        for _ in range(20):  # well past 1 call per second
            op.GetQuotaUsage(admin_pb2.GetQuotaUsageRequest(), timeout=10)
        # Cleared: both go again.
        op.SetEmergencyThrottle(admin_pb2.SetEmergencyThrottleRequest(calls_per_second=0), timeout=10)
        op.SetEmergencyThrottle(
            admin_pb2.SetEmergencyThrottleRequest(tenant_id=tenant.tenant_id, calls_per_second=0), timeout=10
        )
        wait_until(
            lambda: not hammer(tenant, replicas.addresses(), 0.3, per_replica=1).reasons,
            timeout=5,
            what="the throttles to be cleared",
        )
    finally:
        op.SetEmergencyThrottle(admin_pb2.SetEmergencyThrottleRequest(calls_per_second=0), timeout=10)
        tenant.close()
        bystander.close()
