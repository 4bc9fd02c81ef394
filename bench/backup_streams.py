"""Incremental backups of a tenant with many streams, beside the full backup of the same suite.

    .venv/bin/python bench/backup_streams.py                  # 100K streams (about a minute to fill)
    .venv/bin/python bench/backup_streams.py --streams 20000
    .venv/bin/python bench/backup_streams.py --quick          # 2K streams, to check the script works
    .venv/bin/python bench/backup_streams.py --request-ids    # each of those appends with a request id

One tenant gets one event in each of N streams (by BatchAppend), then a full backup of the whole suite,
four incrementals of 10K events appended to one stream, and one incremental with nothing new. An
incremental reads every record of the tenant's families and writes their whole index (docs/BACKUP.md),
so with many streams its time follows the stream count, not what changed; this prints how much, end to
end and at storage (its `backup made` log line), and what each incremental stored.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402
from allsource.v1 import event_pb2, ingest_pb2, ingest_pb2_grpc  # noqa: E402

from tests.backup.support import append, backups, create  # noqa: E402
from tests.harness import Suite  # noqa: E402


async def streams(address: str, md: tuple[tuple[str, str], ...], n: int, request_ids: bool) -> int:
    """One event in each of n streams, through one BatchAppend call (each append with a request id, so
    that storage keeps its result, when asked); how many succeeded."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)

        def requests():  # type: ignore[no-untyped-def]
            for i in range(n):
                yield ingest_pb2.BatchAppendRequest(
                    append=ingest_pb2.AppendEventsRequest(
                        stream_id=f"s-{i}",
                        events=[event_pb2.EventData(event_type="E", payload=b'{"a":1}')],
                        request_id=f"fill-{i}" if request_ids else "",
                    )
                )

        ok = 0
        async for reply in stub.BatchAppend(requests(), metadata=md):
            ok += reply.HasField("success")
        return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--request-ids", action="store_true", help="each filling append with a request id")
    args = parser.parse_args()
    n = args.streams or (2_000 if args.quick else 100_000)
    with tempfile.TemporaryDirectory(prefix="bench-backup-streams-") as tmp:
        work = Path(tmp)
        suite = Suite(work / "suite", extra_env={"ALLSOURCE_BACKUP__DIR": str(work / "backups")})
        suite.start_all()
        try:
            md = suite.create_tenant("bench")
            started = time.perf_counter()
            assert asyncio.run(streams(suite.address("ingest"), md, n, args.request_ids)) == n
            with_ids = " (each append with a request id)" if args.request_ids else ""
            print(f"filled {n:,} streams{with_ids} in {time.perf_counter() - started:.1f} s", flush=True)
            stub = backups(suite)
            started = time.perf_counter()
            full = create(suite, stub=stub)
            full_s = time.perf_counter() - started
            made = []
            for r in range(5):
                if r < 4:  # the last one has nothing new
                    for i in range(0, 10_000, 1000):
                        append(suite, md, "late", 1000, start=10_000 * r + i)
                started = time.perf_counter()
                backup = create(suite, stub=stub, incremental=True)
                made.append((backup.backup_id, time.perf_counter() - started, backup.stored_bytes))
        finally:
            suite.stop_all()
        at_storage = {}
        for line in suite.log("storage").splitlines():
            if '"backup made"' in line:
                record = json.loads(line)
                at_storage[record["backup_id"]] = record["s"]
    print(f"full backup of the suite:  {full_s:6.3f} s end to end, {full.stored_bytes / 1e6:6.2f} MB stored")
    for i, (backup_id, took, stored) in enumerate(made):
        what = "10K events" if i < 4 else "nothing new"
        print(
            f"incremental {i + 1} ({what:11}): {took:6.3f} s end to end, {at_storage[backup_id]:6.3f} s at storage,"
            f" {stored / 1e6:6.2f} MB stored"
        )
    median = statistics.median(took for _, took, _ in made)
    print(f"incremental median: {median:.3f} s = {100 * median / full_s:.0f}% of the full backup ({n:,} streams)")


if __name__ == "__main__":
    main()
