"""The category/type index's backfill on real processes: scheduled once (here by a change of
storage.category_separator, as after an upgrade), killed with SIGKILL halfway, resumed from its last
batch at the next start and completed; GetIndexStats reports its progress and ListEvents walks the index
once it is done."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import grpc
from allsource.v1 import admin_pb2, admin_pb2_grpc, event_pb2, ingest_pb2, ingest_pb2_grpc, query_pb2, query_pb2_grpc

from tests.harness import Suite, wait_until

EVENTS = 6000


def category_index(suite: Suite, md: tuple[tuple[str, str], ...]) -> admin_pb2.IndexStats | None:
    """The tenant's category_type figures, or None while storage does not answer."""
    try:
        reply = admin_pb2_grpc.AdminServiceStub(suite.channel("admin", md)).GetIndexStats(
            admin_pb2.GetIndexStatsRequest(), timeout=5
        )
    except grpc.RpcError:
        return None
    (found,) = [i for i in reply.indexes if i.index == "category_type"]
    return found


def wait_for(
    suite: Suite, md: tuple[tuple[str, str], ...], done: Callable[[admin_pb2.IndexStats], bool], what: str
) -> admin_pb2.IndexStats:
    """The tenant's category_type figures once storage answers and `done` holds for them (60 s at most)."""

    def figures() -> admin_pb2.IndexStats | None:
        found = category_index(suite, md)
        return found if found is not None and done(found) else None

    return wait_until(figures, 60, what)


def test_the_backfill_resumes_after_a_kill_and_completes(tmp_path: Path) -> None:
    # ~900 events/s: halfway takes ~3 s, so a backfill started over would be far behind when storage answers.
    env = {"ALLSOURCE_STORAGE__INDEX_BACKFILL_BATCH": "50", "ALLSOURCE_STORAGE__INDEX_BACKFILL_PAUSE_MS": "50"}
    suite = Suite(tmp_path, extra_env=env)
    try:
        suite.start_all()
        tenant = f"bf{uuid.uuid4().hex[:6]}"
        md = suite.create_tenant(tenant)
        ingest = ingest_pb2_grpc.IngestServiceStub(suite.channel("ingest", md))
        for i in range(EVENTS // 500):
            events = [event_pb2.EventData(event_type="Placed", payload=b"{}") for _ in range(500)]
            ingest.AppendEvents(ingest_pb2.AppendEventsRequest(stream_id=f"order_{i % 4}", events=events), timeout=30)
        # With the default separator "-" these streams have no category: no entries.
        before = wait_for(suite, md, lambda f: True, "the index figures")
        assert (before.entries, before.backfill_target) == (0, 0)

        suite.stop("storage")
        env["ALLSOURCE_STORAGE__CATEGORY_SEPARATOR"] = "_"  # now every stream is of category "order"
        suite.start("storage")
        halfway = wait_for(suite, md, lambda f: f.backfill_next > EVENTS // 2, "the backfill to pass halfway")
        assert halfway.backfill_target == EVENTS
        suite.kill("storage")

        suite.start("storage")
        resumed = wait_for(suite, md, lambda f: True, "storage to answer again")
        # It goes on from its last batch (or has finished), not from the start.
        assert resumed.backfill_next >= halfway.backfill_next or resumed.backfill_target == 0, (halfway, resumed)
        assert suite.log("storage").count("category/type index: backfill scheduled") == 1
        done = wait_for(suite, md, lambda f: f.backfill_target == 0, "the backfill to complete")
        assert done.entries == EVENTS and not done.partial

        query = query_pb2_grpc.QueryServiceStub(suite.channel("query", md))
        page = query.ListEvents(
            query_pb2.ListEventsRequest(
                filter=event_pb2.EventFilter(stream_id_prefix="order_", event_types=["Placed"]),
                page_size=1000,
                explain=True,
            ),
            timeout=20,
        )
        assert (page.plan.index, page.plan.keys_examined, len(page.events)) == ("category_type", 1000, 1000)
        assert [e.position for e in page.events] == list(range(1, 1001))
    finally:
        suite.stop_all()
