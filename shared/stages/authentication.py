"""Authentication of public calls: `authorization: Bearer <token>`, a JWT access token or an API key.

The principal found is put on the call and in a context variable for the handler. Methods that declare
no permission are left to authorization to refuse (nobody may call them, so no credential is checked);
methods callable without credentials pass without one. With `auth.enabled = false` every call acts as
an anonymous operator.
"""

from __future__ import annotations

import time

from allsource.storage.v1 import records_pb2

from shared.auth import api_keys, rbac
from shared.auth.principal import ANONYMOUS_ADMIN, Principal, principal_var
from shared.auth.state import AuthState
from shared.auth.tokens import TokenVerifier
from shared.config.settings import AuthSettings
from shared.core.errors import ResourceExhausted, Unauthenticated
from shared.core.reasons import Reason
from shared.rpc.chain import Call, MethodInfo, Stage
from shared.telemetry import tracing

_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=")
MAX_CREDENTIAL_BYTES = 4096


def declared(method: MethodInfo) -> bool:
    """Whether a public method declares what it takes (a permission, or that it needs no credential)."""
    r = method.requirement
    return r is not None and (r.permission != rbac.P.PERMISSION_UNSPECIFIED or r.allow_unauthenticated)


class Authentication(Stage):
    """Finds the caller of a public call."""

    name = "authentication"

    def __init__(self, settings: AuthSettings, state: AuthState, verifier: TokenVerifier, pepper: bytes) -> None:
        self.settings = settings
        self.state = state
        self.verifier = verifier
        self.pepper = pepper
        # API keys verified already: token -> (the record it matched, its principal, valid until ns).
        self._keys_seen: dict[str, tuple[records_pb2.ApiKeyRecord, Principal, int]] = {}

    def applies(self, method: MethodInfo) -> bool:
        if method.reflection and method.requirement is not None and method.requirement.allow_unauthenticated:
            return False  # open reflection ignores credentials: a bad one must not hide the service list
        return not method.control and declared(method)

    async def enter(self, call: Call) -> None:
        if not self.settings.enabled:
            principal = ANONYMOUS_ADMIN
        else:
            token = self._credential(call)
            if token is None:
                assert call.method.requirement is not None  # applies() checked it
                if call.method.requirement.allow_unauthenticated:
                    return
                raise Unauthenticated(
                    "this call needs credentials: authorization: Bearer <access token or API key>",
                    reason=Reason.MISSING_CREDENTIALS,
                )
            leaf = tracing.leaf_of(call.span, "authentication")
            if leaf is not None:
                try:
                    principal = await self.authenticate(token, call.peer)
                except BaseException as exc:
                    tracing.close_leaf(leaf, exc)
                    raise
                leaf.attributes["allsource.principal"] = principal.ref
                tracing.close_leaf(leaf)
            else:
                principal = await self.authenticate(token, call.peer)
        call.principal = principal
        principal_var.set(principal)

    @staticmethod
    def _credential(call: Call) -> str | None:
        values = call.metadata_values("authorization")
        if not values:
            return None
        if len(values) > 1:
            raise Unauthenticated("more than one authorization header", reason=Reason.MALFORMED_CREDENTIALS)
        value = values[0]
        if len(value) > MAX_CREDENTIAL_BYTES:
            raise Unauthenticated("authorization header too large", reason=Reason.MALFORMED_CREDENTIALS)
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token or not _TOKEN_CHARS.issuperset(token):
            raise Unauthenticated(
                "expected authorization: Bearer <access token or API key>", reason=Reason.MALFORMED_CREDENTIALS
            )
        return token

    async def authenticate(self, token: str, peer: str) -> Principal:
        """The principal a token stands for, or UNAUTHENTICATED (RESOURCE_EXHAUSTED when throttled)."""
        if token.startswith(api_keys.PREFIX):
            return await self._api_key(token, peer)
        if token.count(".") == 2:
            return await self._jwt(token)
        raise Unauthenticated("unrecognised credential", reason=Reason.MALFORMED_CREDENTIALS)

    async def _jwt(self, token: str) -> Principal:
        if not self.verifier.seen(token):  # parsing the header is the costly part: only on first sight
            await self.state.ensure_public_key(self.verifier.header_kid(token))
        claims = self.verifier.verify(token)
        if self.state.revoked(claims.jti, claims.family):
            raise Unauthenticated("the token has been revoked", reason=Reason.TOKEN_REVOKED)
        user = await self.state.user(claims.tenant_id, claims.subject)
        if user is None:
            raise Unauthenticated("the token's user no longer exists", reason=Reason.USER_NOT_FOUND)
        if user.disabled:
            raise Unauthenticated("the user is disabled", reason=Reason.USER_DISABLED)
        if claims.issued_at_ns < user.tokens_not_before_ns:
            raise Unauthenticated("the token has been revoked", reason=Reason.TOKEN_REVOKED)
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
        found = await self.state.api_key(parsed[0]) if parsed else None
        valid_until_ns = 1 << 63
        valid = found is not None and parsed is not None
        if valid and found is not None and parsed is not None:
            if not api_keys.matches(self.pepper, parsed[0], parsed[1], found.secret_hash):
                valid_until_ns = found.previous_valid_until_ns  # the old secret, during its grace period
                valid = now < valid_until_ns and api_keys.matches(
                    self.pepper, parsed[0], parsed[1], found.previous_secret_hash
                )
        if not valid or found is None:
            wait = self.state.key_failed(peer, found.key_id if found is not None else "")
            if wait > 0:
                raise ResourceExhausted(
                    "too many invalid API keys from this address or for this key; try again later",
                    reason=Reason.TOO_MANY_FAILED_ATTEMPTS,
                    retry_after=wait,
                )
            raise Unauthenticated("invalid API key", reason=Reason.INVALID_API_KEY)
        self._check_key(found, now)
        self.state.key_used(found.key_id)
        principal = _key_principal(found)
        if len(self._keys_seen) > 100_000:
            self._keys_seen.clear()
        self._keys_seen[token] = (found, principal, valid_until_ns)
        return principal

    @staticmethod
    def _check_key(record: records_pb2.ApiKeyRecord, now: int) -> None:
        if record.revoked:
            raise Unauthenticated("the API key has been revoked", reason=Reason.API_KEY_REVOKED)
        if record.expires_at_ns and now >= record.expires_at_ns:
            raise Unauthenticated("the API key has expired", reason=Reason.API_KEY_EXPIRED)


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
