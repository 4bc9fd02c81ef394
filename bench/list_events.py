"""ListEvents by (event type, time window) on 1M events: the plan without the time narrowing beside the
plan ListEvents uses, on the same RocksDB data in the same run.

    .venv/bin/python bench/list_events.py            # full run: 1M events (about a minute here)
    .venv/bin/python bench/list_events.py --quick    # small sizes, to check the script works

The events are loaded in-process through the storage backend (RocksBackend.append, the group-commit
writer the storage service runs: 1,000 events per call, 100 streams of 10 events, five event types
spread evenly, recorded_at rising over the load; sync_writes off for the load only). The window is one
event type and 1% of the recorded time range, from its middle (10% with --quick: one append's events
share a recorded_at, and the quick load is only 20 appends). Both plans answer it whole, in-process
against the same database, interleaved round by round:

- before: the event-type index walked over the whole log range, each entry's event read and its
  recorded_at checked (what the event-type plan does without the time narrowing);
- after: RocksBackend.read_events, what ListEvents runs: the window becomes a position range by binary
  search over the log, then the event-type index is walked inside that range only.

Then a suite starts on the same data directory and the same window is listed through the query service
(ListEvents with explain, page_size 1000, every page): the end-to-end "after", with keys examined as
explain reports them. Results also go to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from allsource.storage.v1 import model_pb2  # noqa: E402
from allsource.v1 import event_pb2, query_pb2, query_pb2_grpc  # noqa: E402

from services.storage import codec, keys  # noqa: E402
from services.storage.backend import AppendOp  # noqa: E402
from services.storage.rocksdb_backend import RocksBackend  # noqa: E402
from shared.config.settings import StorageSettings  # noqa: E402
from shared.core.tenant_ids import DEFAULT_TENANT  # noqa: E402
from shared.core.timestamps import from_timestamp, to_timestamp  # noqa: E402
from tests.harness import Suite  # noqa: E402

TYPES = ("OrderPlaced", "OrderPaid", "OrderShipped", "OrderCancelled", "OrderRefunded")
WANTED = "OrderShipped"
PER_CALL, PER_STREAM = 1000, 10
PAYLOAD = b'{"order":"' + b"x" * 150 + b'","total":12345}'
CHUNK = 1000  # index entries per multi-get, as the event-type plan reads them


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def load(backend: RocksBackend, total: int) -> float:
    """Append `total` events, PER_CALL per call; returns events/s."""
    started, n = time.perf_counter(), 0
    while n < total:
        ops = []
        for s in range(PER_CALL // PER_STREAM):
            stream = f"order-{(n // PER_STREAM) + s}"
            events = [
                model_pb2.EventInput(event_type=TYPES[(n + s * PER_STREAM + i) % len(TYPES)], payload=PAYLOAD)
                for i in range(PER_STREAM)
            ]
            ops.append(AppendOp(DEFAULT_TENANT, model_pb2.AppendInput(stream_id=stream, events=events)))
        await backend.append(ops)
        n += PER_CALL
    return total / (time.perf_counter() - started)


def time_range(backend: RocksBackend, head: int) -> tuple[int, int]:
    t = backend._tenant_no(DEFAULT_TENANT)
    assert t is not None
    return backend._recorded_ns(t, 1, head), backend._recorded_ns(t, head, head)


def before(backend: RocksBackend, start_ns: int, end_ns: int, head: int) -> tuple[list[int], int]:
    """The event-type index over the whole log range, every entry's recorded_at checked."""
    t = backend._tenant_no(DEFAULT_TENANT)
    assert t is not None
    prefix, tp = keys.type_prefix(t, WANTED), keys.tenant_prefix(t)
    it = backend._cf["type_idx"].iter()
    it.seek(prefix + keys.pack_u64(1))
    found: list[int] = []
    examined = 0
    chunk: list[int] = []

    def check(positions: list[int]) -> None:
        datas = backend._cf["events"].get([tp + keys.pack_u64(p) for p in positions])
        for pos, data in zip(positions, datas, strict=True):
            if data is not None and start_ns <= from_timestamp(codec.decode_event(data).recorded_at) < end_ns:
                found.append(pos)

    while it.valid() and it.key().startswith(prefix):
        pos = keys.unpack_u64(it.key(), len(prefix))
        if pos > head:
            break
        chunk.append(pos)
        examined += 1
        if len(chunk) == CHUNK:
            check(chunk)
            chunk = []
        it.next()
    check(chunk)
    del it
    return found, examined


def window_filter(start_ns: int, end_ns: int) -> dict[str, Any]:
    return {"event_types": [WANTED], "start_time": to_timestamp(start_ns), "end_time": to_timestamp(end_ns)}


async def after(backend: RocksBackend, start_ns: int, end_ns: int) -> tuple[list[int], int, str]:
    """RocksBackend.read_events, paged as ListEvents pages it (1,000 events, 10,000 keys at most)."""
    f = model_pb2.EventFilter(**window_filter(start_ns, end_ns))
    found: list[int] = []
    examined, cursor, index = 0, 0, ""
    while True:
        run = await backend.read_events(DEFAULT_TENANT, f, after_position=cursor, limit=1000, max_scan=10_000)
        found.extend(codec.decode_event(e).position for e in run.events)
        examined, cursor, index = examined + run.examined, run.scanned_to, run.index
        if run.end_of_range:
            return found, examined, index


def through_suite(suite: Suite, start_ns: int, end_ns: int, rounds: int) -> dict[str, Any]:
    """The same window listed through the query service: every page, with explain."""
    query = query_pb2_grpc.QueryServiceStub(suite.channel("query"))  # with the bootstrap admin's key
    f = event_pb2.EventFilter(**window_filter(start_ns, end_ns))
    timings: list[float] = []
    count = examined = 0
    index = ""
    for _ in range(rounds + 1):  # the first round warms the channel and the caches
        started, token, count, examined = time.perf_counter(), "", 0, 0
        while True:
            page = query.ListEvents(
                query_pb2.ListEventsRequest(filter=f, page_size=1000, page_token=token, explain=True),
                timeout=60,
            )
            count += len(page.events)
            examined += page.plan.keys_examined
            index, token = page.plan.index, page.next_page_token
            if not token:
                break
        timings.append((time.perf_counter() - started) * 1000)
    timings = timings[1:]
    return {"index": index, "events": count, "keys_examined": examined, "p50_ms": statistics.median(timings)}


async def in_process(data_dir: Path, total: int, share: float, rounds_before: int, rounds_after: int) -> dict[str, Any]:
    backend = RocksBackend(StorageSettings(data_dir=str(data_dir), sync_writes=False))
    await backend.start()
    try:
        rate = await load(backend, total)
        head = backend.head_of(DEFAULT_TENANT)
        assert head == total, (head, total)
        first_ns, last_ns = time_range(backend, head)
        span = last_ns - first_ns
        start_ns = first_ns + span // 2
        end_ns = start_ns + int(span * share)
        old_timings, new_timings = [], []
        old: tuple[list[int], int] = ([], 0)
        new: tuple[list[int], int, str] = ([], 0, "")
        for i in range(max(rounds_before, rounds_after)):  # interleaved: both see the same machine load
            if i < rounds_before:
                started = time.perf_counter()
                old = before(backend, start_ns, end_ns, head)
                old_timings.append((time.perf_counter() - started) * 1000)
            if i < rounds_after:
                started = time.perf_counter()
                new = await after(backend, start_ns, end_ns)
                new_timings.append((time.perf_counter() - started) * 1000)
        assert old[0] == new[0], "the two plans must find the same events"
        return {
            "load_events_per_s": rate,
            "time_range_s": span / 1e9,
            "window_share": share,
            "window": (start_ns, end_ns),
            "matching_events": len(new[0]),
            "before": {
                "index": "event_type (every entry's time checked)",
                "keys_examined": old[1],
                "p50_ms": statistics.median(old_timings),
                "rounds": len(old_timings),
            },
            "after": {
                "index": new[2],
                "keys_examined": new[1],
                "p50_ms": statistics.median(new_timings),
                "p99_ms": percentile(new_timings, 99),
                "rounds": len(new_timings),
            },
        }
    finally:
        await backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the script works")
    args = parser.parse_args()
    # One append's events share a recorded_at, so the quick run's window is wider (10% of 20 calls).
    total, share, rounds_before, rounds_after, rounds_suite = (
        (20_000, 0.1, 3, 10, 5) if args.quick else (1_000_000, 0.01, 7, 50, 30)
    )
    workdir = Path(tempfile.mkdtemp(prefix="bench-list-events-"))
    suite = Suite(workdir)
    try:
        print(f"loading {total:,} events in-process (RocksBackend.append, {PER_CALL:,} per call)", flush=True)
        results = asyncio.run(in_process(suite.data_dir, total, share, rounds_before, rounds_after))
        start_ns, end_ns = results.pop("window")
        print(
            f"  {results['load_events_per_s']:,.0f} events/s; recorded over {results['time_range_s']:.1f} s; "
            f"window = {share:.0%} of that, type {WANTED}: {results['matching_events']:,} events",
            flush=True,
        )
        suite.start_all()
        results["suite_after"] = through_suite(suite, start_ns, end_ns, rounds_suite)
        assert results["suite_after"]["events"] == results["matching_events"], results
    finally:
        suite.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)

    b, a, s = results["before"], results["after"], results["suite_after"]
    print(f"\nListEvents by (event type, time window) on {total:,} events, {results['matching_events']:,} matching")
    print(f"{'plan':58} {'keys examined':>14} {'p50 ms':>10}")
    print(f"{'before: ' + b['index'] + ', in-process':58} {b['keys_examined']:>14,} {b['p50_ms']:>10.2f}")
    print(f"{'after: ' + a['index'] + ' (read_events), in-process':58} {a['keys_examined']:>14,} {a['p50_ms']:>10.2f}")
    print(f"{'after: ListEvents through the query service, explain':58} {s['keys_examined']:>14,} {s['p50_ms']:>10.2f}")
    print(f"after vs before (in-process p50): {b['p50_ms'] / a['p50_ms']:.0f}x faster")
    results.update(events=total, event_types=len(TYPES), machine=platform.platform(), cpus=os.cpu_count())
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / ("list-events-quick.json" if args.quick else "list-events-latest.json")).write_text(
        json.dumps(results, indent=2)
    )


if __name__ == "__main__":
    main()
