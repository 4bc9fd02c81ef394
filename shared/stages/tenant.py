"""Tenant resolution: the tenant a call acts on, which must exist and be active.

It is the credential's tenant, unless an operator names another in `x-allsource-tenant` (anyone else
naming a tenant other than their own is refused with CROSS_TENANT_DENIED; the audit stage records such
acts).
"""

from __future__ import annotations

from dataclasses import replace

from allsource.v1 import tenant_pb2

from shared.auth import rbac
from shared.auth.principal import Principal, principal_var
from shared.auth.state import AuthState
from shared.core.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from shared.core.reasons import Reason
from shared.core.tenant_ids import DEFAULT_TENANT
from shared.rpc.chain import Call, MethodInfo, Stage
from shared.stages.authentication import declared
from shared.telemetry.logs import tenant_var

TENANT_HEADER = "x-allsource-tenant"


class TenantResolution(Stage):
    """Sets the tenant the call acts on; refuses missing, inactive and foreign tenants."""

    name = "tenant"

    def __init__(self, state: AuthState) -> None:
        self.state = state

    def applies(self, method: MethodInfo) -> bool:
        return not method.control and declared(method)

    async def enter(self, call: Call) -> None:
        if call.principal is None:
            return  # a call that needs no credential and brought none
        principal, switched = acting_tenant(call.principal, call.metadata_values(TENANT_HEADER))
        call.principal, call.switched = principal, switched
        principal_var.set(principal)
        tenant_var.set(principal.tenant_id)
        call.tenant = await self.check(principal, switched)

    async def check(self, principal: Principal, switched: bool) -> tenant_pb2.Tenant:
        """The tenant acted on must exist and be active; returns its record."""
        tenant = await self.state.tenant(principal.tenant_id)
        if tenant is None:
            if switched:
                raise NotFound(
                    f"tenant {principal.tenant_id!r} does not exist",
                    reason=Reason.TENANT_NOT_FOUND,
                    metadata={"tenant_id": principal.tenant_id},
                )
            raise Unauthenticated("the credential's tenant no longer exists", reason=Reason.TENANT_NOT_FOUND)
        if (
            not switched
            and principal.tenant_id != DEFAULT_TENANT  # never deleted; it may predate its own record
            and tenant.HasField("created_at")
            and 0 < principal.issued_at_ns < tenant.created_at.ToNanoseconds()
        ):
            # A credential of an earlier tenant of this id (deleted, then created again) that outlived it.
            raise Unauthenticated("the credential's tenant no longer exists", reason=Reason.TENANT_NOT_FOUND)
        if tenant.status == tenant_pb2.TENANT_STATUS_INACTIVE:
            raise FailedPrecondition(
                f"tenant {principal.tenant_id!r} is inactive",
                reason=Reason.TENANT_INACTIVE,
                metadata={"tenant_id": principal.tenant_id},
            )
        return tenant


def acting_tenant(principal: Principal, named: list[str]) -> tuple[Principal, bool]:
    """The principal as it acts: an operator naming another tenant in x-allsource-tenant acts on it."""
    if not named:
        return principal, False
    if len(named) > 1 or not named[0]:
        raise InvalidArgument(
            f"{TENANT_HEADER} must be given once, with a tenant id",
            reason=Reason.INVALID_TENANT_HEADER,
            violations=[(TENANT_HEADER, "exactly one non-empty value")],
        )
    target = named[0]
    if target == principal.tenant_id:
        return principal, False
    if rbac.P.PERMISSION_OPERATE not in principal.permissions:
        raise PermissionDenied(
            f"acting on another tenant ({TENANT_HEADER}) needs the PERMISSION_OPERATE permission",
            reason=Reason.CROSS_TENANT_DENIED,
            metadata={"permission": "PERMISSION_OPERATE", "principal": principal.ref},
        )
    return replace(principal, tenant_id=target, home_tenant_id=principal.tenant_id), True
