"""`diag metrics` and the metrics part of `diag`: every service's own RPC figures through
AdminService.GetMetricsSummary, which grow with the calls made; the server bounds the request."""

from __future__ import annotations

import grpc
import pytest
from allsource.v1 import admin_pb2, admin_pb2_grpc

from shared.rpc.control import quantile_ms
from tests.cli.conftest import Cli, exit_reason
from tests.harness import Suite

APPEND = "/allsource.v1.IngestService/AppendEvents"


def by_service(rows: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {str(r["service"]): r for r in rows}


def appends_counted(rows: list[dict[str, object]]) -> int:
    busiest = by_service(rows)["ingest"]["busiest"]
    assert isinstance(busiest, list)
    return next((int(b["calls"]) for b in busiest if b["method"] == APPEND), 0)


def test_diag_metrics_counts_the_calls_made(cli: Cli, tenant: str) -> None:
    cli.ok("--tenant", tenant, "events", "append", "m-1", "--type", "Warmup")
    cli.ok("--tenant", tenant, "events", "read", "m-1")  # every service has served a call
    before = cli.json("diag", "metrics", "--methods", "50")
    services = by_service(before)
    assert set(services) == {"storage", "ingest", "query", "admin"}
    assert all(r["error"] is None for r in before), before
    for row in before:
        assert int(row["calls"]) > 0 and float(row["cpu_seconds"]) > 0 and float(row["max_rss_mib"]) > 1, row
        assert 0 < float(row["p50_ms"]) <= float(row["p99_ms"]), row
        assert len(row["busiest"]) <= 50  # type: ignore[arg-type]
    assert int(services["admin"]["in_flight"]) >= 1  # the GetMetricsSummary call itself

    for i in range(5):
        cli.ok("--tenant", tenant, "events", "append", "m-1", "--type", f"T{i}")
    failed = cli.run("--tenant", tenant, "events", "append", "m-1", "--type", "X", "--expected", "no-stream")
    exit_reason(failed, 3, "WRONG_EXPECTED_VERSION")
    after = cli.json("diag", "metrics", "--methods", "50")
    assert appends_counted(after) - appends_counted(before) == 6
    ingest_before, ingest_after = by_service(before)["ingest"], by_service(after)["ingest"]
    assert int(ingest_after["errors"]) - int(ingest_before["errors"]) == 1  # the refused append
    assert int(by_service(after)["storage"]["calls"]) > int(by_service(before)["storage"]["calls"])

    overview = cli.json("diag")
    assert overview["metrics_unavailable"] is None
    assert {r["service"] for r in overview["metrics"]} == {"storage", "ingest", "query", "admin"}
    table = cli.ok("diag", "metrics")
    assert "busiest methods" in table and "AppendEvents" in table


def test_diag_metrics_refusals(cli: Cli, tenant: str, suite: Suite) -> None:
    exit_reason(cli.run("diag", "metrics", "--methods", "51"), 2, "--methods")
    reader = cli.json("--tenant", tenant, "keys", "create", "reader", "--role", "read-only")["secret"]
    exit_reason(cli.run("diag", "metrics", key=reader), 3, "PERMISSION_DENIED")
    stub = admin_pb2_grpc.AdminServiceStub(suite.channel("admin", suite.auth_metadata()))
    with pytest.raises(grpc.RpcError) as refused:
        stub.GetMetricsSummary(admin_pb2.GetMetricsSummaryRequest(max_methods=51), timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "max_methods" in str(refused.value.details())


def test_quantiles_follow_prometheus_histogram_quantile() -> None:
    # 100 calls: 50 under 1 ms, 40 more under 10 ms, 10 more under 100 ms.
    buckets = {0.001: 50.0, 0.01: 90.0, 0.1: 100.0, float("inf"): 100.0}
    assert quantile_ms(0.5, buckets) == pytest.approx(1.0)
    assert quantile_ms(0.25, buckets) == pytest.approx(0.5)
    assert quantile_ms(0.7, buckets) == pytest.approx(1 + 9 * 0.5)
    assert quantile_ms(0.99, buckets) == pytest.approx(10 + 90 * 0.9)
    # Past the highest finite bound: that bound; no calls at all: 0.
    assert quantile_ms(0.99, {0.001: 1.0, float("inf"): 100.0}) == pytest.approx(1.0)
    assert quantile_ms(0.5, {0.001: 0.0, float("inf"): 0.0}) == 0.0
