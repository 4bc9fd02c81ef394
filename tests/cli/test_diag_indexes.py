"""`diag indexes`: each index's entries and bytes per tenant (AdminService.GetIndexStats), as a table and
as JSON, for the acting tenant or the tenants named."""

from __future__ import annotations

import uuid

from allsource.v1 import event_pb2, ingest_pb2, ingest_pb2_grpc, tenant_pb2

from tests.cli.conftest import Cli, exit_reason
from tests.harness import Suite


def new_tenant(suite: Suite, streams: dict[str, list[str]]) -> str:
    """A new tenant holding `streams` (stream id -> its events' types)."""
    name = f"idx-{uuid.uuid4().hex[:10]}"
    md = suite.create_tenant(name, quota_preset=tenant_pb2.QUOTA_PRESET_UNLIMITED)
    ingest = ingest_pb2_grpc.IngestServiceStub(suite.channel("ingest", md))
    for stream_id, types in streams.items():
        events = [event_pb2.EventData(event_type=t, payload=b'{"n": 1}') for t in types]
        ingest.AppendEvents(ingest_pb2.AppendEventsRequest(stream_id=stream_id, events=events), timeout=20)
    return name


def by_index(rows: list[dict[str, object]], tenant: str) -> dict[str, dict[str, object]]:
    return {str(r["index"]): r for r in rows if r["tenant"] == tenant}


def test_diag_indexes_reports_entries_and_bytes_per_index_and_tenant(cli: Cli, suite: Suite) -> None:
    # 7 events, 5 of them in streams with a category ("order-", "cart-"), 2 in one without ("solo").
    first = new_tenant(
        suite, {"order-1": ["Placed", "Paid", "Shipped"], "cart-9": ["Added", "Added"], "solo": ["A", "B"]}
    )
    second = new_tenant(suite, {"order-2": ["Placed"]})

    rows = cli.json("diag", "indexes", "--tenant", first, "--tenant", second)
    assert {r["tenant"] for r in rows} == {first, second}
    one, two = by_index(rows, first), by_index(rows, second)
    assert set(one) == set(two) == {"stream", "event_type", "event_id", "category_type"}
    assert {name: r["entries"] for name, r in one.items()} == {
        "stream": 7,
        "event_type": 7,
        "event_id": 7,
        "category_type": 5,
    }
    assert {name: r["entries"] for name, r in two.items()} == dict.fromkeys(two, 1)
    for row in rows:
        assert int(row["bytes"]) > 0 and row["partial"] is False and row["backfill"] is None, row
    # Bytes grow with entries: the first tenant's event-type index holds seven keys, the second's one.
    assert int(one["event_type"]["bytes"]) > int(two["event_type"]["bytes"])

    # Without --tenant: the acting tenant (the global --tenant), else the caller's own.
    acting = cli.json("--tenant", second, "diag", "indexes")
    assert {r["tenant"] for r in acting} == {second} and by_index(acting, second) == two

    table = cli.ok("diag", "indexes", "--tenant", first)
    assert "category_type" in table and "event_type" in table and "complete" in table and first in table


def test_diag_indexes_of_a_tenant_that_does_not_exist_is_refused(cli: Cli) -> None:
    exit_reason(cli.run("diag", "indexes", "--tenant", f"no-such-{uuid.uuid4().hex[:8]}"), 3, "NOT_FOUND")
