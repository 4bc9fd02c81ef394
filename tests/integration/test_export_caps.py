"""Exports (StreamEvents) are bounded per tenant and per query process, like subscriptions: each keeps
storage scanning the tenant's log for as long as it is open, and nothing counted them, so one tenant
could open as many as it liked. Past `query.max_exports_per_tenant`: RESOURCE_EXHAUSTED /
QUOTA_EXCEEDED with RetryInfo; another tenant's export is unaffected; a closed export gives its slot back.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import grpc
import pytest
from allsource.v1 import (
    event_pb2,
    ingest_pb2,
    ingest_pb2_grpc,
    query_pb2,
    query_pb2_grpc,
)

from tests.harness import Suite
from tests.limits.support import refusal

Metadata = tuple[tuple[str, str], ...]


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    suite = Suite(tmp_path_factory.mktemp("export-caps"), extra_env={"ALLSOURCE_QUERY__MAX_EXPORTS_PER_TENANT": "2"})
    try:
        suite.start_all()
        yield suite
    finally:
        suite.stop_all()


def big_tenant(suite: Suite, tenant_id: str, events: int) -> Metadata:
    """A tenant with `events` events of 8 KB (so an export whose client reads no further is held open by
    HTTP/2 flow control); its API key's metadata."""
    md = suite.create_tenant(tenant_id)
    ingest = ingest_pb2_grpc.IngestServiceStub(suite.channel("ingest", md))
    padding = "x" * 8000
    for start in range(0, events, 500):
        ingest.AppendEvents(
            ingest_pb2.AppendEventsRequest(
                stream_id=f"s-{start}",
                events=[
                    event_pb2.EventData(
                        event_type="Noted", payload=json.dumps({"n": start + i, "pad": padding}).encode()
                    )
                    for i in range(500)
                ],
            ),
            timeout=60,
        )
    return md


def test_a_tenants_exports_are_capped_and_another_tenants_are_not(capped: Suite) -> None:
    exporter = big_tenant(capped, "exporter", 3000)
    other = capped.create_tenant("other")
    ingest_pb2_grpc.IngestServiceStub(capped.channel("ingest", other)).AppendEvents(
        ingest_pb2.AppendEventsRequest(stream_id="o", events=[event_pb2.EventData(event_type="Noted", payload=b"{}")])
    )

    async def main() -> tuple[tuple[str, str, str, bool], int, bool]:
        async with grpc.aio.insecure_channel(capped.address("query")) as channel:
            stub = query_pb2_grpc.QueryServiceStub(channel)
            request = query_pb2.StreamEventsRequest(batch_size=100)
            held = [stub.StreamEvents(request, metadata=exporter, timeout=60) for _ in range(2)]
            for call in held:
                await call.read()  # open, and held there: the rest (24 MB) waits for a client that reads no more
            refused: tuple[str, str, str, bool] = ("", "", "", False)
            try:
                async for _ in stub.StreamEvents(request, metadata=exporter, timeout=60):
                    break
            except grpc.aio.AioRpcError as err:
                got = refusal(err)
                refused = (got.code, got.reason, got.metadata.get("limit", ""), got.retry_s is not None)
            others = 0
            async for message in stub.StreamEvents(query_pb2.StreamEventsRequest(), metadata=other, timeout=60):
                others += len(message.events)
            for call in held:
                call.cancel()
            # A closed export gives its slot back: a new one is taken (within a bounded wait).
            taken = False
            for _ in range(50):
                try:
                    async for _ in stub.StreamEvents(request, metadata=exporter, timeout=60):
                        break
                    taken = True
                    break
                except grpc.aio.AioRpcError:
                    await asyncio.sleep(0.1)
            return refused, others, taken

    refused, others, taken = asyncio.run(main())
    assert refused == ("RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "max_exports_per_tenant", True), refused
    assert others == 1
    assert taken
