"""Prometheus metrics: every process serves /metrics over HTTP on a port of its own (`metrics.*`).

prometheus-client rather than the OpenTelemetry metrics SDK: a counter increment or histogram
observation costs well under a microsecond to a few microseconds, where the SDK's instruments cost
several times that per call (attribute sets hashed on every record), and Prometheus scrapes the text
format natively, with no collector in between. Traces stay OpenTelemetry's.

What is counted on the hot path is only what must be (RED per service, method and code; in-flight
calls; group commits; coalesced calls), and by this module's own loop metrics rather than
prometheus-client's: those take a lock per update (an append's RED update cost 1.6 us in-process,
about three times that in the live suite), where every hot-path update here runs on the event loop's
thread and is a plain addition (0.15 us); the figures are read when Prometheus scrapes. Label rows
are looked up once per method and code and kept. Everything else (RocksDB properties, per-tenant
figures, limiter and exporter counters, subscriptions) is read when Prometheus scrapes, by collectors
each service registers, so it costs the calls nothing.

Names follow Prometheus conventions (`allsource_` prefix, base units, `_total` counters); the alerting
rules and the Grafana dashboard in deploy/ use exactly these (a test checks that).
"""

from __future__ import annotations

import abc
import bisect
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

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


# -- loop metrics: updated from the event loop's thread only, without a lock --------------------------


class Cell:
    """One labelled series of a LoopCounter or LoopGauge."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        self.value += amount

    def dec(self, amount: float = 1) -> None:
        self.value -= amount


class HistogramRow:
    """One labelled series of a LoopHistogram: a count per bucket (the last is +Inf) and the sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # the first bucket whose upper bound is >= value (Prometheus buckets are "less than or equal")
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value


class _LoopMetric(Collector):
    """Series kept as plain Python numbers, updated by one thread (the event loop's) with no lock, and
    turned into a metric family when Prometheus scrapes (on the HTTP server's thread: it copies each row,
    which the interpreter does in one step, so a scrape sees every update made before it began). An
    update made from another thread at the same moment as the loop's could be lost, so none is."""

    def __init__(self, name: str, doc: str, labelnames: Sequence[str], registry: CollectorRegistry | None) -> None:
        self.name, self.doc, self.labelnames = name, doc, tuple(labelnames)
        self._rows: dict[tuple[str, ...], Any] = {}
        if registry is not None:
            registry.register(self)

    @abc.abstractmethod
    def _new(self) -> Any:
        """A new series."""

    def labels(self, *values: str) -> Any:
        """The series of these label values (look it up once and keep it: this is a dict lookup)."""
        row = self._rows.get(values)
        if row is None:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name} takes labels {self.labelnames}, not {values}")
            row = self._rows.setdefault(values, self._new())
        return row

    def rows(self) -> list[tuple[tuple[str, ...], Any]]:
        return list(self._rows.items())

    def describe(self) -> Iterable[Any]:
        return []


class LoopCounter(_LoopMetric):
    """A counter (name without _total); unlabelled ones count with `inc` directly."""

    family_type: type[CounterMetricFamily] | type[GaugeMetricFamily] = CounterMetricFamily

    def __init__(
        self, name: str, doc: str, labelnames: Sequence[str] = (), registry: CollectorRegistry | None = REGISTRY
    ):
        super().__init__(name, doc, labelnames, registry)
        self._cell = None if self.labelnames else self.labels()

    def _new(self) -> Cell:
        return Cell()

    def inc(self, amount: float = 1) -> None:
        assert self._cell is not None, "a labelled counter counts through labels(...)"
        self._cell.value += amount

    def value(self, *labels: str) -> float:
        row = self._rows.get(labels)
        return row.value if row is not None else 0.0

    def collect(self) -> Iterable[Any]:
        family = self.family_type(self.name, self.doc, labels=list(self.labelnames))
        for labels, cell in self.rows():
            family.add_metric(list(labels), cell.value)
        yield family


class LoopGauge(LoopCounter):
    """A gauge (inc and dec through labels(...))."""

    family_type = GaugeMetricFamily


class LoopHistogram(_LoopMetric):
    """A histogram; unlabelled ones observe with `observe` directly."""

    def __init__(
        self,
        name: str,
        doc: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] = LATENCY_BUCKETS,
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        self.bounds = tuple(float(b) for b in buckets)
        self._le = [floatToGoString(b) for b in self.bounds] + ["+Inf"]
        super().__init__(name, doc, labelnames, registry)
        self._row = None if self.labelnames else self.labels()

    def _new(self) -> HistogramRow:
        return HistogramRow(self.bounds)

    def observe(self, value: float) -> None:
        assert self._row is not None, "a labelled histogram observes through labels(...)"
        self._row.observe(value)

    def collect(self) -> Iterable[Any]:
        family = HistogramMetricFamily(self.name, self.doc, labels=list(self.labelnames))
        for labels, row in self.rows():
            counts, total = list(row.counts), row.sum
            cumulative, running = [], 0
            for le, count in zip(self._le, counts, strict=True):
                running += count
                cumulative.append((le, running))
            family.add_metric(list(labels), cumulative, total)
        yield family


RPC_CALLS = LoopCounter(
    "allsource_rpc_server_calls",
    "RPCs served, by service, method and gRPC status code.",
    ("service", "method", "code"),
)
RPC_DURATION = LoopHistogram(
    "allsource_rpc_server_duration_seconds",
    "Time from a call's arrival to its end (a stream's whole life), by service, method and code.",
    ("service", "method", "code"),
    buckets=LATENCY_BUCKETS,
)
RPC_IN_FLIGHT = LoopGauge("allsource_rpc_server_in_flight", "Calls being served.", ("service",))
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
GROUP_COMMIT_APPENDS = LoopHistogram(
    "allsource_storage_group_commit_appends",
    "Appends written by one group commit (one WriteBatch, one WAL sync).",
    buckets=COUNT_BUCKETS,
)
GROUP_COMMIT_EVENTS = LoopHistogram(
    "allsource_storage_group_commit_events", "Events written by one group commit.", buckets=COUNT_BUCKETS
)
WAL_WRITE = LoopHistogram(
    "allsource_storage_wal_write_seconds",
    "Time to write one group commit's batch, WAL sync included (storage.sync_writes).",
    buckets=LATENCY_BUCKETS,
)
WRITTEN_BYTES = LoopCounter("allsource_storage_written_bytes", "Bytes of key-value writes in group commits.")
READ_BYTES = LoopCounter("allsource_storage_read_bytes", "Bytes of events storage returned to reads.")
COALESCED = LoopHistogram(
    "allsource_ingest_coalesced_appends", "Appends carried by one ingest -> storage call.", buckets=COUNT_BUCKETS
)


class RpcMetrics:
    """RED metrics of one service, with label children kept per method and code."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.in_flight: Cell = RPC_IN_FLIGHT.labels(service)
        self._rows: dict[tuple[str, str], tuple[Cell, HistogramRow]] = {}

    def observe(self, method: str, code: str, seconds: float) -> None:
        """One call ended."""
        rows = self._rows.get((method, code))
        if rows is None:
            rows = (RPC_CALLS.labels(self.service, method, code), RPC_DURATION.labels(self.service, method, code))
            self._rows[(method, code)] = rows
        rows[0].value += 1
        rows[1].observe(seconds)


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


def labelled_counter(name: str, doc: str, label: str, values: dict[str, float]) -> CounterMetricFamily:
    """A counter family with one sample per value of one label (name without _total)."""
    family = CounterMetricFamily(name, doc, labels=[label])
    for value, count in values.items():
        family.add_metric([value], count)
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
