"""The per-process credential cache and the tenant stage's checks, against in-memory records."""

from __future__ import annotations

import asyncio

import pytest
from allsource.storage.v1 import records_pb2
from allsource.v1 import tenant_pb2

from shared.auth.principal import Principal
from shared.auth.state import NS_API_KEYS, AuthState
from shared.core.errors import AllSourceError
from shared.core.timestamps import to_timestamp
from shared.stages.tenant import TenantResolution

K = records_pb2.AuthChangeKind


class SlowRecords:
    """Records whose reads wait for `release` (so a change can arrive while a read is running)."""

    def __init__(self) -> None:
        self.tenants: dict[str, tenant_pb2.Tenant] = {}
        self.values: dict[tuple[str, str, str], bytes] = {}
        self.release = asyncio.Event()
        self.reads = 0

    async def tenant(self, tenant_id: str) -> tenant_pb2.Tenant | None:
        self.reads += 1
        found = self.tenants.get(tenant_id)
        copy = tenant_pb2.Tenant()
        if found is not None:
            copy.CopyFrom(found)
        await self.release.wait()
        return copy if found is not None else None

    async def get(self, tenant_id: str, namespace: str, key: str) -> tuple[bytes, int] | None:
        self.reads += 1
        found = self.values.get((tenant_id, namespace, key))
        await self.release.wait()
        return (found, 1) if found is not None else None


def change(kind: int, subject: str) -> records_pb2.AuthChange:
    return records_pb2.AuthChange(kind=kind, subject=subject)


def test_a_record_read_while_it_changed_is_not_cached() -> None:
    async def body() -> None:
        records = SlowRecords()
        records.tenants["acme"] = tenant_pb2.Tenant(tenant_id="acme", status=tenant_pb2.TENANT_STATUS_ACTIVE)
        state = AuthState(records, resync_s=1, api_key_max_failures=10)  # type: ignore[arg-type]
        reading = asyncio.ensure_future(state.tenant("acme"))
        await asyncio.sleep(0)  # the read has the old record in hand
        records.tenants["acme"].status = tenant_pb2.TENANT_STATUS_INACTIVE
        state._apply(change(K.AUTH_CHANGE_KIND_TENANT_CHANGED, "acme"))  # arrives mid-read
        records.release.set()
        assert (await reading).status == tenant_pb2.TENANT_STATUS_ACTIVE  # this call saw the old one
        later = await state.tenant("acme")
        assert later is not None and later.status == tenant_pb2.TENANT_STATUS_INACTIVE
        assert records.reads == 2
        # Without a change in between, the record is cached.
        await state.tenant("acme")
        assert records.reads == 2

    asyncio.run(body())


def test_an_api_key_read_while_it_changed_is_not_cached() -> None:
    async def body() -> None:
        records = SlowRecords()
        records.values[("", NS_API_KEYS, "k1")] = records_pb2.ApiKeyRecord(key_id="k1").SerializeToString()
        state = AuthState(records, resync_s=1, api_key_max_failures=10)  # type: ignore[arg-type]
        reading = asyncio.ensure_future(state.api_key("k1"))
        await asyncio.sleep(0)
        records.values[("", NS_API_KEYS, "k1")] = records_pb2.ApiKeyRecord(
            key_id="k1", revoked=True
        ).SerializeToString()
        state._apply(change(K.AUTH_CHANGE_KIND_API_KEY_CHANGED, "k1"))
        records.release.set()
        await reading
        later = await state.api_key("k1")
        assert later is not None and later.revoked

    asyncio.run(body())


class FixedTenants:
    def __init__(self, tenant: tenant_pb2.Tenant) -> None:
        self.record = tenant

    async def tenant(self, tenant_id: str) -> tenant_pb2.Tenant | None:
        return self.record if tenant_id == self.record.tenant_id else None


def principal(tenant_id: str, issued_at_ns: int) -> Principal:
    return Principal(
        kind="api_key",
        subject="k1",
        name="k",
        tenant_id=tenant_id,
        role=0,
        permissions=frozenset(),
        issued_at_ns=issued_at_ns,
    )


@pytest.mark.parametrize(
    ("tenant_id", "issued", "switched", "refused"),
    [
        ("acme", 999, False, True),  # a key of an earlier tenant "acme", deleted, then created again
        ("acme", 1000, False, False),
        ("acme", 5000, False, False),
        ("acme", 999, True, False),  # an operator acting on it: their credential is not acme's
        ("default", 999, False, False),  # never deleted; it may predate its own record
    ],
)
def test_credentials_older_than_their_tenant_are_refused(
    tenant_id: str, issued: int, switched: bool, refused: bool
) -> None:
    tenant = tenant_pb2.Tenant(
        tenant_id=tenant_id, status=tenant_pb2.TENANT_STATUS_ACTIVE, created_at=to_timestamp(1000)
    )
    stage = TenantResolution(FixedTenants(tenant))  # type: ignore[arg-type]

    async def check() -> None:
        await stage.check(principal(tenant_id, issued), switched)

    if refused:
        with pytest.raises(AllSourceError) as err:
            asyncio.run(check())
        assert (err.value.code.name, err.value.reason) == ("UNAUTHENTICATED", "TENANT_NOT_FOUND")
    else:
        asyncio.run(check())
