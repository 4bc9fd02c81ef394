"""AllSource benchmark: figures through a running suite, each beside the baseline measured in the same run.

    .venv/bin/python bench/run.py            # full run (about two minutes)
    .venv/bin/python bench/run.py --quick    # small sizes, to check the script works

Baselines: the raw rocksdict WriteBatch rate for the same events and index entries (four keys per
event, synced, 1,000 events per batch), and a bare grpc.aio unary echo with 32 concurrent calls (the
transport ceiling). Client and suite share this machine's cores. Results also go to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402
from allsource.v1 import (  # noqa: E402
    event_pb2,
    ingest_pb2,
    ingest_pb2_grpc,
    query_pb2,
    query_pb2_grpc,
)

from tests.harness import Suite, free_port  # noqa: E402

CHANNEL_OPTIONS = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
CREDENTIALS: tuple[tuple[str, str], ...] = ()  # the suite's bootstrap admin key, set once the suite is up


def suite_channel(address: str, options: list[tuple[str, int]] | None = None) -> grpc.aio.Channel:
    """A channel to one of the suite's services (calls pass metadata=CREDENTIALS, as a real client would)."""
    return grpc.aio.insecure_channel(address, options=options)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def valid_json_payload() -> bytes:
    body = b'{"order":"' + b"x" * 170 + b'","total":12345}'
    return body + b" " * (200 - len(body))


# -- baselines ----------------------------------------------------------------------------------------


def raw_rocksdict(events: int, batch: int = 1000) -> float:
    """Events/s written by plain rocksdict: event + stream, type and id index entries, synced batches."""
    from rocksdict import Options, Rdict, WriteBatch, WriteOptions

    from services.storage.rocksdb_backend import FAMILIES, _family_options

    path = tempfile.mkdtemp(prefix="raw-rocksdb-")
    opt = Options(raw_mode=True)
    opt.create_if_missing(True)
    opt.create_missing_column_families(True)
    db = Rdict(path, opt, column_families={n: _family_options(n) for n in FAMILIES})
    h = {n: db.get_column_family_handle(n) for n in FAMILIES}
    write_opt = WriteOptions()
    write_opt.sync = True
    payload = valid_json_payload()
    batches = []
    for b in range(events // batch):  # keys and values built before the clock starts
        rows = []
        stream = b"\x00\x00\x00\x01" + f"bulk-{b}".encode() + b"\x00"
        for i in range(batch):
            pos = struct.pack(">Q", b * batch + i + 1)
            # the stored value: payload plus event type, id, tenant, stream, version, position, time
            rows.append(
                (
                    b"\x00\x00\x00\x01" + pos,
                    payload + b"x" * 120,
                    stream + struct.pack(">Q", i + 1),
                    pos,
                    b"\x00\x00\x00\x01OrderPlaced\x00" + pos,
                    b"\x00\x00\x00\x01" + uuid.uuid4().bytes,
                )
            )
        batches.append(rows)
    started = time.perf_counter()
    for rows in batches:
        wb = WriteBatch(raw_mode=True)
        for ek, ev, sk, pos, tk, ik in rows:
            wb.put(ek, ev, h["events"])
            wb.put(sk, pos, h["stream_idx"])
            wb.put(tk, b"", h["type_idx"])
            wb.put(ik, pos, h["id_idx"])
        db.write(wb, write_opt)
    elapsed = time.perf_counter() - started
    db.close()
    shutil.rmtree(path, ignore_errors=True)
    return events / elapsed


# The echo server runs on the same event loop implementation as the services (uvloop by default), so
# it is the transport ceiling of this stack, not of a slower one.
ECHO_SERVER = """
import asyncio, grpc, sys
async def main():
    async def ping(request, context):
        return request
    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Ping": grpc.unary_unary_rpc_method_handler(ping, lambda b: b, lambda b: b)})
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


async def concurrent_unary(
    call: Any, make_request: Any, total: int, concurrency: int, metadata: tuple[tuple[str, str], ...] = ()
) -> float:
    """Calls/s for `total` calls with `concurrency` in flight."""
    await call(make_request(0), metadata=metadata)
    counter = iter(range(total))

    async def worker() -> None:
        for n in counter:
            await call(make_request(n), metadata=metadata)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - started)


def start_echo_server() -> tuple[subprocess.Popen[bytes], str]:
    """A bare gRPC echo server on the services' event loop implementation."""
    from shared.config.loader import load_settings

    port = free_port()
    event_loop = load_settings(environ={}).settings.grpc.event_loop
    proc = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, str(port), event_loop])
    return proc, f"127.0.0.1:{port}"


async def echo_rate(address: str, total: int) -> float:
    async with grpc.aio.insecure_channel(address) as channel:  # the bare echo server takes no key
        await asyncio.wait_for(channel.channel_ready(), 10)
        call = channel.unary_unary("/bench.Echo/Ping", request_serializer=None, response_deserializer=None)
        message = ingest_pb2.AppendEventsRequest(
            stream_id="s", events=[event_pb2.EventData(event_type="OrderPlaced", payload=valid_json_payload())]
        ).SerializeToString()
        # The same credentials ride along (and are ignored), so both sides carry the same bytes.
        return await concurrent_unary(call, lambda n: message, total, 32, CREDENTIALS)


# -- through the suite --------------------------------------------------------------------------------


async def bulk_ingest(
    address: str, requests: int, round_no: int = 0, per_request: int = 1000, window: int = 8
) -> float:
    payload = valid_json_payload()
    events = [event_pb2.EventData(event_type="OrderPlaced", payload=payload) for _ in range(per_request)]
    prebuilt = [
        ingest_pb2.BatchAppendRequest(
            append=ingest_pb2.AppendEventsRequest(stream_id=f"bulk-{round_no}-{i}", events=events)
        )
        for i in range(requests)
    ]
    async with suite_channel(address, CHANNEL_OPTIONS) as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        credit = asyncio.Semaphore(window)

        async def feed() -> Any:
            for request in prebuilt:
                await credit.acquire()
                yield request

        started = time.perf_counter()
        call = stub.BatchAppend(feed(), metadata=CREDENTIALS)
        done = 0
        async for response in call:
            credit.release()
            if response.WhichOneof("result") != "success":
                raise RuntimeError(f"bulk append failed: {response.error}")
            done += response.success.last_position - response.success.first_position + 1
        return done / (time.perf_counter() - started)


async def single_appends(address: str, total: int) -> float:
    payload = valid_json_payload()
    async with suite_channel(address, CHANNEL_OPTIONS) as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)

        def request(n: int) -> ingest_pb2.AppendEventsRequest:
            return ingest_pb2.AppendEventsRequest(
                stream_id=f"single-{n % 512}", events=[event_pb2.EventData(event_type="OrderPlaced", payload=payload)]
            )

        return await concurrent_unary(stub.AppendEvents, request, total, 32, CREDENTIALS)


async def read_stream_latency(ingest: str, query: str, calls: int) -> tuple[float, float]:
    payload = valid_json_payload()
    async with (
        suite_channel(ingest, CHANNEL_OPTIONS) as ich,
        suite_channel(query, CHANNEL_OPTIONS) as qch,
    ):
        await ingest_pb2_grpc.IngestServiceStub(ich).AppendEvents(
            ingest_pb2.AppendEventsRequest(
                stream_id="read-100", events=[event_pb2.EventData(event_type="E", payload=payload) for _ in range(100)]
            ),
            metadata=CREDENTIALS,
        )
        stub = query_pb2_grpc.QueryServiceStub(qch)
        request = query_pb2.ReadStreamRequest(stream_id="read-100", page_size=100)
        for _ in range(20):
            await stub.ReadStream(request, metadata=CREDENTIALS)
        latencies = []
        for _ in range(calls):
            started = time.perf_counter()
            reply = await stub.ReadStream(request, metadata=CREDENTIALS)
            latencies.append((time.perf_counter() - started) * 1000)
            assert len(reply.events) == 100
        return percentile(latencies, 50), percentile(latencies, 99)


async def stream_events_rate(query: str) -> tuple[float, int]:
    async with suite_channel(query, CHANNEL_OPTIONS) as channel:
        stub = query_pb2_grpc.QueryServiceStub(channel)
        started = time.perf_counter()
        count = 0
        async for message in stub.StreamEvents(query_pb2.StreamEventsRequest(batch_size=2000), metadata=CREDENTIALS):
            count += len(message.events)
        return count / (time.perf_counter() - started), count


async def subscribe_latency(ingest: str, query: str, events: int, rate: float) -> tuple[float, float]:
    async with suite_channel(ingest) as ich, suite_channel(query) as qch:
        ingest_stub = ingest_pb2_grpc.IngestServiceStub(ich)
        query_stub = query_pb2_grpc.QueryServiceStub(qch)
        sent: dict[str, int] = {}
        latencies: list[float] = []
        subscription = query_stub.Subscribe(
            query_pb2.SubscribeRequest(from_end=True, stream_id_prefix="latency-"), metadata=CREDENTIALS
        )
        caught_up = asyncio.Event()

        async def receive() -> None:
            async for message in subscription:
                kind = message.WhichOneof("content")
                if kind == "caught_up":
                    caught_up.set()
                elif kind == "events":
                    now = time.perf_counter_ns()
                    for ev in message.events.events:
                        latencies.append((now - sent[ev.event_id]) / 1e6)
                    if len(latencies) >= events:
                        return

        receiver = asyncio.ensure_future(receive())
        await asyncio.wait_for(caught_up.wait(), 10)
        for n in range(events):
            event_id = str(uuid.uuid4())
            sent[event_id] = time.perf_counter_ns()
            await ingest_stub.AppendEvents(
                ingest_pb2.AppendEventsRequest(
                    stream_id=f"latency-{n % 8}",
                    events=[event_pb2.EventData(event_id=event_id, event_type="Tick", payload=b"{}")],
                ),
                metadata=CREDENTIALS,
            )
            await asyncio.sleep(1 / rate)
        await asyncio.wait_for(receiver, 30)
        subscription.cancel()
        return percentile(latencies, 50), percentile(latencies, 99)


def median_and_range(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: checks the script, not the machine")
    parser.add_argument("--rounds", type=int, default=0, help="interleaved rounds of each paired measurement")
    args = parser.parse_args()
    q = args.quick
    rounds = args.rounds or (1 if q else 3)
    sizes = {
        "raw_events": 20_000 if q else 200_000,
        "bulk_requests": 20 if q else 200,
        "single_calls": 1_000 if q else 8_000,
        "echo_calls": 1_000 if q else 8_000,
        "read_calls": 100 if q else 1_000,
        "subscribe_events": 50 if q else 500,
    }
    results: dict[str, Any] = {
        "machine": platform.node(),
        "cpus": os.cpu_count(),
        "quick": q,
        "rounds": rounds,
        "sizes": sizes,
    }
    workdir = Path(tempfile.mkdtemp(prefix="allsource-bench-"))
    suite = Suite(workdir)  # default settings: durable writes, access log on, trace propagation on
    echo_proc, echo_address = start_echo_server()
    raw, bulk, echo, single = [], [], [], []
    try:
        suite.start_all()
        global CREDENTIALS
        CREDENTIALS = suite.auth_metadata()
        ingest, query = suite.address("ingest"), suite.address("query")
        # Each figure and its baseline are measured back to back, round after round, so that a change
        # in the machine's load affects both; the medians and the ratio of medians are reported.
        for r in range(rounds):
            print(f"round {r + 1}/{rounds}: raw rocksdict, bulk ingest, echo, single appends ...", flush=True)
            raw.append(raw_rocksdict(sizes["raw_events"]))
            bulk.append(asyncio.run(bulk_ingest(ingest, sizes["bulk_requests"], round_no=r)))
            echo.append(asyncio.run(echo_rate(echo_address, sizes["echo_calls"])))
            single.append(asyncio.run(single_appends(ingest, sizes["single_calls"])))
        print("ReadStream(100) latency ...", flush=True)
        p50, p99 = asyncio.run(read_stream_latency(ingest, query, sizes["read_calls"]))
        results["read_stream_100_ms"] = {"p50": p50, "p99": p99}
        print("StreamEvents ...", flush=True)
        rate, count = asyncio.run(stream_events_rate(query))
        results["stream_events_per_s"] = rate
        results["stream_events_count"] = count
        print("Subscribe append-to-delivery latency ...", flush=True)
        p50, p99 = asyncio.run(subscribe_latency(ingest, query, sizes["subscribe_events"], rate=200))
        results["subscribe_latency_ms"] = {"p50": p50, "p99": p99}
    finally:
        echo_proc.terminate()
        echo_proc.wait()
        suite.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)

    for name, values in (
        ("raw_rocksdict_events_per_s", raw),
        ("bulk_events_per_s", bulk),
        ("echo_calls_per_s", echo),
        ("single_appends_per_s", single),
    ):
        results[name] = median_and_range(values)
    results["bulk_vs_raw"] = results["bulk_events_per_s"]["median"] / results["raw_rocksdict_events_per_s"]["median"]
    results["single_vs_echo"] = results["single_appends_per_s"]["median"] / results["echo_calls_per_s"]["median"]
    results["bulk_vs_raw_per_round"] = [b / r for b, r in zip(bulk, raw, strict=True)]
    results["single_vs_echo_per_round"] = [s_ / e for s_, e in zip(single, echo, strict=True)]

    def fig(name: str) -> str:
        m = results[name]
        return f"{m['median']:>10,.0f}  ({m['min']:,.0f}-{m['max']:,.0f})"

    rs, sub = results["read_stream_100_ms"], results["subscribe_latency_ms"]
    per_round = lambda key: ", ".join(f"{x:.2f}" for x in results[key])  # noqa: E731
    print(
        f"""
AllSource benchmark ({"quick" if q else "full"}; {os.cpu_count()} CPUs shared by client and suite; medians of {rounds} interleaved rounds, range in brackets)
  raw rocksdict WriteBatch (4 keys/event, synced)   {fig("raw_rocksdict_events_per_s")} events/s   baseline
  bare gRPC unary echo, 32 in flight (same loop)   {fig("echo_calls_per_s")} calls/s    baseline
  bulk ingest, BatchAppend 1000 x 200 B, durable   {fig("bulk_events_per_s")} events/s   {results["bulk_vs_raw"]:.2f} x raw  (per round {per_round("bulk_vs_raw_per_round")}; target >= 0.35)
  AppendEvents, 1 event, 32 clients                {fig("single_appends_per_s")} calls/s    {results["single_vs_echo"]:.2f} x echo (per round {per_round("single_vs_echo_per_round")}; target >= 0.60)
  ReadStream(100)                                  p50 {rs["p50"]:.2f} ms  p99 {rs["p99"]:.2f} ms   (target p99 <= 10 ms)
  StreamEvents                                     {results["stream_events_per_s"]:>10,.0f} events/s   ({count:,} events)
  Subscribe append-to-delivery                     p50 {sub["p50"]:.2f} ms  p99 {sub["p99"]:.2f} ms
"""
    )
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / ("quick.json" if q else "latest.json")).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
