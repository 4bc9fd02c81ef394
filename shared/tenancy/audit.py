"""The audit log of operators' acts: calls acting on another tenant, and suite-wide operations.

Each act is written before it runs (outcome PENDING; if that write fails the call is refused, so nothing
happens unaudited) and completed with its outcome when it ends. Entries live in storage's control-plane
records: the suite-wide log (namespace "audit", no tenant), read by operators, and a copy in the tenant
acted on, read by that tenant's administrators. Keys sort by time.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from dataclasses import dataclass

from allsource.v1 import tenant_pb2

from shared.auth.principal import Principal
from shared.auth.state import RecordStore
from shared.core.errors import AllSourceError, Unavailable
from shared.core.reasons import Reason
from shared.core.timestamps import to_timestamp

log = logging.getLogger("allsource.audit")

NS_AUDIT = "audit"
PENDING = "PENDING"
_SUFFIX = os.urandom(3).hex()
_COUNTER = itertools.count()


@dataclass(slots=True)
class AuditEntry:
    """One act being audited."""

    log: AuditLog
    key: str
    event: tenant_pb2.AuditEvent
    revision: int = 1

    def finish(self, outcome: str, reason: str = "") -> None:
        """Complete the entry with the act's outcome (a status code name), in the background."""
        self.log.finish(self, outcome, reason)


class AuditLog:
    """Writes audit entries through storage."""

    def __init__(self, records: RecordStore) -> None:
        self.records = records
        self._pending: set[asyncio.Task[None]] = set()

    async def begin(
        self, principal: Principal, action: str, tenant_id: str, *, request_id: str, peer: str
    ) -> AuditEntry:
        """Record that the act begins; UNAVAILABLE (AUDIT_UNAVAILABLE) when it cannot be recorded."""
        now = time.time_ns()
        key = f"{now:020d}-{_SUFFIX}{next(_COUNTER) % 0xFFFFFF:06x}"
        event = tenant_pb2.AuditEvent(
            audit_id=key,
            time=to_timestamp(now),
            actor=principal.ref,
            actor_name=principal.name,
            actor_tenant_id=principal.home_tenant_id or principal.tenant_id,
            tenant_id=tenant_id,
            action=action,
            outcome=PENDING,
            request_id=request_id,
            peer=peer,
        )
        try:
            await self.records.put("", NS_AUDIT, key, event.SerializeToString(), expected_revision=0)
        except AllSourceError as exc:
            log.error("cannot write the audit log; the act is refused", extra={"action": action, "detail": exc.message})
            raise Unavailable(
                "the audit log cannot be written now, so this act is refused; try again",
                reason=Reason.AUDIT_UNAVAILABLE,
            ) from None
        return AuditEntry(self, key, event)

    def finish(self, entry: AuditEntry, outcome: str, reason: str = "") -> None:
        """Complete the entry with the act's outcome, in the background (the caller is not held up)."""
        entry.event.outcome = outcome
        entry.event.reason = reason
        task = asyncio.ensure_future(self._complete(entry))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _complete(self, entry: AuditEntry) -> None:
        value = entry.event.SerializeToString()
        try:
            await self.records.put("", NS_AUDIT, entry.key, value, expected_revision=entry.revision)
            if entry.event.tenant_id:
                try:
                    await self.records.put(entry.event.tenant_id, NS_AUDIT, entry.key, value)
                except AllSourceError as exc:
                    if exc.reason != Reason.TENANT_NOT_FOUND:  # e.g. it was just deleted: the suite log has it
                        raise
        except AllSourceError as exc:
            log.error(
                "cannot complete an audit entry; it stays PENDING",
                extra={"audit_id": entry.key, "outcome": entry.event.outcome, "detail": exc.message},
            )

    async def drain(self) -> None:
        """Wait for the outcomes still being written (at shutdown)."""
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
