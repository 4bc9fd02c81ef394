"""The memory-pressure monitor on real processes: past its limit (set tiny by a config reload) the query
service empties its read cache, keeps nothing new and refuses new subscriptions with OVERLOADED and
RetryInfo, with a gauge and a log line; once the limit is raised again (another reload) all comes back.
Storage likewise shrinks its block cache (filled by reads first; its capacity and usage gauges fall, and
come back after) and refuses new subscriptions."""

from __future__ import annotations

import re
import signal
import urllib.request
from pathlib import Path

import grpc
import pytest
from allsource.v1 import event_pb2, ingest_pb2, ingest_pb2_grpc, query_pb2, query_pb2_grpc
from allsource_client import error_from_rpc

from tests.harness import Suite

MiB, TiB = 1 << 20, 1 << 40
BLOCK_CACHE = 32 * MiB


def samples(suite: Suite, service: str = "query") -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{suite.metrics_ports[service]}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(allsource_\S+) (\S+)$", text, re.MULTILINE)}


def configure(cfg: Path, limit: int) -> None:
    # Small write buffers: the events go to SST files soon, and reading those is what fills the block cache.
    cfg.write_text(
        f"[memory]\nlimit_bytes = {limit}\ncheck_interval_s = 0.1\n"
        f"[storage]\nwrite_buffer_bytes = {64 * 1024}\nblock_cache_bytes = {BLOCK_CACHE}\n"
    )


def test_memory_pressure_sheds_the_cache_refuses_subscriptions_and_recovers(fresh_suite: Suite, tmp_path: Path) -> None:
    cfg = tmp_path / "allsource.toml"
    configure(cfg, TiB)
    suite = fresh_suite
    suite.extra_env = {"ALLSOURCE_CONFIG": str(cfg)}
    suite.start_all()
    md = suite.create_tenant("mem1")
    ingest = ingest_pb2_grpc.IngestServiceStub(suite.channel("ingest", md))
    query = query_pb2_grpc.QueryServiceStub(suite.channel("query", md))
    events = [event_pb2.EventData(event_type="E", payload=b'{"i": 1}') for _ in range(5)]
    ingest.AppendEvents(ingest_pb2.AppendEventsRequest(stream_id="m-1", events=events), timeout=20)
    pressure, cached = 'allsource_memory_pressure{service="query"}', "allsource_query_cache_bytes"

    def read() -> int:
        return len(query.ReadStream(query_pb2.ReadStreamRequest(stream_id="m-1"), timeout=20).events)

    def subscribe() -> query_pb2.SubscribeResponse:
        call = query.Subscribe(query_pb2.SubscribeRequest(), timeout=20)
        try:
            return next(iter(call))
        finally:
            call.cancel()

    suite.wait_until(lambda: read() == 5 and samples(suite)[cached] > 0, what="the stream page cached")
    assert samples(suite)[pressure] == 0
    assert subscribe().WhichOneof("content")

    configure(cfg, MiB)  # far below any Python process's resident size
    suite.signal("query", signal.SIGHUP)
    suite.wait_until(lambda: samples(suite)[pressure] == 1, what="memory pressure")
    assert samples(suite)[cached] == 0
    assert read() == 5 and read() == 5  # reads still answer, from storage: nothing is kept meanwhile
    assert samples(suite)[cached] == 0
    assert samples(suite)['allsource_memory_limit_bytes{service="query"}'] == MiB
    with pytest.raises(grpc.RpcError) as refused:
        subscribe()
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    error = error_from_rpc(refused.value)
    assert error.reason == "OVERLOADED" and error.retry_after
    assert "memory pressure: shedding caches" in suite.log("query")

    configure(cfg, TiB)
    suite.signal("query", signal.SIGHUP)
    suite.wait_until(lambda: samples(suite)[pressure] == 0, what="the pressure over")
    assert "memory pressure over" in suite.log("query")
    assert subscribe().WhichOneof("content")
    suite.wait_until(lambda: read() == 5 and samples(suite)[cached] > 0, what="the cache keeping again")

    # Storage: its block cache shrinks and it takes no new subscriptions (refused through query too).
    storage_pressure, block_cache, capacity = (
        'allsource_memory_pressure{service="storage"}',
        "allsource_rocksdb_block_cache_usage_bytes",
        "allsource_rocksdb_block_cache_capacity_bytes",
    )
    payload = b'{"x": "' + b"x" * 1000 + b'"}'
    for s in range(6):  # about 6 MB of events, mostly in SST files
        big = [event_pb2.EventData(event_type="Big", payload=payload) for _ in range(1000)]
        ingest.AppendEvents(ingest_pb2.AppendEventsRequest(stream_id=f"big-{s}", events=big), timeout=30)

    def list_all() -> None:  # ListEvents is not cached by query: storage reads the log, through its block cache
        token = ""
        while True:
            page = query.ListEvents(query_pb2.ListEventsRequest(page_size=1000, page_token=token), timeout=30)
            token = page.next_page_token
            if not token:
                return

    def filled() -> bool:
        list_all()
        return samples(suite, "storage")[block_cache] > 4 * MiB

    suite.wait_until(filled, timeout=30, what="the block cache filled by reads")
    assert samples(suite, "storage")[storage_pressure] == 0 and samples(suite, "storage")[capacity] == BLOCK_CACHE
    configure(cfg, MiB)
    suite.signal("storage", signal.SIGHUP)
    suite.wait_until(lambda: samples(suite, "storage")[storage_pressure] == 1, what="storage under pressure")
    assert samples(suite, "storage")[capacity] == MiB
    assert samples(suite, "storage")[block_cache] <= MiB
    list_all()  # reads go on, within the shrunk cache
    assert samples(suite, "storage")[block_cache] <= MiB
    assert "memory pressure: block cache shrunk" in suite.log("storage")
    with pytest.raises(grpc.RpcError) as refused:
        subscribe()
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_from_rpc(refused.value).reason == "OVERLOADED"
    assert "memory pressure: shedding caches" in suite.log("storage")
    configure(cfg, TiB)
    suite.signal("storage", signal.SIGHUP)
    suite.wait_until(lambda: samples(suite, "storage")[storage_pressure] == 0, what="storage's pressure over")
    assert samples(suite, "storage")[capacity] == BLOCK_CACHE
    assert "block cache capacity restored" in suite.log("storage")
    assert subscribe().WhichOneof("content")
    suite.wait_until(filled, timeout=30, what="the block cache filling again")
