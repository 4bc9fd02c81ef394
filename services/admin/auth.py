"""AuthService: logins, token rotation and revocation, users, API keys, signing keys, bootstrap.

State lives in storage as control-plane records (shared.auth.state names the namespaces). Every change
that must reach the other services (a revocation, a changed user or key, a new signing key) is also
appended to the auth change feed, which every process reads every half second.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import re
import time
import uuid
from collections import defaultdict, deque
from pathlib import Path
from typing import cast

import grpc
from allsource.storage.v1 import records_pb2
from allsource.v1 import auth_pb2, auth_pb2_grpc, options_pb2, tenant_pb2
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shared.auth import api_keys, rbac
from shared.auth.passwords import Passwords
from shared.auth.principal import Principal, current
from shared.auth.state import (
    NS_API_KEYS,
    NS_AUTH_META,
    NS_CHANGES,
    NS_KEY_USAGE,
    NS_PUBLIC_KEYS,
    NS_REFRESH,
    NS_SIGNING_KEYS,
    NS_TENANT_KEYS,
    NS_USERNAMES,
    NS_USERS,
    AuthState,
    RecordStore,
)
from shared.auth.tokens import ACCESS, REFRESH, SigningKey, TokenIssuer, TokenVerifier
from shared.config.settings import AuthSettings, LimitsSettings
from shared.core import pagination
from shared.core.errors import (
    AllSourceError,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from shared.core.reasons import Reason
from shared.core.tenant_ids import DEFAULT_TENANT
from shared.core.text import CONTROL, duration_problem
from shared.core.timestamps import optional_timestamp
from shared.limits.governor import current_limit
from shared.limits.plans import exceeded

log = logging.getLogger(__name__)
audit = logging.getLogger("allsource.audit")

K = records_pb2.AuthChangeKind
USERNAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
BOOTSTRAP_KEY_FILE = "bootstrap-admin.key"


def user_view(u: records_pb2.UserRecord) -> auth_pb2.User:
    return auth_pb2.User(
        user_id=u.user_id,
        username=u.username,
        tenant_id=u.tenant_id,
        role=u.role,
        disabled=u.disabled,
        created_at=optional_timestamp(u.created_at_ns),
        password_changed_at=optional_timestamp(u.password_changed_at_ns),
    )


def key_view(k: records_pb2.ApiKeyRecord, last_used_ns: int = 0) -> auth_pb2.ApiKey:
    return auth_pb2.ApiKey(
        key_id=k.key_id,
        name=k.name,
        tenant_id=k.tenant_id,
        role=k.role,
        permissions=k.permissions,
        stream_id_prefix=k.stream_id_prefix,
        event_types=k.event_types,
        expires_at=optional_timestamp(k.expires_at_ns),
        created_at=optional_timestamp(k.created_at_ns),
        created_by=k.created_by,
        last_used_at=optional_timestamp(last_used_ns),
        revoked=k.revoked,
        previous_secret_valid_until=optional_timestamp(k.previous_valid_until_ns),
    )


class Keyring:
    """The token-signing keys.

    Private keys live in a namespace only the admin service may read, and are sealed there (Fernet, with
    a key derived from internal.service_secret): a copy of the database files alone cannot mint tokens.
    """

    def __init__(self, records: RecordStore, sealing_secret: bytes) -> None:
        self.records = records
        self.current: SigningKey | None = None
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"allsource signing keys").derive(
            sealing_secret
        )
        self._seal = Fernet(base64.urlsafe_b64encode(derived))

    async def load(self) -> None:
        """Load the current key, creating the first one if there is none."""
        found = await self.records.get("", NS_AUTH_META, "current_kid")
        if found is None:
            await self._install(SigningKey.generate(), expected_revision=0)
            found = await self.records.get("", NS_AUTH_META, "current_kid")
            assert found is not None
        kid = found[0].decode()
        record = await self.records.get("", NS_SIGNING_KEYS, kid)
        if record is None:
            raise FailedPrecondition(f"signing key {kid} is missing from storage", reason=Reason.SIGNING_KEY_MISSING)
        sealed = records_pb2.SigningKeyRecord.FromString(record[0]).private_pem
        try:
            pem = self._seal.decrypt(sealed)
        except InvalidToken:
            raise FailedPrecondition(
                "the signing key cannot be unsealed: internal.service_secret differs from the one it was sealed with",
                reason=Reason.SIGNING_KEY_SEALED,
            ) from None
        self.current = SigningKey.from_pem(kid, pem)

    async def rotate(self) -> SigningKey:
        """Sign with a new key from now on; earlier keys keep verifying their tokens."""
        key = SigningKey.generate()
        await self._install(key, expected_revision=None)
        self.current = key
        return key

    async def _install(self, key: SigningKey, expected_revision: int | None) -> None:
        now = time.time_ns()
        public = records_pb2.SigningKeyRecord(
            kid=key.kid, algorithm="EdDSA", public_pem=key.public_pem(), created_at_ns=now
        )
        private = records_pb2.SigningKeyRecord()
        private.CopyFrom(public)
        private.private_pem = self._seal.encrypt(key.private_pem())
        await self.records.put("", NS_SIGNING_KEYS, key.kid, private.SerializeToString())
        await self.records.put("", NS_PUBLIC_KEYS, key.kid, public.SerializeToString())
        try:
            await self.records.put(
                "", NS_AUTH_META, "current_kid", key.kid.encode(), expected_revision=expected_revision
            )
        except AllSourceError as exc:
            if exc.reason != Reason.RECORD_REVISION_MISMATCH:
                raise
            # another admin replica installed the first key at the same moment: use theirs


class ChangeFeed:
    """Appends to the auth change feed (a sequence allocated with compare-and-set)."""

    def __init__(self, records: RecordStore, state: AuthState) -> None:
        self.records = records
        self.state = state

    async def publish(self, kind: int, subject: str, *, tenant_id: str = "", until_ns: int = 0) -> None:
        change = records_pb2.AuthChange(
            kind=cast(records_pb2.AuthChangeKind, kind),
            tenant_id=tenant_id,
            subject=subject,
            until_ns=until_ns,
            at_ns=time.time_ns(),
        )
        for _ in range(50):
            found = await self.records.get("", NS_AUTH_META, "feed_seq")
            seq, revision = (int(found[0]), found[1]) if found else (0, 0)
            try:
                await self.records.put("", NS_AUTH_META, "feed_seq", str(seq + 1).encode(), expected_revision=revision)
            except AllSourceError as exc:
                if exc.reason == Reason.RECORD_REVISION_MISMATCH:
                    continue
                raise
            await self.records.put("", NS_CHANGES, f"{seq + 1:020d}", change.SerializeToString())
            await self.state.poll()  # this process applies it at once
            return
        raise ResourceExhausted(
            "the auth change feed is contended; retry", reason=Reason.FEED_CONTENDED, retry_after=0.1
        )


# The tenant's key index says what counting active keys needs, so that a count reads pages of the index
# and not every key ever made: "k" and the expiry (8 bytes, 0: never), or REVOKED_ENTRY.
REVOKED_ENTRY = b"r"


def _index_entry(record: records_pb2.ApiKeyRecord) -> bytes:
    return REVOKED_ENTRY if record.revoked else b"k" + record.expires_at_ns.to_bytes(8, "big")


# Longest tenant id or username a login may name (real ones are shorter: usernames have at most 64).
MAX_LOGIN_NAME_CHARS = 256


class LoginThrottle:
    """Failed logins per (user, source address) within a window, in memory, per admin process.

    Only that pair is held back: the address guessing a user's password gets `login_max_failures` tries a
    window, while the user (from anywhere else) and everyone else at that address log in as usual. A
    throttle per user alone, or per address alone, would let anyone lock a user out, or everyone behind
    one address (a NAT, a mesh's sidecar) out, with a few wrong passwords: a defence turned into a denial
    of service. At most MAX_TRACKED pairs are remembered (the oldest forgotten first).
    """

    MAX_TRACKED = 100_000

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def _window(self, key: tuple[str, str]) -> deque[float] | None:
        window = self._failures.get(key)
        if window is None:
            return None
        now = time.monotonic()
        while window and now - window[0] > self.settings.login_window_s:
            window.popleft()
        if not window:
            del self._failures[key]
            return None
        return window

    def wait(self, username_key: str, address: str) -> float:
        """Seconds until a login for this user from this address may be tried (0: now)."""
        window = self._window((username_key, address))
        if window is None or len(window) < self.settings.login_max_failures:
            return 0.0
        return max(0.0, self.settings.login_window_s - (time.monotonic() - window[0]))

    def failed(self, username_key: str, address: str) -> None:
        key = (username_key, address)
        window = self._failures.get(key)
        if window is None:
            if len(self._failures) >= self.MAX_TRACKED:
                self._prune()
            window = self._failures[key] = deque()
        window.append(time.monotonic())
        while len(window) > self.settings.login_max_failures:
            window.popleft()

    def _prune(self) -> None:
        for key in list(self._failures):
            self._window(key)
        for key in list(self._failures)[: max(0, len(self._failures) - self.MAX_TRACKED // 2)]:
            del self._failures[key]

    def succeeded(self, username_key: str, address: str) -> None:
        self._failures.pop((username_key, address), None)


def _address(context: grpc.aio.ServicerContext) -> str:
    peer = context.peer() or ""
    return peer.rsplit(":", 1)[0] if peer.count(":") >= 2 else peer


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    """The public AuthService."""

    def __init__(
        self,
        settings: AuthSettings,
        records: RecordStore,
        state: AuthState,
        verifier: TokenVerifier,
        sealing_secret: bytes,
        limits: LimitsSettings | None = None,
    ) -> None:
        self.settings = settings
        self.limits = limits or LimitsSettings()
        self.records = records
        self.state = state
        self.verifier = verifier
        self.keyring = Keyring(records, sealing_secret)
        self.feed = ChangeFeed(records, state)
        self.issuer = TokenIssuer(settings)
        self.passwords = Passwords(settings)
        self.throttle = LoginThrottle(settings)
        # Per tenant: creations of keys and users, one at a time (their count quotas hold under concurrency).
        self._creating: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    def configure(self, settings: AuthSettings) -> None:
        """Take reloaded settings (token lifetimes, password policy, throttling)."""
        self.settings = settings
        self.issuer.settings = settings
        self.throttle.settings = settings
        self.passwords.configure(settings)

    # -- records ------------------------------------------------------------------------------------

    async def _user(self, tenant_id: str, user_id: str) -> records_pb2.UserRecord:
        found = await self.records.get(tenant_id, NS_USERS, user_id) if user_id else None
        if found is None:
            raise NotFound(f"user {user_id!r} not found", reason=Reason.USER_NOT_FOUND, metadata={"user_id": user_id})
        return records_pb2.UserRecord.FromString(found[0])

    async def _user_by_name(self, tenant_id: str, username: str) -> records_pb2.UserRecord | None:
        if not USERNAME.fullmatch(username):
            return None
        found = await self.records.get(tenant_id, NS_USERNAMES, username)
        if found is None:
            return None
        try:
            return await self._user(tenant_id, found[0].decode())
        except NotFound:
            return None

    async def _save_user(self, user: records_pb2.UserRecord, *, changed: bool = True) -> None:
        await self.records.put(user.tenant_id, NS_USERS, user.user_id, user.SerializeToString())
        if changed:
            await self.feed.publish(K.AUTH_CHANGE_KIND_USER_CHANGED, user.user_id, tenant_id=user.tenant_id)

    async def _key(self, tenant_id: str, key_id: str) -> records_pb2.ApiKeyRecord:
        found = await self.records.get("", NS_API_KEYS, key_id) if key_id else None
        record = records_pb2.ApiKeyRecord.FromString(found[0]) if found else None
        if record is None or record.tenant_id != tenant_id:  # another tenant's key answers as absent
            raise NotFound(
                f"API key {key_id!r} not found", reason=Reason.API_KEY_NOT_FOUND, metadata={"key_id": key_id}
            )
        return record

    def _caller(self) -> Principal:
        principal = current()
        if principal is None:
            raise Unauthenticated("this call needs credentials", reason=Reason.MISSING_CREDENTIALS)
        return principal

    @staticmethod
    def _within_reach(
        caller: Principal, permissions: frozenset[int], stream_id_prefix: str, event_types: frozenset[str], what: str
    ) -> None:
        """Refuse making or taking over a credential that could do more than its caller.

        Creating a user or key, giving a user a role, resetting a password and rotating a key all hand
        someone the target's powers, so the caller must hold every permission and all the scope it has.
        """
        if not permissions <= caller.permissions:
            raise PermissionDenied(
                f"{what} would grant permissions its caller lacks", reason=Reason.PERMISSION_ESCALATION
            )
        if rbac.P.PERMISSION_OPERATE in permissions and caller.tenant_id != DEFAULT_TENANT:
            raise PermissionDenied(
                f"{what} would grant PERMISSION_OPERATE outside the default tenant", reason=Reason.OPERATOR_TENANT_ONLY
            )
        if caller.stream_id_prefix and not stream_id_prefix.startswith(caller.stream_id_prefix):
            raise PermissionDenied(
                f"{what} would reach streams beyond {caller.stream_id_prefix!r}*", reason=Reason.SCOPE_RESTRICTED
            )
        if caller.event_types and not (event_types and event_types <= caller.event_types):
            raise PermissionDenied(
                f"{what} would reach event types beyond the caller's", reason=Reason.SCOPE_RESTRICTED
            )

    async def _tenant_active(self, tenant_id: str) -> None:
        """Refuse sessions for a deactivated tenant (checked only once the credentials are proven, so that
        nobody learns a tenant's status without them)."""
        tenant = await self.state.tenant(tenant_id)
        if tenant is None:
            raise Unauthenticated("invalid username or password", reason=Reason.INVALID_CREDENTIALS)
        if tenant.status == tenant_pb2.TENANT_STATUS_INACTIVE:
            raise FailedPrecondition(
                f"tenant {tenant_id!r} is inactive", reason=Reason.TENANT_INACTIVE, metadata={"tenant_id": tenant_id}
            )

    def _password_problem(self, field: str, password: str) -> None:
        problem = self.passwords.problem(password)
        if problem:
            raise InvalidArgument(f"{field} {problem}", reason=Reason.WEAK_PASSWORD, violations=[(field, problem)])

    # -- tokens -------------------------------------------------------------------------------------

    async def _issue(self, user: records_pb2.UserRecord, family: str) -> auth_pb2.TokenPair:
        key = self.keyring.current
        assert key is not None
        access, access_claims = self.issuer.issue(
            key, subject=user.user_id, tenant_id=user.tenant_id, role=user.role, token_type=ACCESS, family=family
        )
        refresh, refresh_claims = self.issuer.issue(
            key, subject=user.user_id, tenant_id=user.tenant_id, role=user.role, token_type=REFRESH, family=family
        )
        record = records_pb2.RefreshTokenRecord(
            jti=refresh_claims.jti,
            family=family,
            user_id=user.user_id,
            tenant_id=user.tenant_id,
            expires_at_ns=refresh_claims.expires_at * 1_000_000_000,
        )
        await self.records.put(
            user.tenant_id, NS_REFRESH, refresh_claims.jti, record.SerializeToString(), expected_revision=0
        )
        return auth_pb2.TokenPair(
            access_token=access,
            access_token_expires_at=optional_timestamp(access_claims.expires_at * 1_000_000_000),
            refresh_token=refresh,
            refresh_token_expires_at=optional_timestamp(refresh_claims.expires_at * 1_000_000_000),
        )

    async def _revoke_family(self, family: str, tenant_id: str, why: str) -> None:
        until = time.time_ns() + self.settings.refresh_token_ttl_s * 1_000_000_000
        await self.feed.publish(K.AUTH_CHANGE_KIND_FAMILY_REVOKED, family, tenant_id=tenant_id, until_ns=until)
        audit.info("token family revoked", extra={"family": family, "tenant": tenant_id, "why": why})

    async def Login(self, request: auth_pb2.LoginRequest, context: grpc.aio.ServicerContext) -> auth_pb2.LoginResponse:
        tenant = request.tenant_id or DEFAULT_TENANT
        if len(tenant) > MAX_LOGIN_NAME_CHARS or len(request.username) > MAX_LOGIN_NAME_CHARS:
            # No tenant or user has such a name: refused before it is remembered, logged or looked up.
            raise Unauthenticated("invalid username or password", reason=Reason.INVALID_CREDENTIALS)
        who = f"{tenant}/{request.username}"
        address = _address(context)
        wait = self.throttle.wait(who, address)
        if wait > 0:
            raise ResourceExhausted(
                "too many failed logins; try again later", reason=Reason.LOGIN_THROTTLED, retry_after=wait
            )
        user = await self._user_by_name(tenant, request.username)
        # The password is checked even for an unknown user (against a dummy hash of the same cost):
        # an unknown user and a wrong password look the same, in answer and in time.
        ok = await self.passwords.verify(user.password_hash if user else None, request.password[:1024], tenant)
        if not ok or user is None:
            self.throttle.failed(who, address)
            audit.info(
                "login failed", extra={"tenant": tenant[:64], "username": request.username[:64], "address": address}
            )
            raise Unauthenticated("invalid username or password", reason=Reason.INVALID_CREDENTIALS)
        if user.disabled:
            raise Unauthenticated("the user is disabled", reason=Reason.USER_DISABLED)
        await self._tenant_active(tenant)
        self.throttle.succeeded(who, address)
        tokens = await self._issue(user, family=uuid.uuid4().hex)
        audit.info("login", extra={"tenant": tenant, "user_id": user.user_id, "address": address})
        return auth_pb2.LoginResponse(tokens=tokens)

    async def RefreshToken(
        self, request: auth_pb2.RefreshTokenRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.RefreshTokenResponse:
        token = request.refresh_token
        await self.state.ensure_public_key(self.verifier.header_kid(token))
        claims = self.verifier.verify(token, token_type=REFRESH)
        if self.state.revoked(claims.jti, claims.family):
            raise Unauthenticated("the refresh token has been revoked", reason=Reason.TOKEN_REVOKED)
        found = await self.records.get(claims.tenant_id, NS_REFRESH, claims.jti)
        if found is None:
            raise Unauthenticated("unknown refresh token", reason=Reason.INVALID_TOKEN)
        record = records_pb2.RefreshTokenRecord.FromString(found[0])
        if record.used:
            await self._revoke_family(claims.family, claims.tenant_id, "refresh token reused")
            raise Unauthenticated(
                "this refresh token was already used; its whole family is now revoked",
                reason=Reason.REFRESH_TOKEN_REUSED,
            )
        # An inactive tenant's sessions are refused, not spent: they work again once it is activated.
        await self._tenant_active(claims.tenant_id)
        record.used = True
        try:
            await self.records.put(
                claims.tenant_id, NS_REFRESH, claims.jti, record.SerializeToString(), expected_revision=found[1]
            )
        except AllSourceError as exc:
            if exc.reason != Reason.RECORD_REVISION_MISMATCH:
                raise
            # Two refreshes raced with the same token: one of them is a replay.
            await self._revoke_family(claims.family, claims.tenant_id, "refresh token used twice at once")
            raise Unauthenticated(
                "this refresh token was already used; its whole family is now revoked",
                reason=Reason.REFRESH_TOKEN_REUSED,
            ) from None
        user = await self.state.user(claims.tenant_id, claims.subject)
        if user is None or user.disabled or claims.issued_at_ns < user.tokens_not_before_ns:
            raise Unauthenticated("the session has ended", reason=Reason.TOKEN_REVOKED)
        return auth_pb2.RefreshTokenResponse(tokens=await self._issue(user, family=claims.family))

    async def Logout(
        self, request: auth_pb2.LogoutRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.LogoutResponse:
        caller = self._caller()
        if caller.kind != "user":
            raise FailedPrecondition(
                "only token sessions log out; revoke API keys with RevokeApiKey", reason=Reason.NOT_A_SESSION
            )
        await self.feed.publish(
            K.AUTH_CHANGE_KIND_TOKEN_REVOKED, caller.jti, tenant_id=caller.tenant_id, until_ns=caller.expires_at_ns
        )
        if caller.family:
            await self._revoke_family(caller.family, caller.tenant_id, "logout")
        if request.refresh_token:
            claims = self.verifier.verify(request.refresh_token, token_type=REFRESH)
            if claims.subject == caller.subject and claims.family != caller.family:
                await self._revoke_family(claims.family, claims.tenant_id, "logout")
        return auth_pb2.LogoutResponse()

    async def RevokeToken(
        self, request: auth_pb2.RevokeTokenRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.RevokeTokenResponse:
        caller = self._caller()
        await self.state.ensure_public_key(self.verifier.header_kid(request.token))
        try:
            claims = self.verifier.verify(request.token, token_type=ACCESS)
        except Unauthenticated as exc:
            if exc.reason == Reason.WRONG_TOKEN_TYPE:
                claims = self.verifier.verify(request.token, token_type=REFRESH)
            elif exc.reason == Reason.TOKEN_EXPIRED:
                return auth_pb2.RevokeTokenResponse()  # nothing left to revoke
            else:
                raise
        own = caller.kind == "user" and claims.subject == caller.subject
        admin_here = rbac.P.PERMISSION_ADMIN in caller.permissions and claims.tenant_id == caller.tenant_id
        if not (own or admin_here):
            raise PermissionDenied(
                "only the token's user or an administrator may revoke it", reason=Reason.NOT_TOKEN_OWNER
            )
        await self.feed.publish(
            K.AUTH_CHANGE_KIND_TOKEN_REVOKED,
            claims.jti,
            tenant_id=claims.tenant_id,
            until_ns=claims.expires_at * 1_000_000_000,
        )
        if claims.family:
            await self._revoke_family(claims.family, claims.tenant_id, f"revoked by {caller.ref}")
        return auth_pb2.RevokeTokenResponse()

    async def WhoAmI(
        self, request: auth_pb2.WhoAmIRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.WhoAmIResponse:
        caller = self._caller()
        return auth_pb2.WhoAmIResponse(
            kind=caller.kind,
            subject=caller.subject,
            name=caller.name,
            tenant_id=caller.tenant_id,
            role=cast(auth_pb2.Role, caller.role),
            permissions=cast(list[options_pb2.Permission], sorted(caller.permissions)),
            expires_at=optional_timestamp(caller.expires_at_ns),
            stream_id_prefix=caller.stream_id_prefix,
            event_types=sorted(caller.event_types),
        )

    # -- users --------------------------------------------------------------------------------------

    async def CreateUser(
        self, request: auth_pb2.CreateUserRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.CreateUserResponse:
        caller = self._caller()
        violations = []
        if not USERNAME.fullmatch(request.username):
            violations.append(("username", "1-64 characters: letters, digits and . _ @ -"))
        if problem := self.passwords.problem(request.password):
            violations.append(("password", problem))
        if request.role not in rbac.ROLE_PERMISSIONS:
            violations.append(("role", "must be a role"))
        if violations:
            raise InvalidArgument("the user is invalid", reason=Reason.INVALID_USER, violations=violations)
        self._within_reach(caller, rbac.permissions_of(request.role, []), "", frozenset(), "creating this user")
        async with self._creating[caller.tenant_id]:
            return await self._create_user(caller, request)

    async def _create_user(self, caller: Principal, request: auth_pb2.CreateUserRequest) -> auth_pb2.CreateUserResponse:
        await self._within_quota(caller.tenant_id, "max_users", "users")
        now = time.time_ns()
        user = records_pb2.UserRecord(
            user_id=str(uuid.uuid4()),
            username=request.username,
            tenant_id=caller.tenant_id,
            role=request.role,
            password_hash=await self.passwords.hash(request.password),
            created_at_ns=now,
            password_changed_at_ns=now,
        )
        try:
            await self.records.put(
                caller.tenant_id, NS_USERNAMES, user.username, user.user_id.encode(), expected_revision=0
            )
        except AllSourceError as exc:
            if exc.reason == Reason.RECORD_REVISION_MISMATCH:
                raise AlreadyExists(
                    f"username {user.username!r} is taken",
                    reason=Reason.USERNAME_TAKEN,
                    metadata={"username": user.username},
                ) from None
            raise
        await self._save_user(user, changed=False)
        audit.info("user created", extra={"by": caller.ref, "tenant": caller.tenant_id, "user_id": user.user_id})
        return auth_pb2.CreateUserResponse(user=user_view(user))

    async def GetUser(
        self, request: auth_pb2.GetUserRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.GetUserResponse:
        return auth_pb2.GetUserResponse(user=user_view(await self._user(self._caller().tenant_id, request.user_id)))

    async def ListUsers(
        self, request: auth_pb2.ListUsersRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.ListUsersResponse:
        tenant = self._caller().tenant_id
        size = pagination.page_size(request.page_size, 100, 1000)
        bound = pagination.fingerprint("ListUsers", tenant)
        after = pagination.cursor_str(pagination.decode(request.page_token, bound), "u") if request.page_token else ""
        names = await self.records.list(tenant, NS_USERNAMES, after, size + 1)
        response = auth_pb2.ListUsersResponse()
        for _, user_id, _ in names[:size]:
            try:
                response.users.append(user_view(await self._user(tenant, user_id.decode())))
            except NotFound:
                continue  # deleted meanwhile
        if len(names) > size:
            response.next_page_token = pagination.encode(bound, {"u": names[size - 1][0]})
        return response

    async def DeleteUser(
        self, request: auth_pb2.DeleteUserRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.DeleteUserResponse:
        caller = self._caller()
        user = await self._user(caller.tenant_id, request.user_id)
        if caller.kind == "user" and user.user_id == caller.subject:
            raise FailedPrecondition("users cannot delete themselves", reason=Reason.CANNOT_DELETE_SELF)
        await self.records.delete(caller.tenant_id, NS_USERNAMES, user.username)
        await self.records.delete(caller.tenant_id, NS_USERS, user.user_id)
        await self.feed.publish(K.AUTH_CHANGE_KIND_USER_CHANGED, user.user_id, tenant_id=caller.tenant_id)
        audit.info("user deleted", extra={"by": caller.ref, "tenant": caller.tenant_id, "user_id": user.user_id})
        return auth_pb2.DeleteUserResponse()

    async def SetUserRole(
        self, request: auth_pb2.SetUserRoleRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.SetUserRoleResponse:
        caller = self._caller()
        if request.role not in rbac.ROLE_PERMISSIONS:
            raise InvalidArgument("role must be a role", violations=[("role", "must be a role")])
        self._within_reach(caller, rbac.permissions_of(request.role, []), "", frozenset(), "this role")
        user = await self._user(caller.tenant_id, request.user_id)
        user.role = request.role
        await self._save_user(user)
        audit.info(
            "user role set",
            extra={
                "by": caller.ref,
                "tenant": caller.tenant_id,
                "user_id": user.user_id,
                "role": auth_pb2.Role.Name(user.role),
            },
        )
        return auth_pb2.SetUserRoleResponse(user=user_view(user))

    async def _set_password(self, user: records_pb2.UserRecord, password: str) -> None:
        now = time.time_ns()
        user.password_hash = await self.passwords.hash(password)
        user.password_changed_at_ns = now
        user.tokens_not_before_ns = now  # every existing session ends
        await self._save_user(user)

    async def ChangePassword(
        self, request: auth_pb2.ChangePasswordRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.ChangePasswordResponse:
        caller = self._caller()
        if caller.kind != "user":
            raise FailedPrecondition("only users have passwords", reason=Reason.NOT_A_USER)
        user = await self._user(caller.tenant_id, caller.subject)
        if not await self.passwords.verify(user.password_hash, request.current_password[:1024]):
            raise Unauthenticated("the current password is wrong", reason=Reason.INVALID_CREDENTIALS)
        self._password_problem("new_password", request.new_password)
        await self._set_password(user, request.new_password)
        audit.info("password changed", extra={"tenant": caller.tenant_id, "user_id": user.user_id})
        return auth_pb2.ChangePasswordResponse()

    async def ResetPassword(
        self, request: auth_pb2.ResetPasswordRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.ResetPasswordResponse:
        caller = self._caller()
        self._password_problem("new_password", request.new_password)
        user = await self._user(caller.tenant_id, request.user_id)
        self._within_reach(caller, rbac.permissions_of(user.role, []), "", frozenset(), "resetting this password")
        await self._set_password(user, request.new_password)
        audit.info("password reset", extra={"by": caller.ref, "tenant": caller.tenant_id, "user_id": user.user_id})
        return auth_pb2.ResetPasswordResponse()

    async def DisableUser(
        self, request: auth_pb2.DisableUserRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.DisableUserResponse:
        caller = self._caller()
        user = await self._user(caller.tenant_id, request.user_id)
        if caller.kind == "user" and user.user_id == caller.subject:
            raise FailedPrecondition("users cannot disable themselves", reason=Reason.CANNOT_DISABLE_SELF)
        user.disabled = True
        user.tokens_not_before_ns = time.time_ns()
        await self._save_user(user)
        audit.info("user disabled", extra={"by": caller.ref, "tenant": caller.tenant_id, "user_id": user.user_id})
        return auth_pb2.DisableUserResponse(user=user_view(user))

    async def EnableUser(
        self, request: auth_pb2.EnableUserRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.EnableUserResponse:
        caller = self._caller()
        user = await self._user(caller.tenant_id, request.user_id)
        user.disabled = False
        await self._save_user(user)
        audit.info("user enabled", extra={"by": caller.ref, "tenant": caller.tenant_id, "user_id": user.user_id})
        return auth_pb2.EnableUserResponse(user=user_view(user))

    # -- API keys -----------------------------------------------------------------------------------

    async def count_active_keys(self, tenant_id: str, stop_at: int | None = None) -> int:
        """The tenant's API keys that are neither revoked nor expired (counting stops at `stop_at`)."""
        now = time.time_ns()
        active, after = 0, ""
        while True:
            page = await self.records.list(tenant_id, NS_TENANT_KEYS, after, 1000)
            for key_id, entry, _ in page:
                if entry == REVOKED_ENTRY:
                    continue  # the index says enough: no read of the key per revoked key
                if entry[:1] == b"k" and len(entry) == 9:
                    expires = int.from_bytes(entry[1:], "big")
                else:  # an entry from before the index said it: read the key
                    found = await self.records.get("", NS_API_KEYS, key_id)
                    if found is None:
                        continue
                    key = records_pb2.ApiKeyRecord.FromString(found[0])
                    if key.revoked:
                        continue
                    expires = key.expires_at_ns
                if not (expires and expires <= now):
                    active += 1
                    if stop_at is not None and active >= stop_at:
                        return active
            if len(page) < 1000:
                return active
            after = page[-1][0]

    async def count_users(self, tenant_id: str, stop_at: int | None = None) -> int:
        """The tenant's users (counting stops at `stop_at`)."""
        users, after = 0, ""
        while True:
            page = await self.records.list(tenant_id, NS_USERS, after, 1000)
            users += len(page)
            if len(page) < 1000 or (stop_at is not None and users >= stop_at):
                return users
            after = page[-1][0]

    async def _within_quota(self, tenant_id: str, quota: str, what: str) -> None:
        """Refuse one more key or user past the tenant's quota (QUOTA_EXCEEDED). Creations in this process
        are serialized per tenant, so concurrent calls cannot pass the count together; with several admin
        replicas, each may add one at the same moment (the bound: one per replica)."""
        limit = current_limit(quota)
        if limit is None:
            return
        used = await (self.count_active_keys if quota == "max_api_keys" else self.count_users)(tenant_id, limit)
        if used >= limit:
            raise exceeded(tenant_id, quota, limit, used, f"the tenant has {used} {what}; its quota is {limit}")

    async def create_key(
        self,
        tenant_id: str,
        created_by: str,
        *,
        name: str,
        role: int,
        permissions: list[int],
        stream_id_prefix: str = "",
        event_types: list[str] | None = None,
        ttl_ns: int = 0,
    ) -> tuple[records_pb2.ApiKeyRecord, str]:
        """Store a new key; returns its record and the secret (shown once)."""
        key_id, secret, full = api_keys.generate()
        pepper = self.settings.api_key_pepper
        now = time.time_ns()
        record = records_pb2.ApiKeyRecord(
            key_id=key_id,
            tenant_id=tenant_id,
            name=name,
            role=cast(auth_pb2.Role, role),
            permissions=cast(list[options_pb2.Permission], permissions),
            stream_id_prefix=stream_id_prefix,
            event_types=event_types or [],
            expires_at_ns=now + ttl_ns if ttl_ns else 0,
            created_at_ns=now,
            created_by=created_by,
            secret_hash=api_keys.digest(pepper.get_secret_value().encode() if pepper else b"", key_id, secret),
        )
        await self.records.put("", NS_API_KEYS, key_id, record.SerializeToString(), expected_revision=0)
        await self.records.put(tenant_id, NS_TENANT_KEYS, key_id, _index_entry(record))
        return record, full

    async def CreateApiKey(
        self, request: auth_pb2.CreateApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.CreateApiKeyResponse:
        caller = self._caller()
        violations = []
        if not request.name or len(request.name) > 100 or CONTROL.search(request.name):
            violations.append(("name", "1-100 characters without control characters"))
        valid_permissions = set(options_pb2.Permission.values()) - {options_pb2.PERMISSION_UNSPECIFIED}
        if request.permissions:
            if not set(request.permissions) <= valid_permissions:
                violations.append(("permissions", "must be permissions"))
        elif request.role not in rbac.ROLE_PERMISSIONS:
            violations.append(("role", "set a role or permissions"))
        # A key's scope is copied into every read filter it makes: held to the reads' own bounds.
        limits = self.limits
        if CONTROL.search(request.stream_id_prefix):
            violations.append(("stream_id_prefix", "must not contain control characters"))
        elif len(request.stream_id_prefix.encode()) > limits.max_stream_id_bytes:
            violations.append(("stream_id_prefix", f"at most {limits.max_stream_id_bytes} bytes"))
        if len(request.event_types) > limits.max_filter_event_types:
            violations.append(("event_types", f"at most {limits.max_filter_event_types} event types"))
        else:
            for i, event_type in enumerate(request.event_types):
                if not event_type or CONTROL.search(event_type):
                    violations.append((f"event_types[{i}]", "must be non-empty without control characters"))
                elif len(event_type.encode()) > limits.max_event_type_bytes:
                    violations.append((f"event_types[{i}]", f"at most {limits.max_event_type_bytes} bytes"))
        ttl_ns = 0
        if request.HasField("ttl"):
            if problem := duration_problem(request.ttl):
                violations.append(("ttl", problem))
            else:
                ttl_ns = request.ttl.ToNanoseconds()
        if violations:
            raise InvalidArgument(
                "the API key is invalid", reason=Reason.INVALID_API_KEY_REQUEST, violations=violations
            )
        # A scoped creator's keys inherit its scope unless they narrow it further.
        prefix = request.stream_id_prefix or caller.stream_id_prefix
        event_types = sorted(set(request.event_types) or caller.event_types)
        self._within_reach(
            caller, rbac.permissions_of(request.role, request.permissions), prefix, frozenset(event_types), "this key"
        )
        async with self._creating[caller.tenant_id]:
            await self._within_quota(caller.tenant_id, "max_api_keys", "active API keys")
            record, secret = await self.create_key(
                caller.tenant_id,
                caller.ref,
                name=request.name,
                role=request.role,
                permissions=list(request.permissions),
                stream_id_prefix=prefix,
                event_types=event_types,
                ttl_ns=ttl_ns,
            )
        audit.info("API key created", extra={"by": caller.ref, "tenant": caller.tenant_id, "key_id": record.key_id})
        return auth_pb2.CreateApiKeyResponse(api_key=key_view(record), secret=secret)

    async def ListApiKeys(
        self, request: auth_pb2.ListApiKeysRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.ListApiKeysResponse:
        tenant = self._caller().tenant_id
        size = pagination.page_size(request.page_size, 100, 1000)
        bound = pagination.fingerprint("ListApiKeys", tenant)
        after = pagination.cursor_str(pagination.decode(request.page_token, bound), "k") if request.page_token else ""
        ids = await self.records.list(tenant, NS_TENANT_KEYS, after, size + 1)
        response = auth_pb2.ListApiKeysResponse()
        for key_id, _, _ in ids[:size]:
            try:
                record = await self._key(tenant, key_id)
            except NotFound:
                continue
            usage = await self.records.get("", NS_KEY_USAGE, key_id)
            response.api_keys.append(key_view(record, int.from_bytes(usage[0], "big") if usage else 0))
        if len(ids) > size:
            response.next_page_token = pagination.encode(bound, {"k": ids[size - 1][0]})
        return response

    async def RevokeApiKey(
        self, request: auth_pb2.RevokeApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.RevokeApiKeyResponse:
        caller = self._caller()
        record = await self._key(caller.tenant_id, request.key_id)
        record.revoked = True
        await self.records.put("", NS_API_KEYS, record.key_id, record.SerializeToString())
        await self.records.put(caller.tenant_id, NS_TENANT_KEYS, record.key_id, _index_entry(record))
        await self.feed.publish(K.AUTH_CHANGE_KIND_API_KEY_CHANGED, record.key_id)
        audit.info("API key revoked", extra={"by": caller.ref, "tenant": caller.tenant_id, "key_id": record.key_id})
        return auth_pb2.RevokeApiKeyResponse(api_key=key_view(record))

    async def RotateApiKey(
        self, request: auth_pb2.RotateApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.RotateApiKeyResponse:
        caller = self._caller()
        record = await self._key(caller.tenant_id, request.key_id)
        if record.revoked:
            raise FailedPrecondition("a revoked key cannot be rotated", reason=Reason.API_KEY_REVOKED)
        self._within_reach(
            caller,
            rbac.permissions_of(record.role, list(record.permissions)),
            record.stream_id_prefix,
            frozenset(record.event_types),
            "rotating this key",
        )
        if request.HasField("grace_period") and (problem := duration_problem(request.grace_period)):
            raise InvalidArgument(
                "the grace period is invalid",
                reason=Reason.INVALID_API_KEY_REQUEST,
                violations=[("grace_period", problem)],
            )
        grace_ns = (
            request.grace_period.ToNanoseconds()
            if request.HasField("grace_period")
            else self.settings.api_key_rotation_grace_s * 1_000_000_000
        )
        secret, full = api_keys.new_secret(record.key_id)
        pepper = self.settings.api_key_pepper
        record.previous_secret_hash = record.secret_hash
        record.previous_valid_until_ns = time.time_ns() + max(grace_ns, 0)
        record.secret_hash = api_keys.digest(
            pepper.get_secret_value().encode() if pepper else b"", record.key_id, secret
        )
        await self.records.put("", NS_API_KEYS, record.key_id, record.SerializeToString())
        await self.feed.publish(K.AUTH_CHANGE_KIND_API_KEY_CHANGED, record.key_id)
        audit.info("API key rotated", extra={"by": caller.ref, "tenant": caller.tenant_id, "key_id": record.key_id})
        return auth_pb2.RotateApiKeyResponse(api_key=key_view(record), secret=full)

    # -- signing keys -------------------------------------------------------------------------------

    async def RotateSigningKey(
        self, request: auth_pb2.RotateSigningKeyRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.RotateSigningKeyResponse:
        caller = self._caller()
        key = await self.keyring.rotate()
        await self.feed.publish(K.AUTH_CHANGE_KIND_SIGNING_KEY_ADDED, key.kid)
        audit.info("signing key rotated", extra={"by": caller.ref, "kid": key.kid})
        return auth_pb2.RotateSigningKeyResponse(kid=key.kid)

    async def GetPublicKeys(
        self, request: auth_pb2.GetPublicKeysRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.GetPublicKeysResponse:
        current_kid = self.keyring.current.kid if self.keyring.current else ""
        response = auth_pb2.GetPublicKeysResponse()
        for kid, value, _ in await self.records.list("", NS_PUBLIC_KEYS, "", 1000):
            record = records_pb2.SigningKeyRecord.FromString(value)
            response.keys.add(kid=kid, alg=record.algorithm, pem=record.public_pem.decode(), current=kid == current_kid)
        return response

    # -- bootstrap ----------------------------------------------------------------------------------

    async def bootstrap(self, data_dir: str) -> None:
        """On first start with no users: create the bootstrap administrator (and, with
        auth.bootstrap_api_key, an operator API key written to <data_dir>/bootstrap-admin.key, mode 0600,
        and printed once)."""
        try:
            await self.records.put("", NS_AUTH_META, "bootstrap", str(time.time_ns()).encode(), expected_revision=0)
        except AllSourceError as exc:
            if exc.reason == Reason.RECORD_REVISION_MISMATCH:
                return  # done before (or by another admin replica)
            raise
        password = self.settings.bootstrap_admin_password
        now = time.time_ns()
        user = records_pb2.UserRecord(
            user_id=str(uuid.uuid4()),
            username=self.settings.bootstrap_admin_username,
            tenant_id=DEFAULT_TENANT,
            role=auth_pb2.ROLE_OPERATOR,
            password_hash=await self.passwords.hash(password.get_secret_value()) if password else "",
            created_at_ns=now,
            password_changed_at_ns=now,
        )
        await self.records.put(DEFAULT_TENANT, NS_USERNAMES, user.username, user.user_id.encode())
        await self._save_user(user, changed=False)
        audit.info("bootstrap administrator created", extra={"user_id": user.user_id, "username": user.username})
        if self.settings.bootstrap_api_key:
            _, secret = await self.create_key(
                DEFAULT_TENANT,
                f"user:{user.user_id}",
                name="bootstrap admin",
                role=auth_pb2.ROLE_OPERATOR,
                permissions=[],
            )
            path = Path(data_dir) / BOOTSTRAP_KEY_FILE
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secret + "\n")
            # Printed once, on stdout (not the log): the bootstrap credential.
            print(f"allsource-admin: bootstrap admin API key (shown once, also in {path}): {secret}", flush=True)
