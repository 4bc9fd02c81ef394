"""Prometheus metrics: every process serves /metrics over HTTP on a port of its own (`metrics.*`).

prometheus-client rather than the OpenTelemetry metrics SDK: a counter increment or histogram
observation costs well under a microsecond to a few microseconds, where the SDK's instruments cost
several times that per call (attribute sets hashed on every record), and Prometheus scrapes the text
format natively, with no collector in between. Traces stay OpenTelemetry's.

What is counted on the hot path is only what must be (RED per service, method and code; in-flight
calls; group commits; coalesced calls): label children are looked up once per method and code and
kept. Everything else (RocksDB properties, per-tenant figures, limiter and exporter counters,
subscriptions) is read when Prometheus scrapes, by collectors each service registers, so it costs the
calls nothing.

Names follow Prometheus conventions (`allsource_` prefix, base units, `_total` counters); the alerting
rules and the Grafana dashboard in deploy/ use exactly these (a test checks that).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger("allsource.metrics")

# Latencies here run from tens of microseconds (a storage read) to seconds (a bulk append, a stall).
LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
COUNT_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384)

REGISTRY = CollectorRegistry(auto_describe=True)

RPC_CALLS = Counter(
    "allsource_rpc_server_calls",
    "RPCs served, by service, method and gRPC status code.",
    ("service", "method", "code"),
    registry=REGISTRY,
)
RPC_DURATION = Histogram(
    "allsource_rpc_server_duration_seconds",
    "Time from a call's arrival to its end (a stream's whole life), by service, method and code.",
    ("service", "method", "code"),
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
RPC_IN_FLIGHT = Gauge("allsource_rpc_server_in_flight", "Calls being served.", ("service",), registry=REGISTRY)
AUTH_FAILURES = Counter(
    "allsource_auth_failures",
    "Calls refused for their credentials, by ErrorInfo reason.",
    ("service", "reason"),
    registry=REGISTRY,
)
LIMIT_REFUSALS = Counter(
    "allsource_limit_refusals",
    "Calls refused by a rate limit, quota or emergency throttle, by reason and the limit named.",
    ("service", "reason", "limit"),
    registry=REGISTRY,
)
QUOTA_WARNINGS = Counter(
    "allsource_quota_warnings",
    "Calls answered past a limit's soft share (x-allsource-quota-warning), by limit.",
    ("service", "limit"),
    registry=REGISTRY,
)
GROUP_COMMIT_APPENDS = Histogram(
    "allsource_storage_group_commit_appends",
    "Appends written by one group commit (one WriteBatch, one WAL sync).",
    buckets=COUNT_BUCKETS,
    registry=REGISTRY,
)
GROUP_COMMIT_EVENTS = Histogram(
    "allsource_storage_group_commit_events",
    "Events written by one group commit.",
    buckets=COUNT_BUCKETS,
    registry=REGISTRY,
)
WAL_WRITE = Histogram(
    "allsource_storage_wal_write_seconds",
    "Time to write one group commit's batch, WAL sync included (storage.sync_writes).",
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
WRITTEN_BYTES = Counter(
    "allsource_storage_written_bytes", "Bytes of key-value writes in group commits.", registry=REGISTRY
)
READ_BYTES = Counter("allsource_storage_read_bytes", "Bytes of events storage returned to reads.", registry=REGISTRY)
COALESCED = Histogram(
    "allsource_ingest_coalesced_appends",
    "Appends carried by one ingest -> storage call.",
    buckets=COUNT_BUCKETS,
    registry=REGISTRY,
)


class RpcMetrics:
    """RED metrics of one service, with label children kept per method and code."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.in_flight = RPC_IN_FLIGHT.labels(service)
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}

    def observe(self, method: str, code: str, seconds: float) -> None:
        """One call ended."""
        children = self._children.get((method, code))
        if children is None:
            children = (RPC_CALLS.labels(self.service, method, code), RPC_DURATION.labels(self.service, method, code))
            self._children[(method, code)] = children
        children[0].inc()
        children[1].observe(seconds)


class FuncCollector(Collector):
    """Metrics read at scrape time from a function returning families (never on a call's path)."""

    def __init__(self, collect: Callable[[], Iterable[Any]]) -> None:
        self._collect = collect

    def collect(self) -> Iterable[Any]:
        try:
            return list(self._collect())
        except Exception:  # a scrape must not fail because one figure could not be read
            log.exception("a metrics collector failed")
            return []

    def describe(self) -> Iterable[Any]:
        return []  # families vary (per-tenant series): not described up front


def gauge(name: str, doc: str, value: float, labels: dict[str, str] | None = None) -> GaugeMetricFamily:
    """A gauge family with one sample."""
    family = GaugeMetricFamily(name, doc, labels=list(labels or ()))
    family.add_metric(list((labels or {}).values()), value)
    return family


def counter(name: str, doc: str, value: float, labels: dict[str, str] | None = None) -> CounterMetricFamily:
    """A counter family with one sample (name without _total)."""
    family = CounterMetricFamily(name, doc, labels=list(labels or ()))
    family.add_metric(list((labels or {}).values()), value)
    return family


def register(collect: Callable[[], Iterable[Any]]) -> Collector:
    """Add a scrape-time collector to this process's registry."""
    collector = FuncCollector(collect)
    REGISTRY.register(collector)
    return collector


def serve(host: str, port: int) -> tuple[Any, int]:
    """Serve /metrics on host:port in a thread of its own; returns (server, port bound)."""
    server, thread = start_http_server(port, addr=host, registry=REGISTRY)
    return (server, thread), server.server_port


def stop(handle: Any) -> None:
    """Stop serving /metrics."""
    server, thread = handle
    server.shutdown()
    server.server_close()
    thread.join(timeout=2)
