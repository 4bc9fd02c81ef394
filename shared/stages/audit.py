"""Audit: operator acts (RPCs declared `audited`, and any call acting on another tenant) are written to
the audit log before the handler runs, and completed with their outcome; an act that cannot be
recorded is refused (AUDIT_UNAVAILABLE)."""

from __future__ import annotations

from allsource.v1 import options_pb2

from shared.rpc.chain import Call, MethodInfo, Outcome, Stage
from shared.stages.authentication import declared
from shared.tenancy.audit import AuditLog


class AuditStage(Stage):
    """Begins and completes the audit entry of an audited act."""

    name = "audit"

    def __init__(self, audit: AuditLog) -> None:
        self.audit = audit

    def applies(self, method: MethodInfo) -> bool:
        # Reflection reads descriptors, not data: not an act for the audit log (nor is health, outside
        # the chain).
        return not method.control and not method.reflection and declared(method)

    async def enter(self, call: Call) -> None:
        principal = call.principal
        requirement = call.method.requirement
        if principal is None or not (call.switched or (requirement is not None and requirement.audited)):
            return
        # The tenant a request names is the one acted on, whatever the header says; otherwise the tenant
        # the call acts in, unless it is a suite-wide act (PERMISSION_OPERATE) done from the caller's own
        # tenant. So a tenant's own acts on its data (DeleteStream, DeleteEvents) reach its audit copy.
        suite_wide = requirement is not None and requirement.permission == options_pb2.PERMISSION_OPERATE
        acted_on = _named_tenant(call.request) or (principal.tenant_id if call.switched or not suite_wide else "")
        call.audit = await self.audit.begin(
            principal, call.method.path, acted_on, request_id=call.request_id, peer=call.peer
        )

    def exit(self, call: Call, outcome: Outcome) -> None:
        if call.audit is not None:
            call.audit.finish(outcome.code, outcome.reason)


def _named_tenant(request: object) -> str:
    """The tenant an audited request names: its tenant_id, the tenant_id of the tenant it carries
    (UpdateTenant), or its tenant_ids joined by commas (backups); "" when it names none."""
    named = getattr(request, "tenant_id", "")
    if not named:
        named = getattr(getattr(request, "tenant", None), "tenant_id", "")
    if not named:  # backups and restores name several (none: all of them)
        named = ",".join(getattr(request, "tenant_ids", ()))
    return str(named or "")
