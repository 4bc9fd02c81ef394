"""Consumer-group delivery with acks, 3 consumers, beside a plain Subscribe of the same events.

    .venv/bin/python bench/groups.py           # about a minute
    .venv/bin/python bench/groups.py --quick

Per round: N events are appended (10 streams), then (1) one Subscribe reads them from the start,
events/s until the last arrives; (2) a new group's 3 consumers (one thread each) receive and ack them
all, events/s until the last ack is sent. Then latency: 3 consumers on a group started at the end, and
single appends one after another; each event's append-to-ack time (the payload carries the time the
append was sent) gives p50/p99. Goal: group delivery >= 0.5x Subscribe (the median of the rounds).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from allsource.v1 import event_pb2, groups_pb2, ingest_pb2, ingest_pb2_grpc, query_pb2, query_pb2_grpc  # noqa: E402

from tests.groups.support import Consumer, append, create_group  # noqa: E402
from tests.harness import Suite, wait_until  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def subscribe_rate(suite: Suite, md: tuple[tuple[str, str], ...], prefix: str, n: int) -> float:
    stub = query_pb2_grpc.QueryServiceStub(suite.channel("query", md))
    started, seen = time.perf_counter(), 0
    call = stub.Subscribe(query_pb2.SubscribeRequest(stream_id_prefix=prefix))
    for message in call:
        if message.WhichOneof("content") == "events":
            seen += len(message.events.events)
            if seen >= n:
                break
    elapsed = time.perf_counter() - started
    call.cancel()
    return n / elapsed


def group_rate(suite: Suite, md: tuple[tuple[str, str], ...], prefix: str, name: str, n: int) -> float:
    create_group(suite, md, name=name, stream_id_prefix=prefix)
    started = time.perf_counter()
    consumers = [Consumer(suite, md, name, f"c{i}") for i in range(3)]
    try:
        wait_until(lambda: sum(len(c.acked) for c in consumers) >= n, 300, "all acked")
        # Until the last ack was sent (as Subscribe's until the last event arrived), not until this poll saw it:
        # polling every 50 ms added up to a quarter of a 20,000-event round's time.
        return n / (max(c.last_ack_at for c in consumers) - started)
    finally:
        for c in consumers:
            c.close()


def latency(suite: Suite, md: tuple[tuple[str, str], ...], prefix: str, name: str, n: int) -> list[float]:
    create_group(suite, md, name=name, stream_id_prefix=prefix, start=groups_pb2.CONSUMER_GROUP_START_END)
    lock = threading.Lock()
    seconds: list[float] = []

    def on_event(delivered: groups_pb2.DeliveredEvent) -> str:
        sent = float(json.loads(delivered.event.payload)["t"])
        with lock:
            seconds.append(time.perf_counter() - sent)
        return "ack"

    consumers = [Consumer(suite, md, name, f"l{i}", policy=on_event) for i in range(3)]
    for c in consumers:
        c.wait_joined()
    stub = ingest_pb2_grpc.IngestServiceStub(suite.channel("ingest", md))
    try:
        for i in range(n):
            payload = json.dumps({"t": time.perf_counter()}).encode()
            stub.AppendEvents(
                ingest_pb2.AppendEventsRequest(
                    stream_id=f"{prefix}{i % 10}", events=[event_pb2.EventData(event_type="Lat", payload=payload)]
                ),
                timeout=20,
            )
        wait_until(lambda: len(seconds) >= n, 60, "every latency event acked")
    finally:
        for c in consumers:
            c.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, one round (checks the script)")
    args = parser.parse_args()
    n, rounds, lat_n = (2000, 1, 100) if args.quick else (100_000, 3, 1000)
    with tempfile.TemporaryDirectory() as tmp:
        suite = Suite(Path(tmp) / "suite")
        try:
            suite.start_all()
            md = suite.create_tenant("bench-groups")
            sub_rates, group_rates = [], []
            for r in range(rounds):
                prefix = f"r{r}-"
                for s in range(10):
                    append(suite, md, f"{prefix}{s}", n // 10)
                sub_rates.append(subscribe_rate(suite, md, prefix, n))
                group_rates.append(group_rate(suite, md, prefix, f"bench{r}", n))
                print(
                    f"round {r + 1}: Subscribe {sub_rates[-1]:,.0f} events/s,"
                    f" group with acks {group_rates[-1]:,.0f} events/s"
                )
            sub, grp = statistics.median(sub_rates), statistics.median(group_rates)
            print(f"Subscribe (1 reader, no acks): {sub:,.0f} events/s (median of {rounds})")
            print(f"consumer group (3 consumers, acks): {grp:,.0f} events/s (median of {rounds})")
            print(f"ratio to Subscribe: {grp / sub:.2f}x (goal >= 0.5x)")
            seconds = latency(suite, md, "lat-", "latency", lat_n)
            p50, p99 = percentile(seconds, 50) * 1000, percentile(seconds, 99) * 1000
            print(f"append-to-ack latency over {lat_n} single appends: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        finally:
            suite.stop_all()


if __name__ == "__main__":
    main()
