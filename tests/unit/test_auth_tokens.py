"""Credentials in isolation: JWTs (with an injected clock), signed service scopes, API keys, passwords.

No processes: every check here is the library code the guards call. The end-to-end versions of these
attacks are in tests/integration/test_auth_attacks.py.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import statistics
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from shared.auth import api_keys, scopes
from shared.auth.passwords import Passwords
from shared.auth.scopes import Scope, ScopeSigner, ScopeVerifier, require_tenant
from shared.auth.tokens import ACCESS, MAX_TOKEN_BYTES, REFRESH, SigningKey, TokenIssuer, TokenVerifier
from shared.config.settings import AuthSettings
from shared.core.errors import PermissionDenied, Unauthenticated

NOW = 1_800_000_000.0
SETTINGS = AuthSettings()  # issuer and audience "allsource", 30 s skew, 900 s access tokens
SKEW = SETTINGS.clock_skew_s
USER = {"subject": "user-1", "tenant_id": "default", "role": 3, "family": "fam-1"}


# -- helpers ------------------------------------------------------------------------------------------


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def assemble(header: dict[str, Any], payload: dict[str, Any], signature: bytes | str = b"") -> str:
    """A compact JWS built by hand (so that nothing refuses to build an attack token)."""
    sig = signature if isinstance(signature, str) else b64url(signature)
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}.{sig}"


def sign_raw(key: SigningKey, header: dict[str, Any], payload: dict[str, Any] | bytes) -> str:
    """A token with exactly this header, really signed by `key` (PyJWT would refuse some headers)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(body)}"
    return f"{signing_input}.{b64url(key.private.sign(signing_input.encode()))}"


def claims_of(token: str) -> dict[str, Any]:
    return json.loads(b64url_decode(token.split(".")[1]))


class Keys:
    """The verifier's key store: public keys by kid, counting lookups."""

    def __init__(self, *keys: SigningKey) -> None:
        self.by_kid = {k.kid: k.private.public_key() for k in keys}
        self.lookups = 0

    def __call__(self, kid: str) -> Ed25519PublicKey | None:
        self.lookups += 1
        return self.by_kid.get(kid)


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def keys(key: SigningKey) -> Keys:
    return Keys(key)


@pytest.fixture
def verifier(keys: Keys, clock: Clock) -> TokenVerifier:
    return TokenVerifier(SETTINGS, keys, clock)


def issue(key: SigningKey, *, at: float = NOW, token_type: str = ACCESS, settings: AuthSettings = SETTINGS) -> str:
    token, _ = TokenIssuer(settings, clock=lambda: at).issue(key, token_type=token_type, **USER)  # type: ignore[arg-type]
    return token


def signed(key: SigningKey, **changes: Any) -> str:
    """A token signed by `key` whose claims are the issuer's with `changes` (None removes a claim)."""
    payload = claims_of(issue(key))
    for name, value in changes.items():
        if value is None:
            payload.pop(name, None)
        else:
            payload[name] = value
    return jwt.encode(payload, key.private, algorithm="EdDSA", headers={"kid": key.kid})


def refusal(verify: Callable[[], object]) -> str:
    """The ErrorInfo reason of an UNAUTHENTICATED refusal."""
    with pytest.raises(Unauthenticated) as err:
        verify()
    return err.value.reason


# -- JWTs ---------------------------------------------------------------------------------------------


def test_issued_token_verifies(key: SigningKey, verifier: TokenVerifier) -> None:
    token = issue(key)
    assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "kid": key.kid, "typ": "JWT"}
    claims = verifier.verify(token)
    assert (claims.subject, claims.tenant_id, claims.role, claims.family) == ("user-1", "default", 3, "fam-1")
    assert (claims.token_type, claims.issued_at, claims.expires_at) == (ACCESS, NOW, NOW + 900)
    assert verifier.verify(issue(key, token_type=REFRESH), token_type=REFRESH).token_type == REFRESH


def test_expired_token_is_refused(key: SigningKey, verifier: TokenVerifier, clock: Clock) -> None:
    token = issue(key)
    clock.now = NOW + 900 + SKEW  # the last second the skew tolerates
    verifier.verify(token)
    clock.now += 1
    assert refusal(lambda: verifier.verify(token)) == "TOKEN_EXPIRED"


def test_token_issued_in_the_future_is_not_yet_valid(key: SigningKey, verifier: TokenVerifier) -> None:
    verifier.verify(issue(key, at=NOW + SKEW))  # within the skew
    assert refusal(lambda: verifier.verify(issue(key, at=NOW + SKEW + 1))) == "TOKEN_NOT_YET_VALID"


def test_nbf_in_the_future_is_not_yet_valid(key: SigningKey, verifier: TokenVerifier) -> None:
    # iat is now, only nbf lies ahead
    assert refusal(lambda: verifier.verify(signed(key, nbf=int(NOW) + SKEW + 60))) == "TOKEN_NOT_YET_VALID"


def test_refresh_token_cannot_be_used_as_access_token(key: SigningKey, verifier: TokenVerifier) -> None:
    assert refusal(lambda: verifier.verify(issue(key, token_type=REFRESH))) == "WRONG_TOKEN_TYPE"
    assert refusal(lambda: verifier.verify(issue(key), token_type=REFRESH)) == "WRONG_TOKEN_TYPE"


def test_wrong_audience_is_refused(key: SigningKey, verifier: TokenVerifier) -> None:
    token = issue(key, settings=AuthSettings(audience="another-deployment"))
    assert refusal(lambda: verifier.verify(token)) == "INVALID_AUDIENCE"
    assert refusal(lambda: verifier.verify(signed(key, aud=None))) == "INVALID_TOKEN"  # aud is required


def test_wrong_issuer_is_refused(key: SigningKey, verifier: TokenVerifier) -> None:
    token = issue(key, settings=AuthSettings(issuer="someone-else"))
    assert refusal(lambda: verifier.verify(token)) == "INVALID_ISSUER"


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf", "iss", "aud", "sub", "jti", "tenant", "role"])
def test_token_without_a_required_claim_is_refused(key: SigningKey, verifier: TokenVerifier, claim: str) -> None:
    assert refusal(lambda: verifier.verify(signed(key, **{claim: None}))) == "INVALID_TOKEN"


@pytest.mark.parametrize(
    "changes",
    [
        {"role": "admin"},
        {"iat": "soon"},
        {"exp": [1]},
        {"nbf": None},
        {"exp": float("inf")},
    ],
    ids=["role", "iat", "exp", "nbf", "exp-infinity"],
)
def test_validly_signed_token_with_ill_typed_claims_is_refused(
    key: SigningKey, verifier: TokenVerifier, changes: dict[str, Any]
) -> None:
    token = sign_raw(key, {"alg": "EdDSA", "kid": key.kid}, claims_of(issue(key)) | changes)
    assert refusal(lambda: verifier.verify(token)) == "INVALID_TOKEN"


@pytest.mark.parametrize("header", [{"alg": "none"}, {"alg": "none", "kid": "K"}, {"alg": "None", "kid": "K"}])
def test_alg_none_is_refused(key: SigningKey, verifier: TokenVerifier, header: dict[str, str]) -> None:
    if "kid" in header:
        header = {**header, "kid": key.kid}
    token = assemble({"typ": "JWT", **header}, claims_of(issue(key)))
    assert refusal(lambda: verifier.verify(token)) == "INVALID_ALGORITHM"


def test_hs256_signed_with_the_public_key_is_refused(key: SigningKey, verifier: TokenVerifier) -> None:
    # The classic key-confusion attack: the verifier's public key PEM used as an HMAC secret.
    header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
    payload = claims_of(issue(key)) | {"role": 1}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    mac = hmac.new(key.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{b64url(mac)}"
    assert refusal(lambda: verifier.verify(token)) == "INVALID_ALGORITHM"


def test_unknown_kid_is_refused(key: SigningKey, verifier: TokenVerifier) -> None:
    stranger = SigningKey.generate()
    assert refusal(lambda: verifier.verify(issue(stranger))) == "UNKNOWN_SIGNING_KEY"


@pytest.mark.parametrize(
    ("kid", "reason"),
    [
        (None, "UNKNOWN_SIGNING_KEY"),
        ("", "UNKNOWN_SIGNING_KEY"),
        ("k" * 65, "UNKNOWN_SIGNING_KEY"),
        (42, "INVALID_TOKEN"),  # PyJWT refuses a non-string kid while reading the header
        (["k"], "INVALID_TOKEN"),
        ("k" * 10_000, "MALFORMED_CREDENTIALS"),  # over MAX_TOKEN_BYTES: refused before parsing
    ],
)
def test_missing_or_invalid_kid_is_refused(key: SigningKey, verifier: TokenVerifier, kid: object, reason: str) -> None:
    header: dict[str, object] = {"alg": "EdDSA", "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    token = sign_raw(key, header, claims_of(issue(key)))
    assert refusal(lambda: verifier.verify(token)) == reason


@pytest.mark.parametrize("changes", [{"tenant": "other"}, {"role": 1}, {"sub": "admin"}, {"exp": int(NOW) + 10**6}])
def test_tampered_payload_is_refused(key: SigningKey, verifier: TokenVerifier, changes: dict[str, Any]) -> None:
    token = issue(key)
    header, _, signature = token.split(".")
    forged = f"{header}.{b64url(json.dumps(claims_of(token) | changes).encode())}.{signature}"
    assert refusal(lambda: verifier.verify(forged)) == "INVALID_TOKEN"
    verifier.verify(token)  # the original still verifies


def test_token_signed_by_another_key_under_a_known_kid_is_refused(key: SigningKey, verifier: TokenVerifier) -> None:
    impostor = SigningKey(kid=key.kid, private=SigningKey.generate().private)
    assert refusal(lambda: verifier.verify(issue(impostor))) == "INVALID_TOKEN"


def test_oversized_token_is_refused_before_parsing(key: SigningKey, verifier: TokenVerifier, keys: Keys) -> None:
    token = signed(key, pad="x" * MAX_TOKEN_BYTES)
    assert refusal(lambda: verifier.verify(token)) == "MALFORMED_CREDENTIALS"
    assert keys.lookups == 0


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "garbage",
        "a.b.c",
        "...",
        "eyJhbGciOiJFZERTQSJ9.%%%.***",
        f"{b64url(b'[]')}.{b64url(b'{}')}.",
        f"{b64url(b'not json')}.{b64url(b'{}')}.x",
        "\u00e9\u00e9.\u00e9.\u00e9",
    ],
)
def test_garbage_is_refused(verifier: TokenVerifier, garbage: str) -> None:
    assert refusal(lambda: verifier.verify(garbage)) == "INVALID_TOKEN"


def test_payload_that_is_not_json_is_refused(key: SigningKey, verifier: TokenVerifier) -> None:
    token = sign_raw(key, {"alg": "EdDSA", "kid": key.kid}, b"not json")
    assert refusal(lambda: verifier.verify(token)) == "INVALID_TOKEN"


def test_cache_hit_still_enforces_expiry_and_type(
    key: SigningKey, verifier: TokenVerifier, keys: Keys, clock: Clock
) -> None:
    token = issue(key)
    verifier.verify(token)
    verifier.verify(token)
    assert keys.lookups == 1  # the second call was a cache hit
    assert refusal(lambda: verifier.verify(token, token_type=REFRESH)) == "WRONG_TOKEN_TYPE"
    clock.now = NOW + 900 + SKEW + 1
    assert refusal(lambda: verifier.verify(token)) == "TOKEN_EXPIRED"
    assert keys.lookups == 1


def test_refused_tokens_are_not_cached(key: SigningKey, verifier: TokenVerifier, keys: Keys) -> None:
    stranger = issue(SigningKey(kid=key.kid, private=SigningKey.generate().private))
    for _ in range(2):
        assert refusal(lambda: verifier.verify(stranger)) == "INVALID_TOKEN"
    assert keys.lookups == 2


# -- signed service scopes ----------------------------------------------------------------------------

SECRET = b"scope-secret"


def mint(service: str = "ingest", tenant: str = "tenant-a", secret: bytes = SECRET, ttl_s: int = 60) -> str:
    return ScopeSigner(secret, service, ttl_s).mint(tenant, "user:u1")


def scope_refusal(token: str, secret: bytes = SECRET) -> str:
    with pytest.raises(Unauthenticated) as err:
        ScopeVerifier(secret).verify(token)
    return err.value.reason


def test_scope_round_trip() -> None:
    token = mint()
    scope = ScopeVerifier(SECRET).verify(token)
    assert scope == Scope("ingest", "tenant-a", "user:u1", scope.expires)
    assert 0 < scope.expires - time.time() <= 60
    assert ScopeVerifier(SECRET).verify(token) == scope


@pytest.mark.parametrize(
    ("name", "forge"),
    [
        ("tampered tenant", lambda t: t.replace("|tenant-a|", "|tenant-b|")),
        ("tampered service", lambda t: t.replace("v1|ingest|", "v1|admin|")),
        ("tampered principal", lambda t: t.replace("|user:u1|", "|user:root|")),
        ("tampered expiry", lambda t: re.sub(r"\|(\d+)\|", lambda m: f"|{int(m.group(1)) + 3600}|", t)),
        ("truncated mac", lambda t: t[:-1]),
        ("no mac", lambda t: t[: t.rfind("|")]),
        ("empty mac", lambda t: t[: t.rfind("|") + 1]),
        ("extra field", lambda t: t + "|x"),
        ("other version", lambda t: "v2" + t[2:]),
        ("empty", lambda t: ""),
        ("non-numeric expiry", lambda t: re.sub(r"\|(\d+)\|", "|soon|", t)),
    ],
)
def test_forged_scope_is_refused(name: str, forge: Callable[[str], str]) -> None:
    assert scope_refusal(forge(mint())) == "SERVICE_CREDENTIALS_INVALID", name


def test_scope_signed_with_another_secret_is_refused() -> None:
    assert scope_refusal(mint(secret=b"not-the-suite-secret")) == "SERVICE_CREDENTIALS_INVALID"


def test_expired_scope_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    assert scope_refusal(mint(ttl_s=-1)) == "SERVICE_CREDENTIALS_EXPIRED"
    # a scope that was valid (and cached) expires on a cache hit too
    token = mint(ttl_s=60)
    verifier = ScopeVerifier(SECRET)
    verifier.verify(token)
    later = time.time() + 61
    monkeypatch.setattr(scopes, "time", SimpleNamespace(time=lambda: later))
    with pytest.raises(Unauthenticated) as err:
        verifier.verify(token)
    assert (err.value.code.name, err.value.reason) == ("UNAUTHENTICATED", "SERVICE_CREDENTIALS_EXPIRED")


def test_require_tenant_refuses_another_tenant() -> None:
    scope = ScopeVerifier(SECRET).verify(mint(tenant="tenant-a"))
    require_tenant(scope, "tenant-a")
    with pytest.raises(PermissionDenied) as err:
        require_tenant(scope, "tenant-b")
    assert err.value.reason == "TENANT_SCOPE_MISMATCH"
    require_tenant(scope._replace(tenant_id=scopes.SYSTEM_TENANT), "tenant-b")  # the system scope


# -- API keys -----------------------------------------------------------------------------------------

PEPPER = b"pepper"


def test_api_key_generate_parse_digest_matches() -> None:
    key_id, secret, full = api_keys.generate()
    assert re.fullmatch(r"as_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", full)
    assert api_keys.parse(full) == (key_id, secret)
    stored = api_keys.digest(PEPPER, key_id, secret)
    assert stored == api_keys.digest(PEPPER, key_id, secret) and len(stored) == 32
    assert secret.encode() not in stored
    assert api_keys.matches(PEPPER, key_id, secret, stored)
    new_secret, new_full = api_keys.new_secret(key_id)
    assert api_keys.parse(new_full) == (key_id, new_secret) and new_secret != secret


def test_api_key_with_the_right_id_and_a_wrong_secret_fails() -> None:
    key_id, secret, _ = api_keys.generate()
    stored = api_keys.digest(PEPPER, key_id, secret)
    _, other_secret, _ = api_keys.generate()
    assert not api_keys.matches(PEPPER, key_id, other_secret, stored)
    assert not api_keys.matches(PEPPER, key_id, secret[:-1] + ("A" if secret[-1] != "A" else "B"), stored)
    assert not api_keys.matches(b"another pepper", key_id, secret, stored)
    other_id, _, _ = api_keys.generate()
    assert not api_keys.matches(PEPPER, other_id, secret, stored)  # the digest binds the key id
    assert not api_keys.matches(PEPPER, key_id, secret, b"")  # no stored secret matches nothing


@pytest.mark.parametrize(
    "malformed",
    [
        "",
        "as_",
        "as_0123456789abcdef",
        "as_0123456789ABCDEF_" + "a" * 43,
        "as_0123456789abcde_" + "a" * 43,
        "as_0123456789abcdef_" + "a" * 42,
        "as_0123456789abcdef_" + "a" * 44,
        "as_0123456789abcdef_" + "a" * 42 + "!",
        "as_0123456789abcdef_" + "a" * 43 + "\n",
        "xs_0123456789abcdef_" + "a" * 43,
    ],
)
def test_malformed_api_keys_do_not_parse(malformed: str) -> None:
    assert api_keys.parse(malformed) is None


def test_api_key_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)  # api_keys calls hmac.compare_digest at call time
    key_id, secret, _ = api_keys.generate()
    stored = api_keys.digest(PEPPER, key_id, secret)
    assert api_keys.matches(PEPPER, key_id, secret, stored)
    assert not api_keys.matches(PEPPER, key_id, "x" * 43, stored)
    assert calls == [(stored, stored), (api_keys.digest(PEPPER, key_id, "x" * 43), stored)]


# -- passwords ----------------------------------------------------------------------------------------

FAST = AuthSettings(argon2_memory_kib=8192, argon2_time_cost=1)


def test_password_hash_and_verify() -> None:
    passwords = Passwords(FAST)

    async def run() -> None:
        hashed = await passwords.hash("correct horse battery staple")
        assert hashed.startswith("$argon2id$v=19$m=8192,t=1,p=1$")
        assert await passwords.verify(hashed, "correct horse battery staple")
        assert not await passwords.verify(hashed, "correct horse battery stapl")
        assert not await passwords.verify(hashed, "")
        assert await passwords.hash("correct horse battery staple") != hashed  # salted
        assert not await passwords.verify(None, "correct horse battery staple")
        assert not await passwords.verify("", "correct horse battery staple")
        assert not await passwords.verify("$argon2id$not-a-hash", "correct horse battery staple")

    asyncio.run(run())


def test_missing_hash_costs_as_much_as_a_real_verify() -> None:
    passwords = Passwords(FAST)

    async def timings() -> tuple[float, float]:
        hashed = await passwords.hash("correct horse battery staple")
        real, missing = [], []
        for _ in range(15):
            started = time.perf_counter()
            assert not await passwords.verify(hashed, "wrong password")
            real.append(time.perf_counter() - started)
            started = time.perf_counter()
            assert not await passwords.verify(None, "wrong password")
            missing.append(time.perf_counter() - started)
        return statistics.median(real), statistics.median(missing)

    real, missing = asyncio.run(timings())
    assert 1 / 3 < missing / real < 3, f"real verify {real * 1000:.2f} ms, missing hash {missing * 1000:.2f} ms"
