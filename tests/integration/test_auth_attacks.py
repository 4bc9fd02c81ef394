"""Attacks on authentication and authorization, against real processes.

Every attack must be answered with UNAUTHENTICATED or PERMISSION_DENIED (RESOURCE_EXHAUSTED when
throttled) carrying an ErrorInfo reason in the allsource.dev domain: never INTERNAL, UNKNOWN or a crash,
and every process of every suite is still running after each test (see `processes_survive`).

Most attacks run against the shared session suite. Attacks that need particular settings (throttling
limits, short token lifetimes, another issuer and audience) or that would disturb other tests (API-key
guessing locks out the whole loopback address) get suites of their own.

Tokens with chosen claims and a valid signature: the private signing keys never leave the admin process
(sealed in storage), so a test cannot mint tokens with them. But the development preset's service secret
is public ("development-only-service-secret"), so a test can act as the admin service towards storage and
install a verification key whose private half it holds (`forger`). Expired, not-yet-valid, wrong-audience
and wrong-issuer tokens are built that way and refused end to end; the same checks are unit-tested with an
injected clock in tests/unit/test_auth_tokens.py.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import shutil
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import jwt
import pytest
from allsource.control.v1 import control_pb2, control_pb2_grpc
from allsource.storage.v1 import model_pb2, records_pb2, storage_pb2, storage_pb2_grpc
from allsource.v1 import auth_pb2, auth_pb2_grpc, ingest_pb2, ingest_pb2_grpc, query_pb2, query_pb2_grpc
from allsource_client import event
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from shared.auth.scopes import SCOPE_KEY, SYSTEM_TENANT, ScopeSigner
from shared.auth.tokens import SigningKey
from shared.core.errors import DOMAIN, error_info
from shared.core.wire import recast
from tests.harness import ROOT, StartedSuites, Suite, wait_until

TIMEOUT = 20
PASSWORD = "correct horse battery staple"
DEV_SERVICE_SECRET = b"development-only-service-secret"
FAST_ARGON2 = {"ALLSOURCE_AUTH__ARGON2_MEMORY_KIB": "8192", "ALLSOURCE_AUTH__ARGON2_TIME_COST": "1"}
PUBLIC = ("admin", "query", "ingest")
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
PERMISSION_DENIED = grpc.StatusCode.PERMISSION_DENIED
RESOURCE_EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED

# Every suite started by this module (besides the session suite), for the survival check.
STARTED = StartedSuites()


# -- answers ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """How an attack was answered."""

    code: grpc.StatusCode
    reason: str
    message: str
    status: status_pb2.Status

    @property
    def retry_delay(self) -> float | None:
        for detail in self.status.details:
            if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                info = error_details_pb2.RetryInfo()
                detail.Unpack(info)
                return info.retry_delay.ToNanoseconds() / 1e9
        return None


def refusal_of(err: grpc.RpcError) -> Refusal:
    """The refusal an RpcError carries; fails unless it is a proper one (allowed code, ErrorInfo reason)."""
    code = err.code()
    assert code in (UNAUTHENTICATED, PERMISSION_DENIED, RESOURCE_EXHAUSTED), f"{code.name}: {err.details()}"
    status = rpc_status.from_call(err)
    assert status is not None, f"{code.name} without a google.rpc.Status: {err.details()}"
    info = error_info(status)
    assert info is not None and info.domain == DOMAIN and info.reason, f"no ErrorInfo in {status}"
    return Refusal(code, info.reason, status.message, status)


def refused(call: Callable[..., object], *args: Any, **kwargs: Any) -> Refusal:
    """Make a call that must be refused: `call(*args, **kwargs)`; its refusal."""
    with pytest.raises(grpc.RpcError) as err:
        call(*args, **kwargs)
    return refusal_of(err.value)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def scope_metadata(scope: str) -> tuple[tuple[str, str], ...]:
    return ((SCOPE_KEY, scope),)


# -- calls --------------------------------------------------------------------------------------------


def auth_call(suite: Suite, method: str, request: Any, metadata: Sequence[tuple[str, str]] | None = None) -> Any:
    """AuthService.<method> on the admin process; metadata None sends the bootstrap admin API key."""
    with suite.raw_channel("admin") as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        md = suite.auth_metadata() if metadata is None else tuple(metadata)
        return getattr(stub, method)(request, metadata=md, timeout=TIMEOUT)


def probe(suite: Suite, service: str, metadata: Sequence[tuple[str, str]]) -> str:
    """One authenticated call to a public process (admin: WhoAmI, query: ListStreams, ingest: AppendEvents)."""
    with suite.raw_channel(service) as channel:
        if service == "admin":
            me = auth_pb2_grpc.AuthServiceStub(channel).WhoAmI(
                auth_pb2.WhoAmIRequest(), metadata=metadata, timeout=TIMEOUT
            )
            return f"{me.kind}:{me.name}"
        if service == "query":
            query_pb2_grpc.QueryServiceStub(channel).ListStreams(
                query_pb2.ListStreamsRequest(page_size=1), metadata=metadata, timeout=TIMEOUT
            )
            return "ok"
        ingest_pb2_grpc.IngestServiceStub(channel).AppendEvents(
            ingest_pb2.AppendEventsRequest(stream_id=f"auth-probe-{uuid.uuid4().hex[:12]}", events=[event("Probe")]),
            metadata=metadata,
            timeout=TIMEOUT,
        )
        return "ok"


def refused_everywhere(suite: Suite, metadata: Sequence[tuple[str, str]], reason: str, *, within: float = 0.0) -> None:
    """Every public process refuses the credential with UNAUTHENTICATED and this reason (waiting up to
    `within` seconds for the change feed to bring the news)."""
    for service in PUBLIC:
        deadline = time.monotonic() + within
        while True:
            try:
                answer: Refusal | str = f"accepted: {probe(suite, service, metadata)}"
            except grpc.RpcError as err:
                answer = refusal_of(err)
                if (answer.code, answer.reason) == (UNAUTHENTICATED, reason):
                    break
            assert time.monotonic() < deadline, f"{service}: {answer}"
            time.sleep(0.05)


def create_user(suite: Suite, role: int = auth_pb2.ROLE_DEVELOPER) -> auth_pb2.User:
    request = auth_pb2.CreateUserRequest(username=f"u{uuid.uuid4().hex[:12]}", password=PASSWORD, role=role)
    return auth_call(suite, "CreateUser", request).user


def login(suite: Suite, username: str, password: str = PASSWORD, tenant: str = "") -> auth_pb2.TokenPair:
    request = auth_pb2.LoginRequest(tenant_id=tenant, username=username, password=password)
    return auth_call(suite, "Login", request, metadata=()).tokens


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_of(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def assemble(header: dict[str, Any], payload: dict[str, Any], signature: str = "") -> str:
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}.{signature}"


# -- suites -------------------------------------------------------------------------------------------


def started(tmp_path_factory: pytest.TempPathFactory, name: str, env: dict[str, str]) -> Iterator[Suite]:
    return STARTED.started(tmp_path_factory.mktemp(name), env)


@pytest.fixture(autouse=True)
def processes_survive(suite: Suite) -> Iterator[None]:
    """After every attack, every process of every suite in use is still running."""
    yield
    STARTED.assert_alive(suite)


@pytest.fixture(scope="module")
def developer(suite: Suite) -> auth_pb2.TokenPair:
    """The tokens of a session of a developer of the session suite (never revoked)."""
    return login(suite, create_user(suite).username)


@pytest.fixture(scope="module")
def fast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    """Cheap password hashing, no clock skew, 30 s access tokens, and no practical login throttling."""
    env = {
        **FAST_ARGON2,
        "ALLSOURCE_AUTH__ACCESS_TOKEN_TTL_S": "30",
        "ALLSOURCE_AUTH__CLOCK_SKEW_S": "0",
        "ALLSOURCE_AUTH__LOGIN_MAX_FAILURES": "1000",
    }
    with started(tmp_path_factory, "fast", env) as running:
        yield running


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    """Another deployment: its own storage and keys, another issuer and audience."""
    env = {**FAST_ARGON2, "ALLSOURCE_AUTH__ISSUER": "elsewhere", "ALLSOURCE_AUTH__AUDIENCE": "elsewhere-api"}
    with started(tmp_path_factory, "foreign", env) as running:
        yield running


# -- tokens: algorithm, key id, signature -------------------------------------------------------------


@pytest.mark.parametrize("service", PUBLIC)
def test_alg_none_token_is_refused(suite: Suite, developer: auth_pb2.TokenPair, service: str) -> None:
    for header in (
        {"alg": "none", "typ": "JWT"},
        {"alg": "none", "kid": jwt.get_unverified_header(developer.access_token)["kid"]},
    ):
        token = assemble(header, claims_of(developer.access_token) | {"role": auth_pb2.ROLE_ADMIN})
        answer = refused(probe, suite, service, bearer(token))
        assert (answer.code, answer.reason) == (UNAUTHENTICATED, "INVALID_ALGORITHM")


@pytest.mark.parametrize("service", PUBLIC)
def test_hs256_token_signed_with_the_public_key_is_refused(
    suite: Suite, developer: auth_pb2.TokenPair, service: str
) -> None:
    keys = auth_call(suite, "GetPublicKeys", auth_pb2.GetPublicKeysRequest(), metadata=()).keys
    current = next(k for k in keys if k.current)
    assert current.alg == "EdDSA" and "BEGIN PUBLIC KEY" in current.pem
    header = {"alg": "HS256", "typ": "JWT", "kid": current.kid}
    payload = claims_of(developer.access_token) | {"role": auth_pb2.ROLE_ADMIN}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    for secret in (current.pem.encode(), current.pem.strip().encode()):
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        answer = refused(probe, suite, service, bearer(f"{signing_input}.{b64url(mac)}"))
        assert (answer.code, answer.reason) == (UNAUTHENTICATED, "INVALID_ALGORITHM")


@pytest.mark.parametrize("kid", ["0123456789abcdef", "../signing_keys/x", "\x00", "\u00e9t\u00e9", " ", "k" * 64])
def test_unknown_kid_is_refused(suite: Suite, developer: auth_pb2.TokenPair, kid: str) -> None:
    _, payload, signature = developer.access_token.split(".")
    token = f"{b64url(json.dumps({'alg': 'EdDSA', 'kid': kid}).encode())}.{payload}.{signature}"
    for service in PUBLIC:
        for _ in range(2):  # the second time the kid is a remembered miss
            answer = refused(probe, suite, service, bearer(token))
            assert (answer.code, answer.reason) == (UNAUTHENTICATED, "UNKNOWN_SIGNING_KEY")


def test_kid_that_is_not_valid_unicode_is_refused(suite: Suite, developer: auth_pb2.TokenPair) -> None:
    _, payload, signature = developer.access_token.split(".")
    header = b64url(b'{"alg": "EdDSA", "kid": "\\ud800"}')
    answer = refused(probe, suite, "admin", bearer(f"{header}.{payload}.{signature}"))
    assert (answer.code, answer.reason) == (UNAUTHENTICATED, "UNKNOWN_SIGNING_KEY")


def test_kid_of_10_kb_is_refused(suite: Suite, developer: auth_pb2.TokenPair) -> None:
    _, payload, signature = developer.access_token.split(".")
    token = f"{b64url(json.dumps({'alg': 'EdDSA', 'kid': 'k' * 10_240}).encode())}.{payload}.{signature}"
    # In metadata, the token (13.9 KB) is over gRPC's 8 KB soft limit on received metadata: the transport
    # refuses it (RESOURCE_EXHAUSTED without details) before any handler runs, or, when the soft limit
    # lets it through, the guard refuses it as too large.
    for service in PUBLIC:
        with pytest.raises(grpc.RpcError) as err:
            probe(suite, service, bearer(token))
        if err.value.code() == RESOURCE_EXHAUSTED and rpc_status.from_call(err.value) is None:
            assert "metadata size exceeds" in (err.value.details() or "")
        else:
            assert refusal_of(err.value).reason == "MALFORMED_CREDENTIALS"
    # In a request body, the token reaches the verifier, which refuses it before parsing it.
    answer = refused(auth_call, suite, "RefreshToken", auth_pb2.RefreshTokenRequest(refresh_token=token), ())
    assert (answer.code, answer.reason) == (UNAUTHENTICATED, "MALFORMED_CREDENTIALS")
    answer = refused(auth_call, suite, "RevokeToken", auth_pb2.RevokeTokenRequest(token=token))
    assert (answer.code, answer.reason) == (UNAUTHENTICATED, "MALFORMED_CREDENTIALS")


@pytest.mark.parametrize("service", PUBLIC)
@pytest.mark.parametrize(
    "changes",
    [{"tenant": "other"}, {"role": auth_pb2.ROLE_ADMIN}, {"sub": str(uuid.UUID(int=0))}, {"exp": 4_000_000_000}],
    ids=["tenant", "role", "subject", "expiry"],
)
def test_tampered_claims_are_refused(
    suite: Suite, developer: auth_pb2.TokenPair, service: str, changes: dict[str, Any]
) -> None:
    header, _, signature = developer.access_token.split(".")
    forged = f"{header}.{b64url(json.dumps(claims_of(developer.access_token) | changes).encode())}.{signature}"
    answer = refused(probe, suite, service, bearer(forged))
    assert (answer.code, answer.reason) == (UNAUTHENTICATED, "INVALID_TOKEN")
    probe(suite, service, bearer(developer.access_token))  # the genuine token still works


def test_garbage_tokens_are_refused(suite: Suite, developer: auth_pb2.TokenPair) -> None:
    kid = jwt.get_unverified_header(developer.access_token)["kid"]
    known_kid_header = b64url(json.dumps({"alg": "EdDSA", "kid": kid}).encode())
    garbage = {
        "a.b.c": "INVALID_TOKEN",
        "..": "INVALID_TOKEN",
        "...": "MALFORMED_CREDENTIALS",  # not shaped like a JWT (or an API key) at all
        f"{b64url(b'[]')}.{b64url(b'{}')}.x": "INVALID_TOKEN",
        f"{known_kid_header}.{b64url(b'not json')}.{b64url(b'x' * 64)}": "INVALID_TOKEN",
        f"{known_kid_header}.e30.": "INVALID_TOKEN",
        "eyJhbGciOiJFZERTQSJ9.e30.": "UNKNOWN_SIGNING_KEY",  # no kid
    }
    for token, reason in garbage.items():
        answer = refused(probe, suite, "query", bearer(token))
        assert (answer.code, answer.reason) == (UNAUTHENTICATED, reason), token


def test_tokens_of_another_deployment_are_refused(suite: Suite, foreign: Suite, developer: auth_pb2.TokenPair) -> None:
    stranger = create_user(foreign)
    theirs = login(foreign, stranger.username)
    assert claims_of(theirs.access_token)["aud"] == "elsewhere-api"
    probe(foreign, "admin", bearer(theirs.access_token))  # valid where it was issued
    refused_everywhere(suite, bearer(theirs.access_token), "UNKNOWN_SIGNING_KEY")
    refresh = auth_pb2.RefreshTokenRequest(refresh_token=theirs.refresh_token)
    answer = refused(auth_call, suite, "RefreshToken", refresh, ())
    assert (answer.code, answer.reason) == (UNAUTHENTICATED, "UNKNOWN_SIGNING_KEY")
    refused_everywhere(foreign, bearer(developer.access_token), "UNKNOWN_SIGNING_KEY")
    # Its bootstrap admin key names a key id this deployment does not have.
    answer = refused(probe, suite, "admin", bearer(foreign.admin_key))
    assert (answer.code, answer.reason) == (UNAUTHENTICATED, "INVALID_API_KEY")


# -- tokens with chosen claims, validly signed --------------------------------------------------------


@dataclass
class Forger:
    """Signs tokens with a key the suite trusts (installed through storage with the development secret)."""

    key: SigningKey
    user: auth_pb2.User

    def token(self, **changes: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": "allsource",
            "aud": "allsource",
            "sub": self.user.user_id,
            "tenant": self.user.tenant_id,
            "role": self.user.role,
            "typ": "access",
            "fam": uuid.uuid4().hex,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "nbf": now,
            "exp": now + 30,
        }
        for name, value in changes.items():
            if value is None:
                claims.pop(name)
            else:
                claims[name] = value
        return jwt.encode(claims, self.key.private, algorithm="EdDSA", headers={"kid": self.key.kid})


def install_public_key(suite: Suite, key: SigningKey) -> None:
    """Acting as the admin service (the development secret is public), make storage hold a public key."""
    scope = ScopeSigner(DEV_SERVICE_SECRET, "admin", 60).mint(SYSTEM_TENANT, "test")
    record = records_pb2.SigningKeyRecord(kid=key.kid, algorithm="EdDSA", public_pem=key.public_pem())
    request = storage_pb2.PutRecordRequest(
        tenant_id="", record=storage_pb2.Record(namespace="public_keys", key=key.kid, value=record.SerializeToString())
    )
    with suite.raw_channel("storage") as channel:
        storage_pb2_grpc.StorageServiceStub(channel).PutRecord(request, metadata=scope_metadata(scope), timeout=TIMEOUT)


@pytest.fixture(scope="module")
def forger(fast: Suite) -> Forger:
    key = SigningKey.generate()
    install_public_key(fast, key)
    return Forger(key, create_user(fast, auth_pb2.ROLE_READ_ONLY))


def test_forged_but_valid_token_is_accepted(fast: Suite, forger: Forger) -> None:
    """The control: without one of the flaws below, a token from the installed key works everywhere."""
    token = forger.token()
    assert probe(fast, "admin", bearer(token)) == f"user:{forger.user.username}"
    probe(fast, "query", bearer(token))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"exp": -5, "iat": -100, "nbf": -100}, "TOKEN_EXPIRED"),
        ({"iat": 120, "nbf": 120, "exp": 900}, "TOKEN_NOT_YET_VALID"),
        ({"nbf": 120, "exp": 900}, "TOKEN_NOT_YET_VALID"),
        ({"aud": "elsewhere-api"}, "INVALID_AUDIENCE"),
        ({"iss": "elsewhere"}, "INVALID_ISSUER"),
        ({"typ": "refresh"}, "WRONG_TOKEN_TYPE"),
        ({"tenant": "other"}, "USER_NOT_FOUND"),
        ({"sub": str(uuid.UUID(int=1))}, "USER_NOT_FOUND"),
        ({"jti": None}, "INVALID_TOKEN"),
        ({"exp": None}, "INVALID_TOKEN"),
    ],
    ids=[
        "expired",
        "iat-future",
        "nbf-future",
        "audience",
        "issuer",
        "refresh",
        "tenant",
        "subject",
        "no-jti",
        "no-exp",
    ],
)
def test_validly_signed_token_with_bad_claims_is_refused(
    fast: Suite, forger: Forger, changes: dict[str, Any], reason: str
) -> None:
    now = int(time.time())
    # Times are given relative to now.
    claims = {k: now + v if k in ("exp", "iat", "nbf") and v is not None else v for k, v in changes.items()}
    token = forger.token(**claims)
    answers = {service: refused(probe, fast, service, bearer(token)) for service in PUBLIC}
    assert {(a.code, a.reason) for a in answers.values()} == {(UNAUTHENTICATED, reason)}, answers


def test_role_claim_grants_nothing(fast: Suite, forger: Forger) -> None:
    """Permissions come from the user's record, not from the token: a read-only user claiming ADMIN stays read-only."""
    token = forger.token(role=auth_pb2.ROLE_ADMIN)
    me = auth_call(fast, "WhoAmI", auth_pb2.WhoAmIRequest(), bearer(token))
    assert me.role == auth_pb2.ROLE_READ_ONLY
    request = auth_pb2.CreateUserRequest(
        username=f"u{uuid.uuid4().hex[:8]}", password=PASSWORD, role=auth_pb2.ROLE_ADMIN
    )
    answer = refused(auth_call, fast, "CreateUser", request, bearer(token))
    assert (answer.code, answer.reason) == (PERMISSION_DENIED, "PERMISSION_DENIED")
    answer = refused(probe, fast, "ingest", bearer(token))
    assert (answer.code, answer.reason) == (PERMISSION_DENIED, "PERMISSION_DENIED")


@pytest.mark.slow
def test_real_access_token_expires(fast: Suite) -> None:
    """A token issued by the suite itself (30 s lifetime, no skew) is refused once it has expired."""
    user = create_user(fast)
    tokens = login(fast, user.username)
    for service in PUBLIC:
        probe(fast, service, bearer(tokens.access_token))
    expires = tokens.access_token_expires_at.seconds
    assert expires - time.time() <= 31
    wait_until(lambda: time.time() >= expires, timeout=35, what="the token's expiry time")
    refused_everywhere(fast, bearer(tokens.access_token), "TOKEN_EXPIRED", within=2)
    # The refresh token lives longer: it still gets a new session.
    renewed = auth_call(fast, "RefreshToken", auth_pb2.RefreshTokenRequest(refresh_token=tokens.refresh_token), ())
    probe(fast, "query", bearer(renewed.tokens.access_token))


# -- sessions that ended ------------------------------------------------------------------------------


def test_revoked_token_is_refused_everywhere(suite: Suite) -> None:
    victim, other = create_user(suite), create_user(suite)
    tokens, others = login(suite, victim.username), login(suite, other.username)
    for service in PUBLIC:
        probe(suite, service, bearer(tokens.access_token))
    # Another (non-admin) user may not revoke it.
    revoke = auth_pb2.RevokeTokenRequest(token=tokens.access_token)
    answer = refused(auth_call, suite, "RevokeToken", revoke, bearer(others.access_token))
    assert (answer.code, answer.reason) == (PERMISSION_DENIED, "NOT_TOKEN_OWNER")
    auth_call(suite, "RevokeToken", revoke)  # the administrator may
    refused_everywhere(suite, bearer(tokens.access_token), "TOKEN_REVOKED", within=3)
    refresh = auth_pb2.RefreshTokenRequest(refresh_token=tokens.refresh_token)
    answer = refused(auth_call, suite, "RefreshToken", refresh, ())
    assert (answer.code, answer.reason) == (UNAUTHENTICATED, "TOKEN_REVOKED")
    probe(suite, "query", bearer(others.access_token))  # other sessions are untouched


def test_disabled_user_is_refused_everywhere(suite: Suite) -> None:
    user = create_user(suite)
    tokens = login(suite, user.username)
    probe(suite, "query", bearer(tokens.access_token))
    auth_call(suite, "DisableUser", auth_pb2.DisableUserRequest(user_id=user.user_id))
    refused_everywhere(suite, bearer(tokens.access_token), "USER_DISABLED", within=3)
    answer = refused(login, suite, user.username)
    assert (answer.code, answer.reason) == (UNAUTHENTICATED, "USER_DISABLED")
    answer = refused(login, suite, user.username, "wrong password!")
    assert (answer.code, answer.reason) == (UNAUTHENTICATED, "INVALID_CREDENTIALS")
    # Enabling the user again does not revive tokens issued before it was disabled.
    auth_call(suite, "EnableUser", auth_pb2.EnableUserRequest(user_id=user.user_id))
    refused_everywhere(suite, bearer(tokens.access_token), "TOKEN_REVOKED", within=3)


def test_deleted_user_is_refused_everywhere(suite: Suite) -> None:
    user = create_user(suite)
    tokens = login(suite, user.username)
    probe(suite, "ingest", bearer(tokens.access_token))
    auth_call(suite, "DeleteUser", auth_pb2.DeleteUserRequest(user_id=user.user_id))
    refused_everywhere(suite, bearer(tokens.access_token), "USER_NOT_FOUND", within=3)
    answer = refused(login, suite, user.username)
    assert (answer.code, answer.reason) == (UNAUTHENTICATED, "INVALID_CREDENTIALS")
    refresh = auth_pb2.RefreshTokenRequest(refresh_token=tokens.refresh_token)
    answer = refused(auth_call, suite, "RefreshToken", refresh, ())
    assert (answer.code, answer.reason) == (UNAUTHENTICATED, "TOKEN_REVOKED")


def test_revoked_api_key_is_refused_everywhere(suite: Suite) -> None:
    created = auth_call(
        suite, "CreateApiKey", auth_pb2.CreateApiKeyRequest(name="doomed", role=auth_pb2.ROLE_DEVELOPER)
    )
    probe(suite, "query", bearer(created.secret))
    auth_call(suite, "RevokeApiKey", auth_pb2.RevokeApiKeyRequest(key_id=created.api_key.key_id))
    refused_everywhere(suite, bearer(created.secret), "API_KEY_REVOKED", within=3)


# -- the authorization metadata -----------------------------------------------------------------------


MALFORMED = {
    "no scheme": "{key}",
    "other scheme": "Basic {key}",
    "scheme only": "Bearer",
    "empty token": "Bearer ",
    "two spaces": "Bearer  {key}",
    "space inside": "Bearer as_ {key}",
    "comma list": "Bearer {key},{key}",
    "5 KB": "Bearer " + "a" * 5 * 1024,
    "4 KB of dots": "Bearer " + "a." * 2048,
    "neither JWT nor key": "Bearer not-a-credential",
    "two dots short": "Bearer a.b",
    "four parts": "Bearer a.b.c.d",
}


@pytest.mark.parametrize("service", PUBLIC)
@pytest.mark.parametrize("shape", list(MALFORMED))
def test_malformed_authorization_is_refused(suite: Suite, service: str, shape: str) -> None:
    value = MALFORMED[shape].format(key=suite.admin_key)
    answer = refused(probe, suite, service, (("authorization", value),))
    assert (answer.code, answer.reason) == (UNAUTHENTICATED, "MALFORMED_CREDENTIALS")


@pytest.mark.parametrize("service", PUBLIC)
def test_repeated_authorization_headers_are_refused(suite: Suite, developer: auth_pb2.TokenPair, service: str) -> None:
    for values in ((suite.admin_key, suite.admin_key), (developer.access_token, suite.admin_key)):
        metadata = tuple(("authorization", f"Bearer {v}") for v in values)
        answer = refused(probe, suite, service, metadata)
        assert (answer.code, answer.reason) == (UNAUTHENTICATED, "MALFORMED_CREDENTIALS")


# gRPC clients refuse to send header values outside printable ASCII, so this sends one over plain HTTP/2
# with Node.js (a documented requirement of the test suite) and prints the gRPC status it gets back.
RAW_HTTP2_CALL = """
import http2 from "node:http2";
const [address, path, value] = process.argv.slice(1);
const print = (o) => { console.log(JSON.stringify(o)); };
const session = http2.connect(`http://${address}`);
session.on("error", (e) => { print({ error: String(e) }); process.exit(0); });
const request = session.request({
  ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers",
  authorization: Buffer.from(value, "base64").toString("latin1"),
});
let headers = {};
request.on("response", (h) => { headers = { ...headers, ...h }; });
request.on("trailers", (t) => { headers = { ...headers, ...t }; });
request.on("error", (e) => { print({ error: String(e) }); session.close(); });
request.on("data", () => {});
request.on("end", () => {
  print({ status: headers["grpc-status"] ?? null, details: headers["grpc-status-details-bin"] ?? null });
  session.close();
});
request.end(Buffer.from([0, 0, 0, 0, 0]));  // an empty message
"""

PATHS = {
    "admin": "/allsource.v1.AuthService/WhoAmI",
    "query": "/allsource.v1.QueryService/ListStreams",
    "ingest": "/allsource.v1.IngestService/AppendEvents",
}


@pytest.mark.parametrize("service", PUBLIC)
@pytest.mark.parametrize(
    "value",
    ["Bearer é".encode("latin-1"), "Bearer é".encode(), b"Bearer \xffKEY", "Bëarer KEY".encode("latin-1")],
    ids=["latin-1", "utf-8", "0xff before a key", "non-ascii scheme"],
)
def test_non_ascii_authorization_is_refused(suite: Suite, service: str, value: bytes) -> None:
    node = shutil.which("node")
    assert node is not None, "Node.js is required for the test suite (install Node.js 20)"
    raw = value.replace(b"KEY", suite.admin_key.encode())
    proc = subprocess.run(
        [
            node,
            "--input-type=module",
            "-e",
            RAW_HTTP2_CALL,
            "--",
            suite.address(service),
            PATHS[service],
            base64.b64encode(raw).decode(),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer = json.loads(proc.stdout)
    assert answer.get("status") == str(UNAUTHENTICATED.value[0]), answer
    status = status_pb2.Status.FromString(base64.b64decode(answer["details"] + "=" * (-len(answer["details"]) % 4)))
    info = error_info(status)
    assert info is not None and info.reason == "MALFORMED_CREDENTIALS"


# -- API keys -----------------------------------------------------------------------------------------


def wrong_keys(genuine: str) -> tuple[str, str]:
    """A well-formed key with a random id, and the genuine key id with a wrong secret."""
    key_id = genuine.split("_")[1]
    return f"as_{uuid.uuid4().hex[:16]}_{'A' * 43}", f"as_{key_id}_{'B' * 43}"


def test_unknown_key_id_and_wrong_secret_answer_identically(suite: Suite) -> None:
    random_id, wrong_secret = wrong_keys(suite.admin_key)
    first = refused(probe, suite, "query", bearer(random_id))
    second = refused(probe, suite, "query", bearer(wrong_secret))
    assert (first.code, first.reason) == (UNAUTHENTICATED, "INVALID_API_KEY")
    assert first.status == second.status  # code, message and every detail


def test_api_key_guessing_is_throttled_without_locking_out_valid_keys(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """After api_key_max_failures invalid keys from one address within a minute, further invalid keys from
    it are answered RESOURCE_EXHAUSTED with a RetryInfo of up to 60 s, while every valid key (the
    operator's, another tenant user's, one made after the flood) keeps working from that same address:
    behind a NAT or a mesh sidecar everyone shares it. (Before: the correct key was refused too.)"""
    env = {**FAST_ARGON2, "ALLSOURCE_AUTH__API_KEY_MAX_FAILURES": "5"}
    with started(tmp_path_factory, "guessing", env) as guessed:
        tokens = login(guessed, create_user(guessed).username)
        for attempt in range(5):
            wrong = wrong_keys(guessed.admin_key)[attempt % 2]
            answer = refused(probe, guessed, "query", bearer(wrong))
            assert (answer.code, answer.reason, answer.retry_delay) == (UNAUTHENTICATED, "INVALID_API_KEY", None)
        for _ in range(20):  # a flood of guesses from the same address
            for wrong in wrong_keys(guessed.admin_key):
                answer = refused(probe, guessed, "query", bearer(wrong))
                assert (answer.code, answer.reason) == (RESOURCE_EXHAUSTED, "TOO_MANY_FAILED_ATTEMPTS")
                assert answer.retry_delay is not None and 0 < answer.retry_delay <= 60
        fresh = (
            auth_pb2_grpc.AuthServiceStub(guessed.channel("admin"))
            .CreateApiKey(auth_pb2.CreateApiKeyRequest(name="after-flood", role=auth_pb2.ROLE_DEVELOPER))
            .secret
        )
        for service in ("query", "ingest"):
            assert probe(guessed, service, bearer(guessed.admin_key)) == "ok"
            assert probe(guessed, service, bearer(fresh)) == "ok"
            assert probe(guessed, service, bearer(tokens.access_token)) == "ok"
        assert probe(guessed, "admin", bearer(guessed.admin_key)) == "api_key:bootstrap admin"
        assert probe(guessed, "admin", bearer(fresh)) == "api_key:after-flood"


# -- logins -------------------------------------------------------------------------------------------


def test_login_failures_look_alike(fast: Suite) -> None:
    """An unknown user and a wrong password: the same answer, in about the same time (median of 7)."""
    user = create_user(fast)
    attempts = {
        "unknown user": lambda: login(fast, f"nobody-{uuid.uuid4().hex[:8]}", PASSWORD),
        "wrong password": lambda: login(fast, user.username, f"{PASSWORD}-{uuid.uuid4().hex[:8]}"),
    }
    answers: dict[str, set[tuple[Any, ...]]] = {name: set() for name in attempts}
    times: dict[str, list[float]] = {name: [] for name in attempts}
    with contextlib.suppress(grpc.RpcError):
        login(fast, user.username, "warm-up")
    for _ in range(7):
        for name, attempt in attempts.items():
            started_at = time.perf_counter()
            answer = refused(attempt)
            times[name].append(time.perf_counter() - started_at)
            answers[name].add((answer.code, answer.reason, answer.message, answer.status.SerializeToString()))
    assert answers["unknown user"] == answers["wrong password"]
    ((code, reason, message, _),) = answers["wrong password"]
    assert (code, reason, message) == (UNAUTHENTICATED, "INVALID_CREDENTIALS", "invalid username or password")
    answer = refused(login, fast, "not a valid name!")
    assert (answer.code, answer.reason, answer.message) == (code, reason, message)
    unknown, wrong = statistics.median(times["unknown user"]), statistics.median(times["wrong password"])
    assert 0.5 < unknown / wrong < 2, f"unknown user {unknown * 1000:.1f} ms, wrong password {wrong * 1000:.1f} ms"


def test_login_for_an_unknown_tenant_looks_like_a_wrong_password(fast: Suite) -> None:
    user = create_user(fast)
    wrong = refused(login, fast, user.username, "wrong password!")
    answer = refused(login, fast, user.username, PASSWORD, tenant=f"no-such-tenant-{uuid.uuid4().hex[:6]}")
    assert answer.status == wrong.status


def login_from(suite: Suite, address: str, username: str, password: str = PASSWORD) -> auth_pb2.TokenPair:
    """Login dialled at another address of the admin process (one listening on `::` has both)."""
    with grpc.insecure_channel(f"{address}:{suite.ports['admin']}") as channel:
        request = auth_pb2.LoginRequest(username=username, password=password)
        return auth_pb2_grpc.AuthServiceStub(channel).Login(request, timeout=TIMEOUT).tokens


def test_login_is_throttled_per_user_and_address_and_never_locks_a_user_out(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Observed with auth.login_max_failures = 3, the admin process listening on `::` (so that the test
    reaches it from two addresses, 127.0.0.1 and ::1): the 4th try for a username from the address that
    failed is refused without checking the password (the right one too) with RESOURCE_EXHAUSTED and a
    RetryInfo of about login_window_s; unknown usernames alike. The same user's correct password from
    the other address logs in, and so does every other user from the guessing address, however many
    usernames it failed: wrong guesses never lock out a correct password elsewhere (a throttle per user
    or per address let anyone lock a user, or everyone behind one address, out)."""
    env = {
        **FAST_ARGON2,
        "ALLSOURCE_AUTH__LOGIN_MAX_FAILURES": "3",
        "ALLSOURCE_AUTH__LOGIN_WINDOW_S": "300",
        "ALLSOURCE_ADMIN__HOST": "::",
    }
    with started(tmp_path_factory, "logins", env) as guarded:
        victim, bystander = create_user(guarded), create_user(guarded)
        ghost = f"ghost-{uuid.uuid4().hex[:8]}"
        for username in (victim.username, ghost):
            for _ in range(3):
                answer = refused(login, guarded, username, "wrong password!")
                assert (answer.code, answer.reason) == (UNAUTHENTICATED, "INVALID_CREDENTIALS")
            for password in ("wrong password!", PASSWORD):
                answer = refused(login, guarded, username, password)
                assert (answer.code, answer.reason) == (RESOURCE_EXHAUSTED, "LOGIN_THROTTLED")
                assert answer.retry_delay is not None and 250 < answer.retry_delay <= 300
        # The victim, from elsewhere, gets in; a wrong password from there is only a wrong password.
        assert login_from(guarded, "[::1]", victim.username).access_token
        answer = refused(login_from, guarded, "[::1]", victim.username, "wrong password!")
        assert (answer.code, answer.reason) == (UNAUTHENTICATED, "INVALID_CREDENTIALS")
        # Six failures from this address: another user's correct login from it still gets in, and many
        # more unknown names tried from it lock out nobody.
        for i in range(10):
            refused(login, guarded, f"{ghost}-{i}", "wrong password!")
        assert login(guarded, bystander.username).access_token
        assert login_from(guarded, "127.0.0.1", bystander.username).access_token


def test_oversized_login_names_are_refused_before_anything_is_kept(
    tmp_path_factory: pytest.TempPathFactory, suite: Suite
) -> None:
    """A login naming a tenant or a user of megabytes is refused as invalid credentials (no such name
    can exist) without being remembered by the throttle or written to the log: before, fifty of them
    with 4 MiB usernames took the admin process from 83 to 499 MiB, and one 5 MB tenant id made a 5 MB
    log line."""
    huge = "x" * (1 << 20)
    for tenant, username in ((huge, "alice"), ("", huge)):
        answer = refused(login, suite, username, "wrong password!", tenant=tenant)
        assert (answer.code, answer.reason) == (UNAUTHENTICATED, "INVALID_CREDENTIALS")
    assert huge[:1000] not in suite.log("admin")


# -- internal calls: storage and ControlService -------------------------------------------------------


def storage_call(suite: Suite, method: str, request: Any, metadata: Sequence[tuple[str, str]]) -> Any:
    with suite.raw_channel("storage") as channel:
        result = getattr(storage_pb2_grpc.StorageServiceStub(channel), method)(
            request, metadata=metadata, timeout=TIMEOUT
        )
        return list(result) if method == "Subscribe" else result


def read_default(suite: Suite, metadata: Sequence[tuple[str, str]]) -> Any:
    return storage_call(
        suite, "ReadStream", storage_pb2.ReadStreamRequest(tenant_id="default", stream_id="s"), metadata
    )


@pytest.mark.parametrize(
    "metadata",
    [(), "admin key", "access token", "two scopes"],
    ids=["nothing", "admin API key", "user access token", "two scopes"],
)
def test_storage_refuses_calls_without_one_scope(suite: Suite, developer: auth_pb2.TokenPair, metadata: Any) -> None:
    scope = ScopeSigner(DEV_SERVICE_SECRET, "ingest", 60).mint("default", "test")
    given = {
        "admin key": bearer(suite.admin_key),
        "access token": bearer(developer.access_token),
        "two scopes": scope_metadata(scope) * 2,
    }.get(metadata, ())
    answer = refused(read_default, suite, given)
    assert (answer.code, answer.reason) == (UNAUTHENTICATED, "SERVICE_CREDENTIALS_MISSING")


@pytest.mark.parametrize(
    ("forge", "reason"),
    [
        (lambda: f"v1|ingest|default|user:x|{int(time.time()) + 60}|{'0' * 32}", "SERVICE_CREDENTIALS_INVALID"),
        (lambda: ScopeSigner(b"guessed-secret", "ingest", 60).mint("default", "x"), "SERVICE_CREDENTIALS_INVALID"),
        (
            lambda: ScopeSigner(DEV_SERVICE_SECRET, "ingest", 60).mint("other", "x").replace("|other|", "|default|"),
            "SERVICE_CREDENTIALS_INVALID",
        ),
        (
            lambda: ScopeSigner(DEV_SERVICE_SECRET, "ingest", 60).mint("default", "x")[:-2],
            "SERVICE_CREDENTIALS_INVALID",
        ),
        (lambda: "v1|ingest|default", "SERVICE_CREDENTIALS_INVALID"),
        (lambda: ScopeSigner(DEV_SERVICE_SECRET, "ingest", -1).mint("default", "x"), "SERVICE_CREDENTIALS_EXPIRED"),
        # Signed with the real secret, but valid for ten years: the suite never mints such a scope.
        (
            lambda: ScopeSigner(DEV_SERVICE_SECRET, "ingest", 10 * 365 * 86400).mint("default", "x"),
            "SERVICE_CREDENTIALS_INVALID",
        ),
        (
            lambda: ScopeSigner(DEV_SERVICE_SECRET, "ingest", 60 + 3600).mint("default", "x"),
            "SERVICE_CREDENTIALS_INVALID",
        ),
    ],
    ids=["zero mac", "other secret", "tampered tenant", "truncated", "short", "expired", "ten years", "just too long"],
)
def test_storage_refuses_forged_scopes(suite: Suite, forge: Callable[[], str], reason: str) -> None:
    answer = refused(read_default, suite, scope_metadata(forge()))
    assert (answer.code, answer.reason) == (UNAUTHENTICATED, reason)


TENANT_CALLS = {
    "ReadStream": storage_pb2.ReadStreamRequest(tenant_id="default", stream_id="s"),
    "ReadEvents": storage_pb2.ReadEventsRequest(tenant_id="default"),
    "ListStreams": storage_pb2.ListStreamsRequest(tenant_id="default"),
    "GetStream": storage_pb2.GetStreamRequest(tenant_id="default", stream_id="s"),
    "GetEvent": storage_pb2.GetEventRequest(tenant_id="default", event_id=str(uuid.UUID(int=0))),
    "GetSnapshot": storage_pb2.GetSnapshotRequest(tenant_id="default", stream_id="s"),
    "PutSnapshot": storage_pb2.PutSnapshotRequest(tenant_id="default", stream_id="s", version=1, state=b"{}"),
    "Subscribe": storage_pb2.SubscribeRequest(tenant_id="default", from_end=True),
    "GetRecord": storage_pb2.GetRecordRequest(tenant_id="default", namespace="users", key="x"),
}


@pytest.mark.parametrize("method", list(TENANT_CALLS))
def test_scope_for_one_tenant_cannot_touch_another(suite: Suite, method: str) -> None:
    other = ScopeSigner(DEV_SERVICE_SECRET, "ingest", 60).mint("other", "user:someone")
    answer = refused(storage_call, suite, method, TENANT_CALLS[method], scope_metadata(other))
    assert (answer.code, answer.reason) == (PERMISSION_DENIED, "TENANT_SCOPE_MISMATCH")


def test_tenant_scope_reads_its_own_tenant_only(suite: Suite, unique: str) -> None:
    """The control for the test above: the same kind of scope reads its own tenant's stream."""
    with suite.client() as client:
        client.append(unique + "s", [event("Opened")])
    request = storage_pb2.ReadStreamRequest(tenant_id="default", stream_id=unique + "s")
    own = ScopeSigner(DEV_SERVICE_SECRET, "ingest", 60).mint("default", "user:someone")
    assert len(storage_call(suite, "ReadStream", request, scope_metadata(own)).events) == 1
    other = ScopeSigner(DEV_SERVICE_SECRET, "ingest", 60).mint("other", "user:someone")
    answer = refused(storage_call, suite, "ReadStream", request, scope_metadata(other))
    assert (answer.code, answer.reason) == (PERMISSION_DENIED, "TENANT_SCOPE_MISMATCH")


def test_only_the_admin_service_has_the_system_scope_and_private_records(suite: Suite) -> None:
    system = scope_metadata(ScopeSigner(DEV_SERVICE_SECRET, "query", 60).mint(SYSTEM_TENANT, "system"))
    answer = refused(read_default, suite, system)
    assert (answer.code, answer.reason) == (PERMISSION_DENIED, "TENANT_SCOPE_MISMATCH")
    private = storage_pb2.ListRecordsRequest(tenant_id="", namespace="signing_keys")
    answer = refused(storage_call, suite, "ListRecords", private, system)
    assert (answer.code, answer.reason) == (PERMISSION_DENIED, "RECORD_ACCESS_DENIED")
    write = storage_pb2.PutRecordRequest(
        tenant_id="default", record=storage_pb2.Record(namespace="users", key="x", value=b"")
    )
    answer = refused(storage_call, suite, "PutRecord", write, system)
    assert (answer.code, answer.reason) == (PERMISSION_DENIED, "RECORD_ACCESS_DENIED")


def test_a_tenant_scope_cannot_reach_suite_wide_records(suite: Suite) -> None:
    """API keys, the audit log and the change feed belong to no tenant: a tenant's scope reaches none."""
    tenant_scope = scope_metadata(ScopeSigner(DEV_SERVICE_SECRET, "admin", 60).mint("default", "user:someone"))
    for namespace in ("api_keys", "audit", "auth_changes"):
        listing = storage_pb2.ListRecordsRequest(tenant_id="", namespace=namespace)
        answer = refused(storage_call, suite, "ListRecords", listing, tenant_scope)
        assert (answer.code, answer.reason) == (PERMISSION_DENIED, "TENANT_SCOPE_MISMATCH"), namespace
    write = storage_pb2.PutRecordRequest(tenant_id="", record=storage_pb2.Record(namespace="api_keys", key="x"))
    answer = refused(storage_call, suite, "PutRecord", write, tenant_scope)
    assert (answer.code, answer.reason) == (PERMISSION_DENIED, "TENANT_SCOPE_MISMATCH")


def test_append_scope_for_one_tenant_cannot_write_another(suite: Suite, unique: str) -> None:
    other = ScopeSigner(DEV_SERVICE_SECRET, "ingest", 60).mint("other", "user:someone")
    operation = storage_pb2.AppendOperation(
        tenant_id="default",
        request=recast(
            ingest_pb2.AppendEventsRequest(stream_id=unique + "injected", events=[event("Injected")]),
            model_pb2.AppendInput,
        ),
        scope=other,
    )
    reply = storage_call(suite, "Append", storage_pb2.AppendRequest(operations=[operation]), scope_metadata(other))
    outcome = reply.outcomes[0]
    assert outcome.WhichOneof("result") == "error", "the append for another tenant was written"
    info = error_info(outcome.error)
    assert info is not None and info.reason == "TENANT_SCOPE_MISMATCH"


def control_call(suite: Suite, service: str, metadata: Sequence[tuple[str, str]]) -> Any:
    with suite.raw_channel(service) as channel:
        return control_pb2_grpc.ControlServiceStub(channel).GetConfig(
            control_pb2.GetConfigRequest(), metadata=metadata, timeout=TIMEOUT
        )


@pytest.mark.parametrize("service", ["ingest", "query", "storage"])
def test_control_service_answers_the_admin_service_only(
    suite: Suite, developer: auth_pb2.TokenPair, service: str
) -> None:
    missing = {
        "no credentials": (),
        "admin API key": bearer(suite.admin_key),
        "user access token": bearer(developer.access_token),
    }
    for name, metadata in missing.items():
        answer = refused(control_call, suite, service, metadata)
        assert (answer.code, answer.reason) == (UNAUTHENTICATED, "SERVICE_CREDENTIALS_MISSING"), name
    for other in ("ingest", "query"):
        scope = ScopeSigner(DEV_SERVICE_SECRET, other, 60).mint(SYSTEM_TENANT, "system")
        answer = refused(control_call, suite, service, scope_metadata(scope))
        assert (answer.code, answer.reason) == (PERMISSION_DENIED, "SERVICE_NOT_ALLOWED")
    forged = ScopeSigner(b"guessed-secret", "admin", 60).mint(SYSTEM_TENANT, "system")
    answer = refused(control_call, suite, service, scope_metadata(forged))
    assert (answer.code, answer.reason) == (UNAUTHENTICATED, "SERVICE_CREDENTIALS_INVALID")
    # The control: a genuine admin-service scope is served.
    admin = ScopeSigner(DEV_SERVICE_SECRET, "admin", 60).mint(SYSTEM_TENANT, "system")
    assert control_call(suite, service, scope_metadata(admin)).config.service == service
