"""Audit: operator acts (RPCs declared `audited`, and any call acting on another tenant) are written to
the audit log before the handler runs, and completed with their outcome; an act that cannot be
recorded is refused (AUDIT_UNAVAILABLE)."""

from __future__ import annotations

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
        # The tenant a lifecycle request names is the one acted on, whatever the header says.
        acted_on = _named_tenant(call.request) or (principal.tenant_id if call.switched else "")
        call.audit = await self.audit.begin(
            principal, call.method.path, acted_on, request_id=call.request_id, peer=call.peer
        )

    def exit(self, call: Call, outcome: Outcome) -> None:
        if call.audit is not None:
            call.audit.finish(outcome.code, outcome.reason)


def _named_tenant(request: object) -> str:
    """The tenant an audited request names: its tenant_id, or the tenant_id of the tenant it carries
    (UpdateTenant); "" when it names none."""
    named = getattr(request, "tenant_id", "")
    if not named:
        named = getattr(getattr(request, "tenant", None), "tenant_id", "")
    return str(named or "")
