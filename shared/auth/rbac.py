"""Roles, permissions, and what each RPC requires (declared in the protos, read from the descriptors)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from allsource.v1 import auth_pb2, options_pb2
from google.protobuf.descriptor import ServiceDescriptor

from shared.core.tenant_ids import DEFAULT_TENANT

P = options_pb2
ALL = frozenset(
    {
        P.PERMISSION_AUTHENTICATED,
        P.PERMISSION_READ,
        P.PERMISSION_WRITE,
        P.PERMISSION_METRICS,
        P.PERMISSION_SCHEMAS,
        P.PERMISSION_ADMIN,
        P.PERMISSION_OPERATE,
    }
)
ROLE_PERMISSIONS: dict[int, frozenset[int]] = {
    auth_pb2.ROLE_OPERATOR: ALL,
    auth_pb2.ROLE_ADMIN: ALL - {P.PERMISSION_OPERATE},
    auth_pb2.ROLE_DEVELOPER: frozenset(
        {P.PERMISSION_AUTHENTICATED, P.PERMISSION_READ, P.PERMISSION_WRITE, P.PERMISSION_METRICS, P.PERMISSION_SCHEMAS}
    ),
    auth_pb2.ROLE_READ_ONLY: frozenset({P.PERMISSION_AUTHENTICATED, P.PERMISSION_READ, P.PERMISSION_METRICS}),
    auth_pb2.ROLE_SERVICE_ACCOUNT: frozenset({P.PERMISSION_AUTHENTICATED, P.PERMISSION_READ, P.PERMISSION_WRITE}),
}


def permissions_of(role: int, explicit: Iterable[int] = (), tenant_id: str = DEFAULT_TENANT) -> frozenset[int]:
    """A credential's permissions: the explicit ones (scopes) if any, else its role's. PERMISSION_OPERATE
    exists only in the default tenant: a credential of any other tenant never holds it."""
    chosen = frozenset(explicit)
    granted = chosen | {P.PERMISSION_AUTHENTICATED} if chosen else ROLE_PERMISSIONS.get(role, frozenset())
    if tenant_id != DEFAULT_TENANT and P.PERMISSION_OPERATE in granted:
        granted = granted - {P.PERMISSION_OPERATE}
    return granted


@dataclass(frozen=True, slots=True)
class Requirement:
    """What calling one RPC takes."""

    permission: int  # PERMISSION_UNSPECIFIED: not declared, so refused
    allow_unauthenticated: bool
    audited: bool = False  # operator acts that change the suite: written to the audit log
    cost: int = 0  # allsource.v1.RateCost: what a call costs against rate limits (0: not declared)


def requirements(services: Iterable[ServiceDescriptor]) -> dict[str, Requirement]:
    """/package.Service/Method -> its declared requirement."""
    out = {}
    for service in services:
        for method in service.methods:
            # The stubs type extension keys generically; these are declared in options.proto.
            options: Any = method.GetOptions()
            out[f"/{service.full_name}/{method.name}"] = Requirement(
                permission=options.Extensions[options_pb2.required_permission],
                allow_unauthenticated=options.Extensions[options_pb2.allow_unauthenticated],
                audited=options.Extensions[options_pb2.audited],
                cost=options.Extensions[options_pb2.rate_cost],
            )
    return out
