"""The authentication and authorization stage of the call chain.

Public services (ingest, query, admin): every RPC declares its permission in the protos; the caller's
`authorization: Bearer <token>` (a JWT access token or an API key) is authenticated, its permissions
checked against the declaration, and the principal put in a context variable for the handler
(undeclared RPCs are refused). Health stays open; reflection is open or authenticated by setting.

Internal calls (StorageService, and ControlService on every process) need a signed scope from one of the
suite's services instead (shared.auth.scopes); ControlService only from the admin service.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import grpc
from allsource.control.v1 import control_pb2
from allsource.storage.v1 import records_pb2
from allsource.v1 import tenant_pb2
from google.protobuf.descriptor import ServiceDescriptor

from shared.audit import AuditEntry, AuditLog
from shared.auth import api_keys, rbac
from shared.auth.principal import ANONYMOUS_ADMIN, Principal, principal_var
from shared.auth.rbac import Requirement
from shared.auth.scopes import SCOPE_KEY, Scope, ScopeVerifier
from shared.auth.state import AuthState
from shared.auth.tokens import TokenVerifier
from shared.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from shared.interceptors import call_peer, metadata_values
from shared.logs import request_id_var, tenant_var
from shared.settings import AuthSettings
from shared.tenancy import DEFAULT_TENANT

log = logging.getLogger(__name__)

CONTROL_PREFIX = f"/{control_pb2.DESCRIPTOR.package}."
REFLECTION_PREFIX = "/grpc.reflection."
scope_var: contextvars.ContextVar[Scope | None] = contextvars.ContextVar("scope", default=None)
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=")
MAX_CREDENTIAL_BYTES = 4096
TENANT_HEADER = "x-allsource-tenant"


class ServiceGuard:
    """Admits internal calls carrying a valid scope; ControlService calls only from the admin service."""

    def __init__(self, verifier: ScopeVerifier, *, reflection_open: bool = False) -> None:
        self.verifier = verifier
        self.reflection_open = reflection_open

    async def admit(self, method: str, context: grpc.aio.ServicerContext, request: Any = None) -> None:
        if self.reflection_open and method.startswith(REFLECTION_PREFIX):
            return
        values = metadata_values(context, SCOPE_KEY)
        if len(values) != 1:
            raise Unauthenticated("internal calls need exactly one service scope", reason="SERVICE_CREDENTIALS_MISSING")
        scope = self.verifier.verify(values[0])
        if method.startswith(CONTROL_PREFIX) and scope.service != "admin":
            raise PermissionDenied("only the admin service may control other services", reason="SERVICE_NOT_ALLOWED")
        scope_var.set(scope)


class PublicGuard:
    """Authenticates and authorizes calls to a public service."""

    def __init__(
        self,
        settings: AuthSettings,
        services: Iterable[ServiceDescriptor],
        state: AuthState | None,
        verifier: TokenVerifier | None,
        pepper: bytes,
        internal: ServiceGuard,
        audit: AuditLog | None = None,
    ) -> None:
        self.settings = settings
        self.requirements = rbac.requirements(services)
        self.state = state
        self.verifier = verifier
        self.pepper = pepper
        self.internal = internal
        self.audit = audit
        # API keys verified already: token -> (the record it matched, its principal, valid until ns).
        self._keys_seen: dict[str, tuple[records_pb2.ApiKeyRecord, Principal, int]] = {}

    async def admit(self, method: str, context: grpc.aio.ServicerContext, request: Any = None) -> AuditEntry | None:
        if method.startswith(CONTROL_PREFIX):
            await self.internal.admit(method, context)
            return None
        requirement = self.requirements.get(method)
        if requirement is None and method.startswith(REFLECTION_PREFIX):
            requirement = Requirement(
                permission=rbac.P.PERMISSION_AUTHENTICATED, allow_unauthenticated=self.settings.reflection == "open"
            )
        if requirement is None or (
            requirement.permission == rbac.P.PERMISSION_UNSPECIFIED and not requirement.allow_unauthenticated
        ):
            raise PermissionDenied(f"{method} declares no permission", reason="PERMISSION_NOT_DECLARED")
        if not self.settings.enabled:
            principal = ANONYMOUS_ADMIN
        else:
            token = self._credential(context)
            if token is None:
                if requirement.allow_unauthenticated:
                    return None
                raise Unauthenticated(
                    "this call needs credentials: authorization: Bearer <access token or API key>",
                    reason="MISSING_CREDENTIALS",
                )
            principal = await self.authenticate(token, call_peer(context))
        principal, switched = self._acting_tenant(principal, context)
        principal_var.set(principal)
        tenant_var.set(principal.tenant_id)
        await self._check_tenant(principal, switched)
        if not (requirement.allow_unauthenticated or requirement.permission in principal.permissions):
            raise PermissionDenied(
                f"{method} needs the {rbac.P.Permission.Name(requirement.permission)} permission",
                reason="PERMISSION_DENIED",
                metadata={"permission": rbac.P.Permission.Name(requirement.permission), "principal": principal.ref},
            )
        if self.audit is not None and (switched or requirement.audited):
            # The tenant a lifecycle request names is the one acted on, whatever the header says.
            acted_on = _named_tenant(request) or (principal.tenant_id if switched else "")
            return await self.audit.begin(
                principal, method, acted_on, request_id=request_id_var.get(), peer=call_peer(context)
            )
        return None

    @staticmethod
    def _acting_tenant(principal: Principal, context: grpc.aio.ServicerContext) -> tuple[Principal, bool]:
        """The principal as it acts: an operator naming another tenant in x-allsource-tenant acts on it."""
        named = metadata_values(context, TENANT_HEADER)
        if not named:
            return principal, False
        if len(named) > 1 or not named[0]:
            raise InvalidArgument(
                f"{TENANT_HEADER} must be given once, with a tenant id",
                reason="INVALID_TENANT_HEADER",
                violations=[(TENANT_HEADER, "exactly one non-empty value")],
            )
        target = named[0]
        if target == principal.tenant_id:
            return principal, False
        if rbac.P.PERMISSION_OPERATE not in principal.permissions:
            raise PermissionDenied(
                f"acting on another tenant ({TENANT_HEADER}) needs the PERMISSION_OPERATE permission",
                reason="CROSS_TENANT_DENIED",
                metadata={"permission": "PERMISSION_OPERATE", "principal": principal.ref},
            )
        return replace(principal, tenant_id=target, home_tenant_id=principal.tenant_id), True

    async def _check_tenant(self, principal: Principal, switched: bool) -> None:
        """The tenant acted on must exist and be active."""
        if self.state is None:
            return
        tenant = await self.state.tenant(principal.tenant_id)
        if tenant is None:
            if switched:
                raise NotFound(
                    f"tenant {principal.tenant_id!r} does not exist",
                    reason="TENANT_NOT_FOUND",
                    metadata={"tenant_id": principal.tenant_id},
                )
            raise Unauthenticated("the credential's tenant no longer exists", reason="TENANT_NOT_FOUND")
        if (
            not switched
            and principal.tenant_id != DEFAULT_TENANT  # never deleted; it may predate its own record
            and tenant.HasField("created_at")
            and 0 < principal.issued_at_ns < tenant.created_at.ToNanoseconds()
        ):
            # A credential of an earlier tenant of this id (deleted, then created again) that outlived it.
            raise Unauthenticated("the credential's tenant no longer exists", reason="TENANT_NOT_FOUND")
        if tenant.status == tenant_pb2.TENANT_STATUS_INACTIVE:
            raise FailedPrecondition(
                f"tenant {principal.tenant_id!r} is inactive",
                reason="TENANT_INACTIVE",
                metadata={"tenant_id": principal.tenant_id},
            )

    @staticmethod
    def _credential(context: grpc.aio.ServicerContext) -> str | None:
        values = metadata_values(context, "authorization")
        if not values:
            return None
        if len(values) > 1:
            raise Unauthenticated("more than one authorization header", reason="MALFORMED_CREDENTIALS")
        value = values[0]
        if len(value) > MAX_CREDENTIAL_BYTES:
            raise Unauthenticated("authorization header too large", reason="MALFORMED_CREDENTIALS")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token or not _TOKEN_CHARS.issuperset(token):
            raise Unauthenticated(
                "expected authorization: Bearer <access token or API key>", reason="MALFORMED_CREDENTIALS"
            )
        return token

    async def authenticate(self, token: str, peer: str) -> Principal:
        """The principal a token stands for, or UNAUTHENTICATED (RESOURCE_EXHAUSTED when throttled)."""
        if self.state is None or self.verifier is None:
            raise Unauthenticated("authentication is not available", reason="AUTH_UNAVAILABLE")
        if token.startswith(api_keys.PREFIX):
            return await self._api_key(token, peer)
        if token.count(".") == 2:
            return await self._jwt(token)
        raise Unauthenticated("unrecognised credential", reason="MALFORMED_CREDENTIALS")

    async def _jwt(self, token: str) -> Principal:
        assert self.state is not None and self.verifier is not None
        if not self.verifier.seen(token):  # parsing the header is the costly part: only on first sight
            await self.state.ensure_public_key(self.verifier.header_kid(token))
        claims = self.verifier.verify(token)
        if self.state.revoked(claims.jti, claims.family):
            raise Unauthenticated("the token has been revoked", reason="TOKEN_REVOKED")
        user = await self.state.user(claims.tenant_id, claims.subject)
        if user is None:
            raise Unauthenticated("the token's user no longer exists", reason="USER_NOT_FOUND")
        if user.disabled:
            raise Unauthenticated("the user is disabled", reason="USER_DISABLED")
        if claims.issued_at_ns < user.tokens_not_before_ns:
            raise Unauthenticated("the token has been revoked", reason="TOKEN_REVOKED")
        return Principal(
            kind="user",
            subject=user.user_id,
            name=user.username,
            tenant_id=user.tenant_id,
            role=user.role,
            permissions=rbac.permissions_of(user.role, (), user.tenant_id),
            expires_at_ns=claims.expires_at * 1_000_000_000,
            jti=claims.jti,
            family=claims.family,
            issued_at_ns=claims.issued_at_ns,
        )

    async def _api_key(self, token: str, peer: str) -> Principal:
        assert self.state is not None
        wait = self.state.key_failures_exceeded(peer)
        if wait > 0:
            raise ResourceExhausted(
                "too many invalid API keys from this address; try again later",
                reason="TOO_MANY_FAILED_ATTEMPTS",
                retry_after=wait,
            )
        now = time.time_ns()
        seen = self._keys_seen.get(token)
        if seen is not None:
            # Verified before against this very record object (the change feed replaces it when the key
            # is revoked or rotated), so only the time limits need checking again.
            record, principal, valid_until_ns = seen
            unchanged = self.state.cached_api_key(principal.subject) is record
            if unchanged and now < valid_until_ns:
                self._check_key(record, now)
                self.state.key_used(record.key_id)
                return principal
            del self._keys_seen[token]
        parsed = api_keys.parse(token)
        record = await self.state.api_key(parsed[0]) if parsed else None
        valid_until_ns = 1 << 63
        valid = record is not None and parsed is not None
        if valid and record is not None and parsed is not None:
            if not api_keys.matches(self.pepper, parsed[0], parsed[1], record.secret_hash):
                valid_until_ns = record.previous_valid_until_ns  # the old secret, during its grace period
                valid = now < valid_until_ns and api_keys.matches(
                    self.pepper, parsed[0], parsed[1], record.previous_secret_hash
                )
        if not valid or record is None:
            self.state.key_failed(peer)
            raise Unauthenticated("invalid API key", reason="INVALID_API_KEY")
        self._check_key(record, now)
        self.state.key_used(record.key_id)
        principal = self._key_principal(record)
        if len(self._keys_seen) > 100_000:
            self._keys_seen.clear()
        self._keys_seen[token] = (record, principal, valid_until_ns)
        return principal

    @staticmethod
    def _check_key(record: records_pb2.ApiKeyRecord, now: int) -> None:
        if record.revoked:
            raise Unauthenticated("the API key has been revoked", reason="API_KEY_REVOKED")
        if record.expires_at_ns and now >= record.expires_at_ns:
            raise Unauthenticated("the API key has expired", reason="API_KEY_EXPIRED")

    @staticmethod
    def _key_principal(record: records_pb2.ApiKeyRecord) -> Principal:
        return Principal(
            kind="api_key",
            subject=record.key_id,
            name=record.name,
            tenant_id=record.tenant_id,
            role=record.role,
            permissions=rbac.permissions_of(record.role, record.permissions, record.tenant_id),
            expires_at_ns=record.expires_at_ns,
            stream_id_prefix=record.stream_id_prefix,
            event_types=frozenset(record.event_types),
            issued_at_ns=record.created_at_ns,
        )


def _named_tenant(request: object) -> str:
    """The tenant an audited request names: its tenant_id, or the tenant_id of the tenant it carries
    (UpdateTenant); "" when it names none."""
    named = getattr(request, "tenant_id", "")
    if not named:
        named = getattr(getattr(request, "tenant", None), "tenant_id", "")
    return str(named or "")
