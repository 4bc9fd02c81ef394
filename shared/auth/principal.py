"""The authenticated caller of the current RPC, carried in a context variable (never a global)."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field

from allsource.v1 import auth_pb2, options_pb2

from shared.core.tenant_ids import DEFAULT_TENANT

P = options_pb2  # Permission values: P.PERMISSION_READ, ...


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user (JWT), an API key, or anonymous (authentication turned off)."""

    kind: str  # user | api_key | anonymous
    subject: str  # user id or key id
    name: str
    tenant_id: str
    role: int
    permissions: frozenset[int]
    expires_at_ns: int = 0
    jti: str = ""
    family: str = ""
    stream_id_prefix: str = ""
    event_types: frozenset[str] = field(default_factory=frozenset)
    # Set when an operator acts on another tenant (x-allsource-tenant): the operator's own tenant, while
    # tenant_id is the one acted on.
    home_tenant_id: str = ""
    # When the credential was made (API key creation, token issue): a tenant deleted and created again
    # under the same id does not honour credentials older than itself.
    issued_at_ns: int = 0

    @property
    def ref(self) -> str:
        """How scopes and audit records name this caller: user:<id>, key:<id> or anonymous."""
        return "anonymous" if self.kind == "anonymous" else f"{'user' if self.kind == 'user' else 'key'}:{self.subject}"

    def allows_stream(self, stream_id: str) -> bool:
        """Whether a scoped credential may touch this stream."""
        return not self.stream_id_prefix or stream_id.startswith(self.stream_id_prefix)

    def allows_prefix(self, prefix: str) -> bool:
        """Whether every stream with this prefix is within the credential's scope."""
        return not self.stream_id_prefix or prefix.startswith(self.stream_id_prefix)

    def allows_type(self, event_type: str) -> bool:
        """Whether a scoped credential may append or read this event type."""
        return not self.event_types or event_type in self.event_types


ANONYMOUS_ADMIN = Principal(
    kind="anonymous",
    subject="anonymous",
    name="anonymous",
    tenant_id=DEFAULT_TENANT,
    role=auth_pb2.ROLE_OPERATOR,
    permissions=frozenset(
        {
            P.PERMISSION_AUTHENTICATED,
            P.PERMISSION_READ,
            P.PERMISSION_WRITE,
            P.PERMISSION_METRICS,
            P.PERMISSION_SCHEMAS,
            P.PERMISSION_ADMIN,
            P.PERMISSION_OPERATE,
        }
    ),
)

principal_var: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("principal", default=None)


def current() -> Principal | None:
    """The caller of the RPC being handled (None outside an authenticated call)."""
    return principal_var.get()
