"""Signed scopes: how the suite's services prove themselves to each other, and say for whom they act.

Every internal call carries `x-allsource-scope: v1|<service>|<tenant>|<principal>|<expiry>|<mac>`, where
the MAC is HMAC-SHA256 (first 16 bytes) under `internal.service_secret`. Only processes holding the
secret can mint one, so storage serves only the suite; the scope names the tenant and the end user the
call is for, and storage checks the tenant of every request against it. Tenant "*" is a system scope for
calls not made on a tenant's behalf (flags, the auth change feed, statistics).

Why signed scopes rather than relying on mTLS alone: they work the same with TLS, without TLS and behind
a mesh sidecar that terminates mTLS (where the service sees plaintext), and they carry the end user and
tenant per call, which a transport identity cannot. mTLS can be enabled as well (tls.require_client_cert).
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import time
from typing import NamedTuple

from shared.core.errors import PermissionDenied, Unauthenticated
from shared.core.reasons import Reason

SCOPE_KEY = "x-allsource-scope"
SYSTEM_TENANT = "*"
_SEP = "|"  # principal refs contain ":" (user:<id>, key:<id>)


class Scope(NamedTuple):
    """A verified scope."""

    service: str
    tenant_id: str
    principal: str
    expires: int


# The verified scope of the internal call being handled (set by the service-authentication stage).
scope_var: contextvars.ContextVar[Scope | None] = contextvars.ContextVar("scope", default=None)


def _mac(secret: bytes, body: str) -> str:
    return hmac.new(secret, body.encode(), hashlib.sha256).digest()[:16].hex()


class ScopeSigner:
    """Mints scopes for one service; reuses a scope until it is within a quarter of its lifetime of expiry."""

    def __init__(self, secret: bytes, service: str, ttl_s: int) -> None:
        self.secret = secret
        self.service = service
        self.ttl_s = ttl_s
        self._cache: dict[tuple[str, str], tuple[str, int]] = {}

    def mint(self, tenant_id: str, principal: str) -> str:
        """A scope for a call on behalf of `principal` in `tenant_id`."""
        now = int(time.time())
        cached = self._cache.get((tenant_id, principal))
        if cached is not None and cached[1] - now > self.ttl_s // 4:
            return cached[0]
        expires = now + self.ttl_s
        body = _SEP.join(("v1", self.service, tenant_id, principal, str(expires)))
        token = f"{body}{_SEP}{_mac(self.secret, body)}"
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[(tenant_id, principal)] = (token, expires)
        return token


# Tolerated clock difference between the suite's hosts when checking a scope's expiry.
CLOCK_SKEW_S = 30


class ScopeVerifier:
    """Checks scopes presented to this service: signed with the secret, not expired, and not valid for
    longer than the suite mints scopes for (a scope minted for ten years is refused, even if signed)."""

    def __init__(self, secret: bytes, max_ttl_s: int = 3600) -> None:
        self.secret = secret
        self.max_ttl_s = max_ttl_s
        self._cache: dict[str, Scope] = {}

    def verify(self, token: str) -> Scope:
        """The scope, or UNAUTHENTICATED (reason SERVICE_CREDENTIALS_INVALID)."""
        now = int(time.time())
        scope = self._cache.get(token)
        if scope is None:
            parts = token.split(_SEP)
            if len(parts) != 6 or parts[0] != "v1" or not parts[4].isdigit():
                raise Unauthenticated(
                    "internal call without a valid service scope", reason=Reason.SERVICE_CREDENTIALS_INVALID
                )
            body = token[: token.rfind(_SEP)]
            if not hmac.compare_digest(_mac(self.secret, body), parts[5]):
                raise Unauthenticated(
                    "internal call without a valid service scope", reason=Reason.SERVICE_CREDENTIALS_INVALID
                )
            scope = Scope(parts[1], parts[2], parts[3], int(parts[4]))
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[token] = scope
        if scope.expires < now:
            raise Unauthenticated("the service scope has expired", reason=Reason.SERVICE_CREDENTIALS_EXPIRED)
        if scope.expires > now + self.max_ttl_s + CLOCK_SKEW_S:
            raise Unauthenticated(
                "the service scope is valid for longer than the suite mints scopes for",
                reason=Reason.SERVICE_CREDENTIALS_INVALID,
            )
        return scope


def require_tenant(scope: Scope, tenant_id: str, *, what: str = "request") -> None:
    """Refuse a request for another tenant than the scope's (system scopes excepted)."""
    if scope.tenant_id != SYSTEM_TENANT and scope.tenant_id != tenant_id:
        raise PermissionDenied(
            f"the {what} is for tenant {tenant_id!r} but the call acts for tenant {scope.tenant_id!r}",
            reason=Reason.TENANT_SCOPE_MISMATCH,
        )
