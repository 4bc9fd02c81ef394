"""Control-plane records through the storage service, with the system scope (shared.auth.state.RecordStore)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from allsource.storage.v1 import storage_pb2
from allsource.v1 import tenant_pb2

from shared.core.errors import AllSourceError
from shared.core.reasons import Reason
from shared.core.wire import recast
from shared.storage.client import StorageClient

# A batch of records as (key, value, revision).
Entries = list[tuple[str, bytes, int]]


class StorageRecords:
    """Control-plane records through the storage service, with the system scope (shared.auth.state.RecordStore)."""

    def __init__(self, storage: StorageClient) -> None:
        self.storage = storage

    async def get(self, tenant_id: str, namespace: str, key: str) -> tuple[bytes, int] | None:
        try:
            reply = await self.storage.get_record(
                storage_pb2.GetRecordRequest(tenant_id=tenant_id, namespace=namespace, key=key)
            )
        except AllSourceError as exc:
            # A record of a tenant that does not exist is as absent as any other (so that, for example,
            # a login to an unknown tenant looks exactly like a wrong password).
            if exc.reason in (Reason.RECORD_NOT_FOUND, Reason.TENANT_NOT_FOUND):
                return None
            raise
        return reply.record.value, reply.record.revision

    async def list(self, tenant_id: str, namespace: str, after: str, limit: int) -> list[tuple[str, bytes, int]]:
        reply = await self.storage.list_records(
            storage_pb2.ListRecordsRequest(tenant_id=tenant_id, namespace=namespace, after_key=after, limit=limit)
        )
        return [(r.key, r.value, r.revision) for r in reply.records]

    async def put(
        self, tenant_id: str, namespace: str, key: str, value: bytes, expected_revision: int | None = None
    ) -> int:
        request = storage_pb2.PutRecordRequest(
            tenant_id=tenant_id, record=storage_pb2.Record(namespace=namespace, key=key, value=value)
        )
        if expected_revision is not None:
            request.expected_revision = expected_revision
        reply = await self.storage.put_record(request)
        return int(reply.record.revision)

    async def delete(self, tenant_id: str, namespace: str, key: str, expected_revision: int | None = None) -> bool:
        request = storage_pb2.DeleteRecordRequest(tenant_id=tenant_id, namespace=namespace, key=key)
        if expected_revision is not None:
            request.expected_revision = expected_revision
        reply = await self.storage.delete_record(request)
        return bool(reply.deleted)

    async def watch(self, tenant_id: str, namespace: str, after: str) -> AsyncIterator[Entries]:
        """Records of a namespace after a key, then as they are written, in batches."""
        request = storage_pb2.WatchRecordsRequest(tenant_id=tenant_id, namespace=namespace, after_key=after)
        async for message in self.storage.watch_records(request):
            yield [(r.key, r.value, r.revision) for r in message.records]

    async def tenant(self, tenant_id: str) -> tenant_pb2.Tenant | None:
        """A tenant, or None when it does not exist."""
        try:
            reply = await self.storage.get_tenant(storage_pb2.GetTenantRequest(tenant_id=tenant_id))
        except AllSourceError as exc:
            if exc.reason == Reason.TENANT_NOT_FOUND:
                return None
            raise
        return recast(reply.tenant, tenant_pb2.Tenant)
