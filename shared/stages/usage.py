"""Usage accounting: each admitted call of a counted service is one query of its tenant (in memory,
added to storage's counters about once a second; see shared.tenancy.usage)."""

from __future__ import annotations

from collections.abc import Iterable

from shared.core.tenant_ids import DEFAULT_TENANT
from shared.rpc.chain import Call, MethodInfo, Stage
from shared.tenancy.usage import QueryCounter


class UsageAccounting(Stage):
    """Counts the calls of the given services per tenant."""

    name = "usage"

    def __init__(self, counter: QueryCounter, services: Iterable[str]) -> None:
        self.counter = counter
        self.services = frozenset(services)

    def applies(self, method: MethodInfo) -> bool:
        return method.service in self.services

    def enter(self, call: Call) -> None:
        self.counter.count(call.principal.tenant_id if call.principal is not None else DEFAULT_TENANT)
