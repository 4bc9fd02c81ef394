"""DeleteStream and DeleteEvents are audited: each act, refused or done, leaves an entry naming the actor,
the tenant acted on, the RPC and its outcome, which the tenant's administrators and operators both see."""

from __future__ import annotations

import uuid

import grpc
import pytest
from allsource.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    event_pb2,
    ingest_pb2,
    ingest_pb2_grpc,
    lifecycle_pb2,
    tenant_pb2,
)

from tests.harness import Suite, wait_until

INGEST = "/allsource.v1.IngestService/"


def audit_of(admin: admin_pb2_grpc.AdminServiceStub, tenant: str = "") -> list[tenant_pb2.AuditEvent]:
    reply = admin.ListAuditEvents(admin_pb2.ListAuditEventsRequest(tenant_id=tenant, page_size=1000), timeout=20)
    return [e for e in reply.events if e.action.startswith(INGEST + "Delete")]


def test_stream_deletions_and_erasures_are_audited(suite: Suite) -> None:
    tenant = f"aud{uuid.uuid4().hex[:8]}"
    md = suite.create_tenant(tenant)  # an administrator's key of the tenant
    ingest = ingest_pb2_grpc.IngestServiceStub(suite.channel("ingest", md))
    for stream in ("acct-1", "acct-2"):
        ingest.AppendEvents(
            ingest_pb2.AppendEventsRequest(
                stream_id=stream, events=[event_pb2.EventData(event_type="Opened", payload=b"{}")]
            ),
            timeout=20,
        )
    exact = ingest_pb2.ExpectedVersion(kind=ingest_pb2.EXPECTED_VERSION_KIND_EXACT, version=9)
    with pytest.raises(grpc.RpcError):
        ingest.DeleteStream(ingest_pb2.DeleteStreamRequest(stream_id="acct-1", expected_version=exact), timeout=20)
    ingest.DeleteStream(ingest_pb2.DeleteStreamRequest(stream_id="acct-1", hard=True), timeout=20)
    ingest.DeleteEvents(lifecycle_pb2.DeleteEventsRequest(stream_id_prefix="acct-", dry_run=True), timeout=20)
    ingest.DeleteEvents(lifecycle_pb2.DeleteEventsRequest(stream_id_prefix="acct-"), timeout=20)

    # As the tenant's administrator sees its own audit log, and as an operator sees the tenant's.
    own = admin_pb2_grpc.AdminServiceStub(suite.channel("admin", md))
    operator = admin_pb2_grpc.AdminServiceStub(suite.channel("admin"))
    for admin, asked in ((own, ""), (operator, tenant)):
        # Four acts, each completed (the tenant's copy of an entry is written as the act completes, in
        # the background: three of four were there once, every one completed).
        entries = wait_until(
            lambda: len(found := audit_of(admin, asked)) == 4 and all(e.outcome != "PENDING" for e in found) and found,  # noqa: B023
            10,
            "the four audit entries completed",
        )
        acts = [(e.action.removeprefix(INGEST), e.outcome, e.reason) for e in entries]
        assert acts == [
            ("DeleteStream", "ABORTED", "WRONG_EXPECTED_VERSION"),
            ("DeleteStream", "OK", ""),
            ("DeleteEvents", "OK", ""),
            ("DeleteEvents", "OK", ""),
        ], acts
        assert {(e.tenant_id, e.actor_tenant_id) for e in entries} == {(tenant, tenant)}
        assert all(e.actor.startswith("key:") and e.request_id and e.time.seconds for e in entries)
