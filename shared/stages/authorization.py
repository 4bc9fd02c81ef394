"""Authorization: the caller must hold the permission the RPC declares in the protos.

An RPC that declares nothing is refused (PERMISSION_NOT_DECLARED): a new RPC cannot ship open by
omission.
"""

from __future__ import annotations

from shared.auth import rbac
from shared.core.errors import PermissionDenied
from shared.core.reasons import Reason
from shared.rpc.chain import Call, MethodInfo, Stage
from shared.stages.authentication import declared


class Authorization(Stage):
    """Checks the declared permission against the principal's."""

    name = "authorization"

    def applies(self, method: MethodInfo) -> bool:
        return not method.control

    def enter(self, call: Call) -> None:
        requirement = call.method.requirement
        if requirement is None or not declared(call.method):
            raise PermissionDenied(f"{call.method.path} declares no permission", reason=Reason.PERMISSION_NOT_DECLARED)
        if requirement.allow_unauthenticated:
            return
        principal = call.principal
        if principal is None or requirement.permission not in principal.permissions:
            name = rbac.P.Permission.Name(requirement.permission)
            raise PermissionDenied(
                f"{call.method.path} needs the {name} permission",
                reason=Reason.PERMISSION_DENIED,
                metadata={"permission": name, "principal": principal.ref if principal else "anonymous"},
            )
