"""The lock-free metrics of the hot path read, when scraped, exactly as prometheus-client's own would."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from shared.telemetry.metrics import LATENCY_BUCKETS, LoopCounter, LoopGauge, LoopHistogram


def _exposition(registry: CollectorRegistry) -> list[str]:
    # prometheus-client's own series also carry a _created sample; the scrape format is otherwise the same
    lines = generate_latest(registry).decode().splitlines()
    return [line for line in lines if "_created" not in line]


def test_loop_metrics_expose_the_same_series_as_prometheus_client_for_the_same_updates() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    labels = ("service", "method", "code")
    histogram = LoopHistogram("t_duration_seconds", "Durations.", labels, buckets=LATENCY_BUCKETS, registry=ours)
    reference = Histogram("t_duration_seconds", "Durations.", labels, buckets=LATENCY_BUCKETS, registry=theirs)
    counter = LoopCounter("t_calls", "Calls.", labels, registry=ours)
    reference_counter = Counter("t_calls", "Calls.", labels, registry=theirs)
    gauge = LoopGauge("t_in_flight", "In flight.", ("service",), registry=ours)
    reference_gauge = Gauge("t_in_flight", "In flight.", ("service",), registry=theirs)
    plain = LoopHistogram("t_sizes", "Sizes.", buckets=(1, 2, 4, 8), registry=ours)
    reference_plain = Histogram("t_sizes", "Sizes.", buckets=(1, 2, 4, 8), registry=theirs)

    rng = random.Random(7)
    # values on every bucket bound (a bound belongs to its own bucket), between bounds, and past the last
    values = [*LATENCY_BUCKETS, 0.0, 0.00007, 0.0003, 0.004, 0.3, 7.0, 11.0, 1e9]
    values += [rng.uniform(0, 12) ** 3 / 100 for _ in range(500)]
    for i, value in enumerate(values):
        key = ("query", f"/m/{i % 3}", "OK" if i % 5 else "INTERNAL")
        histogram.labels(*key).observe(value)
        reference.labels(*key).observe(value)
        counter.labels(*key).inc()
        reference_counter.labels(*key).inc()
        plain.observe(i % 11)
        reference_plain.observe(i % 11)
    cell = gauge.labels("query")
    for _ in range(5):
        cell.inc()
        reference_gauge.labels("query").inc()
    cell.dec(2)
    reference_gauge.labels("query").dec(2)

    # the sums may differ in their last digit (the reference adds in another order): compare those apart
    def split(lines: list[str]) -> tuple[list[str], dict[str, float]]:
        kept, sums = [], {}
        for line in lines:
            name, _, value = line.rpartition(" ")
            if "_sum" in name:
                sums[name] = float(value)
            else:
                kept.append(line)
        return sorted(kept), sums

    mine, my_sums = split(_exposition(ours))
    expected, expected_sums = split(_exposition(theirs))
    assert mine == expected
    assert my_sums.keys() == expected_sums.keys()
    for name, total in expected_sums.items():
        assert abs(my_sums[name] - total) <= 1e-9 * max(1.0, abs(total)), name
    assert (
        counter.value("query", "/m/0", "INTERNAL") == reference_counter.labels("query", "/m/0", "INTERNAL")._value.get()
    )
    assert counter.value("nobody", "x", "OK") == 0
