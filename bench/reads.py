"""The read path: ReadStream(100) warm (read cache on) and cold (cache off) beside a bare gRPC echo that
returns the same bytes, measured in the same run.

    .venv/bin/python bench/reads.py            # full run (about two minutes)
    .venv/bin/python bench/reads.py --quick    # small sizes, to check the script works

Two suites run side by side with default settings (one with query.cache_enabled = false), and an echo
server on the services' event loop implementation answers every call with the serialized
ReadStreamResponse of the same 100 events (about 31 KB). Per round, in turn: sequential latency (one
call at a time: p50 and p99) and calls/s with 32 clients, for the echo, the warm suite and the cold one;
then single appends (32 clients) of the tenant the warm replica caches and of one it does not: what the
commit feed's acknowledgement costs writes.
The targets (DECISIONS.md, F13) are ratios to the echo of the same round: warm p50 within 1.5x, p99
within 3x, 32-client rate at least 0.7x.
Each round also reads the same 100 events through pyeventsourcing on PostgreSQL (bench/pg_baseline.py:
a fresh database on the machine's running PostgreSQL, ALLSOURCE_BENCH_PG, dropped at the end); the
issue's target is ours at or below its p50. A full run needs PostgreSQL; --quick skips the baseline with
a note when it cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import grpc  # noqa: E402
import pg_baseline  # noqa: E402
import run as bench  # noqa: E402
from allsource.v1 import event_pb2, ingest_pb2, ingest_pb2_grpc, query_pb2  # noqa: E402

from tests.harness import Suite, free_port  # noqa: E402

READ_PATH = "/allsource.v1.QueryService/ReadStream"
STREAM = "read-100"

# Answers every call with the bytes in the file named by argv[3], on the services' event loop.
ECHO_SERVER = """
import asyncio, grpc, sys
reply = open(sys.argv[3], "rb").read()
async def main():
    async def read(request, context):
        return reply
    method = grpc.unary_unary_rpc_method_handler(read, lambda b: b, lambda b: b)
    handler = grpc.method_handlers_generic_handler("allsource.v1.QueryService", {"ReadStream": method})
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port("127.0.0.1:" + sys.argv[1])
    await server.start()
    await server.wait_for_termination()
if sys.argv[2] == "uvloop":
    import uvloop
    uvloop.run(main())
else:
    asyncio.run(main())
"""


def start_echo(reply: bytes) -> tuple[subprocess.Popen[bytes], str, Path]:
    from shared.config.loader import load_settings

    port = free_port()
    path = Path(tempfile.mkstemp(prefix="read-echo-")[1])
    path.write_bytes(reply)
    event_loop = load_settings(environ={}).settings.grpc.event_loop
    proc = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, str(port), event_loop, str(path)])
    return proc, f"127.0.0.1:{port}", path


def seed(suite: Suite) -> bytes:
    """Append the stream's 100 events; returns the serialized ReadStreamResponse a read of it gives."""
    md = suite.auth_metadata()
    payload = bench.valid_json_payload()
    with grpc.insecure_channel(suite.address("ingest")) as channel:
        ingest_pb2_grpc.IngestServiceStub(channel).AppendEvents(
            ingest_pb2.AppendEventsRequest(
                stream_id=STREAM, events=[event_pb2.EventData(event_type="E", payload=payload) for _ in range(100)]
            ),
            metadata=md,
            timeout=30,
        )
    with grpc.insecure_channel(suite.address("query")) as channel:
        read = channel.unary_unary(READ_PATH, request_serializer=None, response_deserializer=None)
        request = query_pb2.ReadStreamRequest(stream_id=STREAM, page_size=100).SerializeToString()
        reply: bytes = read(request, metadata=md)
    assert len(query_pb2.ReadStreamResponse.FromString(reply).events) == 100
    return reply


async def measure(address: str, metadata: tuple[tuple[str, str], ...], calls: int, rate_calls: int) -> dict[str, float]:
    """Sequential p50/p99 (ms) and calls/s with 32 clients; each reply is checked to carry 100 events."""
    request = query_pb2.ReadStreamRequest(stream_id=STREAM, page_size=100).SerializeToString()
    async with grpc.aio.insecure_channel(address, options=bench.CHANNEL_OPTIONS) as channel:
        await asyncio.wait_for(channel.channel_ready(), 10)
        read = channel.unary_unary(READ_PATH, request_serializer=None, response_deserializer=None)
        for _ in range(20):
            reply = await read(request, metadata=metadata)
        assert len(query_pb2.ReadStreamResponse.FromString(reply).events) == 100
        latencies = []
        for _ in range(calls):
            started = time.perf_counter()
            await read(request, metadata=metadata)
            latencies.append((time.perf_counter() - started) * 1000)
        rate = await bench.concurrent_unary(read, lambda n: request, rate_calls, 32, metadata)
    return {"p50": bench.percentile(latencies, 50), "p99": bench.percentile(latencies, 99), "rate": rate}


async def append_rate(address: str, metadata: tuple[tuple[str, str], ...], total: int) -> float:
    """AppendEvents calls/s, one event each, 32 clients (as bench/run.py's single appends)."""
    payload = bench.valid_json_payload()
    async with grpc.aio.insecure_channel(address, options=bench.CHANNEL_OPTIONS) as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)

        def request(n: int) -> ingest_pb2.AppendEventsRequest:
            return ingest_pb2.AppendEventsRequest(
                stream_id=f"single-{n % 512}", events=[event_pb2.EventData(event_type="OrderPlaced", payload=payload)]
            )

        return await bench.concurrent_unary(stub.AppendEvents, request, total, 32, metadata)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: checks the script, not the machine")
    parser.add_argument("--rounds", type=int, default=0, help="interleaved rounds")
    args = parser.parse_args()
    q = args.quick
    rounds = args.rounds or (1 if q else 5)
    calls, rate_calls = (200, 500) if q else (2000, 4000)
    workdir = Path(tempfile.mkdtemp(prefix="allsource-bench-reads-"))
    warm = Suite(workdir / "warm")
    cold = Suite(workdir / "cold", extra_env={"ALLSOURCE_QUERY__CACHE_ENABLED": "false"})
    echo_proc = None
    echo_file = None
    figures: dict[str, list[dict[str, float]]] = {"echo": [], "warm": [], "cold": [], "postgres": []}
    cleanup = contextlib.ExitStack()
    postgres: pg_baseline.Baseline | None = None
    appends: dict[str, list[float]] = {"cached": [], "uncached": []}
    append_calls = 500 if q else 4000
    try:
        warm.start_all()
        cold.start_all()
        reply = seed(warm)
        seed(cold)
        echo_proc, echo_address, echo_file = start_echo(reply)
        targets = {
            "echo": (echo_address, warm.auth_metadata()),  # the same key rides along (and is ignored)
            "warm": (warm.address("query"), warm.auth_metadata()),
            "cold": (cold.address("query"), cold.auth_metadata()),
        }
        # What exactness costs writes: appends of a tenant the warm replica caches wait for its
        # acknowledgement on the commit feed; those of a tenant it does not cache do not.
        writers = {"cached": warm.auth_metadata(), "uncached": warm.create_tenant("bench-writes")}
        try:
            database = cleanup.enter_context(pg_baseline.fresh_database())
            postgres = pg_baseline.Baseline(database, json.loads(bench.valid_json_payload()))
            cleanup.callback(postgres.close)
        except Exception as exc:  # psycopg's OperationalError, or the packages missing
            if not q:
                raise SystemExit(f"the PostgreSQL baseline cannot run: {exc} (set ALLSOURCE_BENCH_PG)") from exc
            print(f"note: PostgreSQL baseline skipped ({type(exc).__name__}: {exc})".rstrip(), flush=True)
        for r in range(rounds):
            also = ", postgres" if postgres else ""
            print(f"round {r + 1}/{rounds}: echo, warm, cold{also}, appends ...", flush=True)
            for name, (address, md) in targets.items():
                figures[name].append(asyncio.run(measure(address, md, calls, rate_calls)))
            if postgres is not None:
                figures["postgres"].append(postgres.measure(calls))
            for name, md in writers.items():
                appends[name].append(asyncio.run(append_rate(warm.address("ingest"), md, append_calls)))
    finally:
        cleanup.close()  # the baseline's database is dropped
        if echo_proc is not None:
            echo_proc.terminate()
            echo_proc.wait()
        if echo_file is not None:
            echo_file.unlink(missing_ok=True)
        cold.stop_all()
        warm.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)

    def med(name: str, key: str) -> float:
        return statistics.median(f[key] for f in figures[name])

    def ratios(name: str, key: str) -> list[float]:
        return [f[key] / e[key] for f, e in zip(figures[name], figures["echo"], strict=True)]

    results: dict[str, Any] = {"rounds": rounds, "calls": calls, "rate_calls": rate_calls, "figures": figures}
    lines = [
        f"\nReadStream(100) ({'quick' if q else 'full'}; {os.cpu_count()} CPUs shared by client and suites; "
        f"medians of {rounds} interleaved rounds; ratios to the echo of the same round)",
        f"  echo returning the same {len(reply):,} bytes  p50 {med('echo', 'p50'):.2f} ms  "
        f"p99 {med('echo', 'p99'):.2f} ms  {med('echo', 'rate'):,.0f} calls/s (32 clients)  baseline",
    ]
    for name, label in (("warm", "warm (read cache on)"), ("cold", "cold (cache off)   ")):
        p50, p99, rate = (statistics.median(ratios(name, k)) for k in ("p50", "p99", "rate"))
        results[name] = {"p50_ms": med(name, "p50"), "p99_ms": med(name, "p99"), "rate": med(name, "rate")}
        results[f"{name}_vs_echo"] = {"p50": p50, "p99": p99, "rate": rate}
        lines.append(
            f"  {label}                p50 {med(name, 'p50'):.2f} ms ({p50:.2f} x echo)  "
            f"p99 {med(name, 'p99'):.2f} ms ({p99:.2f} x)  {med(name, 'rate'):,.0f} calls/s ({rate:.2f} x)"
        )
    lines.append("  targets, warm: p50 <= 1.5 x echo, p99 <= 3 x echo, calls/s >= 0.7 x echo")
    if figures["postgres"]:
        pg = {k: statistics.median(f[k] for f in figures["postgres"]) for k in figures["postgres"][0]}
        versus = [w["p50"] / f["p50"] for w, f in zip(figures["warm"], figures["postgres"], strict=True)]
        results["postgres"] = {f"{k}_ms": v for k, v in pg.items()}
        results["warm_vs_postgres_p50"] = statistics.median(versus)
        lines.append(
            f"  pyeventsourcing on PostgreSQL, stored events  p50 {pg['p50']:.2f} ms  p99 {pg['p99']:.2f} ms; "
            f"decoded  p50 {pg['decoded_p50']:.2f} ms  p99 {pg['decoded_p99']:.2f} ms (in-process, no gRPC)"
        )
        lines.append(
            f"  warm p50 vs its stored-events p50: {statistics.median(versus):.2f} x (target <= 1; per round "
            f"{', '.join(f'{x:.2f}' for x in versus)})"
        )
    else:
        lines.append("  pyeventsourcing on PostgreSQL: skipped (PostgreSQL not reachable)")
    cached = [c / u for c, u in zip(appends["cached"], appends["uncached"], strict=True)]
    results["appends"] = appends
    results["cached_tenant_appends_vs_uncached"] = statistics.median(cached)
    lines.append(
        f"  AppendEvents, 32 clients, of a tenant the replica caches  {statistics.median(appends['cached']):,.0f} "
        f"calls/s; of one it does not  {statistics.median(appends['uncached']):,.0f} calls/s  "
        f"({statistics.median(cached):.2f} x; per round {', '.join(f'{x:.2f}' for x in cached)})"
    )
    print("\n".join(lines))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / ("reads-quick.json" if q else "reads-latest.json")).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
