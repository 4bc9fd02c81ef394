"""Authentication of internal calls: a scope signed by one of the suite's services (shared.auth.scopes).

StorageService takes only such calls; ControlService, on every process, only from the admin service.
"""

from __future__ import annotations

from shared.auth.scopes import SCOPE_KEY, ScopeVerifier, scope_var
from shared.core.errors import PermissionDenied, Unauthenticated
from shared.core.reasons import Reason
from shared.rpc.chain import Call, MethodInfo, Stage


class ServiceAuthentication(Stage):
    """Admits calls carrying a valid scope and puts the scope in a context variable."""

    name = "service-authentication"

    def __init__(self, verifier: ScopeVerifier, *, reflection_open: bool = False, control_only: bool = False) -> None:
        self.verifier = verifier
        self.reflection_open = reflection_open
        self.control_only = control_only  # on a public service only ControlService is internal

    def applies(self, method: MethodInfo) -> bool:
        if self.control_only:
            return method.control
        return not (self.reflection_open and method.reflection)

    def enter(self, call: Call) -> None:
        values = call.metadata_values(SCOPE_KEY)
        if len(values) != 1:
            raise Unauthenticated(
                "internal calls need exactly one service scope", reason=Reason.SERVICE_CREDENTIALS_MISSING
            )
        scope = self.verifier.verify(values[0])
        if call.method.control and scope.service != "admin":
            raise PermissionDenied(
                "only the admin service may control other services", reason=Reason.SERVICE_NOT_ALLOWED
            )
        scope_var.set(scope)
