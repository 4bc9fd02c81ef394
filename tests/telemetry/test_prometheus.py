"""A real Prometheus (Debian's `prometheus`, started here on a free port) scrapes the four processes.

After known traffic the test asks Prometheus's HTTP API for the RED series and finds the exact counts,
and finds the storage, per-tenant and limiter series the alerting rules and dashboard use.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from allsource.v1 import event_pb2, ingest_pb2, ingest_pb2_grpc, query_pb2, query_pb2_grpc

from tests.harness import ORDER, Suite, free_port, wait_until

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus is not installed")


class Prometheus:
    """A private Prometheus scraping the given targets every second."""

    def __init__(self, workdir: Path, targets: dict[str, int]) -> None:
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        jobs = "\n".join(
            f"  - job_name: allsource-{name}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']"
            for name, port in targets.items()
        )
        config = workdir / "prometheus.yml"
        config.write_text(f"global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n{jobs}\n")
        self.log = open(workdir / "prometheus.log", "wb")
        self.proc = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._ready, 30, "prometheus ready")

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=1) as reply:
                return bool(reply.status == 200)
        except OSError:
            assert self.proc.poll() is None, "prometheus exited"
            return False

    def query(self, promql: str) -> list[dict[str, Any]]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=5) as reply:
            body = json.loads(reply.read())
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def value(self, promql: str) -> float | None:
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Suite, Prometheus]]:
    suite = Suite(tmp_path_factory.mktemp("scraped"))
    prometheus = None
    try:
        suite.start_all()
        prometheus = Prometheus(tmp_path_factory.mktemp("prometheus"), suite.metrics_ports)
        yield suite, prometheus
    finally:
        if prometheus is not None:
            prometheus.stop()
        suite.stop_all()


def test_prometheus_scrapes_every_process_and_sees_the_red_series_of_known_traffic(
    scraped: tuple[Suite, Prometheus],
) -> None:
    suite, prometheus = scraped
    wait_until(lambda: prometheus.value('count(up{job=~"allsource-.*"} == 1)') == len(ORDER), 30, "every target up")
    tenant = suite.create_tenant(f"prom-{uuid.uuid4().hex[:8]}")
    ingest = ingest_pb2_grpc.IngestServiceStub(suite.raw_channel("ingest"))
    query = query_pb2_grpc.QueryServiceStub(suite.raw_channel("query"))
    stream = f"p-{uuid.uuid4().hex[:8]}"
    for _ in range(7):
        ingest.AppendEvents(
            ingest_pb2.AppendEventsRequest(
                stream_id=stream, events=[event_pb2.EventData(event_type="Noted", payload=b"{}")] * 3
            ),
            metadata=tenant,
            timeout=10,
        )
    for _ in range(3):  # refused by validation: INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError):
            ingest.AppendEvents(ingest_pb2.AppendEventsRequest(stream_id=""), metadata=tenant, timeout=10)
    for _ in range(2):  # no credentials
        with pytest.raises(grpc.RpcError):
            query.ReadStream(query_pb2.ReadStreamRequest(stream_id=stream), timeout=10)
    query.ReadStream(query_pb2.ReadStreamRequest(stream_id=stream), metadata=tenant, timeout=10)

    append = '{service="ingest",method="/allsource.v1.IngestService/AppendEvents"'
    wait_until(
        lambda: (
            prometheus.value(f'allsource_rpc_server_calls_total{append},code="OK"}}') == 7
            and prometheus.value(f'allsource_rpc_server_calls_total{append},code="INVALID_ARGUMENT"}}') == 3
        ),
        30,
        "the append counts scraped",
    )
    assert prometheus.value(f'allsource_rpc_server_duration_seconds_count{append},code="OK"}}') == 7
    assert prometheus.value(f'allsource_rpc_server_duration_seconds_bucket{append},code="OK",le="+Inf"}}') == 7
    read = '{service="query",method="/allsource.v1.QueryService/ReadStream"'
    wait_until(lambda: prometheus.value(f'allsource_rpc_server_calls_total{read},code="UNAUTHENTICATED"}}') == 2)
    assert prometheus.value('allsource_auth_failures_total{service="query",reason="MISSING_CREDENTIALS"}') == 2
    # Storage served the appends (and the reads) too: its own RED series, and its group commits.
    assert (prometheus.value('sum(allsource_rpc_server_calls_total{service="storage"})') or 0) >= 8
    wait_until(lambda: (prometheus.value("sum(allsource_storage_group_commit_events_sum)") or 0) >= 21)
    for series in (
        "allsource_storage_wal_write_seconds_count",
        "allsource_rocksdb_memtable_bytes",
        "allsource_rocksdb_live_sst_bytes",
        "allsource_rocksdb_pending_compaction_bytes",
        "allsource_rocksdb_block_cache_usage_bytes",
        "allsource_storage_volume_free_bytes",
        "allsource_subscriptions_active",
        "allsource_subscription_lag_events",
        "allsource_ingest_coalesced_appends_count",
        "allsource_rpc_server_in_flight",
        "allsource_limiter_redis_failures_total",
        "allsource_trace_spans_dropped_total",
        "allsource_storage_request_results_removed_total",
    ):
        assert prometheus.query(series), f"{series} missing"
    # Per-tenant series: this tenant's events, as storage counts them.
    wait_until(lambda: prometheus.query("allsource_tenant_events"), 10)
    assert max(float(r["value"][1]) for r in prometheus.query("allsource_tenant_events")) >= 21


def test_every_process_serves_metrics_in_the_text_format(scraped: tuple[Suite, Prometheus]) -> None:
    suite, _ = scraped
    for name, port in suite.metrics_ports.items():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
            assert reply.headers["Content-Type"].startswith("text/plain")
        assert f'allsource_rpc_server_in_flight{{service="{name}"}}' in text, name
        assert "# TYPE allsource_rpc_server_duration_seconds histogram" in text
