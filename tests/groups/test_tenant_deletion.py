"""Deleting a tenant drops its consumer groups from the storage service's memory at once, not at restart:
its consumers' streams end, and a tenant created again with the same id has none of the old groups."""

from __future__ import annotations

import grpc
import pytest
from allsource.v1 import admin_pb2, admin_pb2_grpc, groups_pb2, query_pb2_grpc

from tests.groups.support import Consumer, append, create_group, group_status
from tests.harness import Suite, wait_until


def test_deleting_a_tenant_forgets_its_live_groups(suite: Suite, unique: str) -> None:
    tenant = f"{unique}gone".rstrip("-")
    md = suite.create_tenant(tenant)
    create_group(suite, md, name="billing", stream_id_prefix="inv-")
    append(suite, md, "inv-1", 20)
    consumer = Consumer(suite, md, "billing", "c1")
    try:
        consumer.wait_joined()
        wait_until(lambda: len(consumer.acked) >= 20, 20, "the group delivered")
        # The consumer notes an ack as it sends it: wait for storage to have applied them (the group is live).
        wait_until(lambda: group_status(suite, md, "billing").status.checkpoint >= 20, 20, "the acks applied")

        admin = admin_pb2_grpc.AdminServiceStub(suite.channel("admin"))
        admin.DeleteTenant(admin_pb2.DeleteTenantRequest(tenant_id=tenant, confirm_tenant_id=tenant), timeout=30)
        # The consumer's stream ends at once (it does not linger until the process restarts).
        consumer.thread.join(10)
        assert not consumer.thread.is_alive() and consumer.error is not None
        assert consumer.error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION)
    finally:
        consumer.close()

    # The same id again: a new tenant, without the old group, its checkpoint or its consumers.
    md = suite.create_tenant(tenant)
    with pytest.raises(grpc.RpcError) as gone:
        group_status(suite, md, "billing")
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    query = query_pb2_grpc.QueryServiceStub(suite.channel("query", md))
    assert list(query.ListConsumerGroups(groups_pb2.ListConsumerGroupsRequest(), timeout=20).groups) == []
    # A group of the same name starts afresh.
    create_group(suite, md, name="billing", stream_id_prefix="inv-")
    fresh = group_status(suite, md, "billing")
    assert fresh.status.checkpoint == 0 and fresh.status.head_position == 0 and not fresh.status.consumers
