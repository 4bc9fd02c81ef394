"""Counting a tenant's active API keys (quota checks, GetQuotaUsage, GetTenantStats) reads the tenant's
key index, not every key the tenant ever had: revoked and expired keys cost nothing more to count."""

from __future__ import annotations

import asyncio
import time

from allsource.storage.v1 import records_pb2

from services.admin.auth import REVOKED_ENTRY, AuthServicer, _index_entry
from shared.auth.state import NS_API_KEYS, NS_TENANT_KEYS


class Records:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, str], bytes] = {}
        self.gets = 0

    async def get(self, tenant_id: str, namespace: str, key: str) -> tuple[bytes, int] | None:
        self.gets += 1
        found = self.rows.get((tenant_id, namespace, key))
        return (found, 1) if found is not None else None

    async def list(self, tenant_id: str, namespace: str, after: str, limit: int) -> list[tuple[str, bytes, int]]:
        keys = sorted(k for t, ns, k in self.rows if (t, ns) == (tenant_id, namespace) and k > after)
        return [(k, self.rows[(tenant_id, namespace, k)], 1) for k in keys[:limit]]


def test_revoked_and_expired_keys_are_counted_from_the_index_alone() -> None:
    """3,000 revoked keys, one expired, one active and one indexed before the index said anything (its
    record is read): 2 active, with one read of a key. Before, each of the 3,003 keys was read (one
    storage call each: GetQuotaUsage went from 0.035 to 4.2 s with 3,000 revoked keys)."""
    records = Records()
    now = time.time_ns()
    for i in range(3000):
        records.rows[("t", NS_TENANT_KEYS, f"r{i:05d}")] = REVOKED_ENTRY
    expired = records_pb2.ApiKeyRecord(key_id="x", expires_at_ns=now - 1)
    active = records_pb2.ApiKeyRecord(key_id="a")
    records.rows[("t", NS_TENANT_KEYS, "x")] = _index_entry(expired)
    records.rows[("t", NS_TENANT_KEYS, "a")] = _index_entry(active)
    records.rows[("t", NS_TENANT_KEYS, "legacy")] = b""
    records.rows[("", NS_API_KEYS, "legacy")] = records_pb2.ApiKeyRecord(key_id="legacy").SerializeToString()
    servicer = AuthServicer.__new__(AuthServicer)
    servicer.records = records  # type: ignore[assignment]
    assert asyncio.run(servicer.count_active_keys("t")) == 2
    assert records.gets == 1
