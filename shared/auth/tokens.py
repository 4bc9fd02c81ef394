"""JWT access and refresh tokens: EdDSA (Ed25519) signatures with a `kid` header.

Verification pins the algorithm list to EdDSA (so `alg: none` and an HS256 token "signed" with the public
key are refused), requires a known `kid`, and checks issuer, audience, signature, and exp / nbf / iat
against an injectable clock with the configured skew. A verified token is cached until it expires, so
repeated calls with the same token cost a dictionary lookup; revocation and user state are checked on
every call by the caller (shared.auth.state), not cached here.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.config.settings import AuthSettings
from shared.core.errors import Unauthenticated
from shared.core.reasons import Reason

ALGORITHM = "EdDSA"
ACCESS, REFRESH = "access", "refresh"
MAX_TOKEN_BYTES = 4096
Clock = Callable[[], float]


@dataclass(frozen=True)
class SigningKey:
    """A key that signs tokens."""

    kid: str
    private: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(kid=uuid.uuid4().hex[:16], private=Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, kid: str, pem: bytes) -> SigningKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("signing keys are Ed25519")
        return cls(kid, key)

    def private_pem(self) -> bytes:
        return self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """A verification key from its PEM."""
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("verification keys are Ed25519")
    return key


@dataclass(frozen=True, slots=True)
class Claims:
    """The verified claims of a token."""

    jti: str
    subject: str
    tenant_id: str
    role: int
    token_type: str
    family: str
    issued_at: int
    expires_at: int
    # Exact issue time (the `iatn` claim): `iat` has one-second resolution, too coarse to tell a token
    # issued just after a password change or a disable from one issued just before it.
    issued_at_ns: int = 0


class TokenIssuer:
    """Signs tokens (the admin process only: it alone can read the private keys)."""

    def __init__(self, settings: AuthSettings, clock: Clock = time.time) -> None:
        self.settings = settings
        self.clock = clock

    def issue(
        self, key: SigningKey, *, subject: str, tenant_id: str, role: int, token_type: str, family: str
    ) -> tuple[str, Claims]:
        exact = self.clock()
        now = int(exact)
        ttl = self.settings.access_token_ttl_s if token_type == ACCESS else self.settings.refresh_token_ttl_s
        claims = Claims(
            jti=uuid.uuid4().hex,
            subject=subject,
            tenant_id=tenant_id,
            role=role,
            token_type=token_type,
            family=family,
            issued_at=now,
            expires_at=now + ttl,
            issued_at_ns=int(exact * 1_000_000_000),
        )
        payload = {
            "iss": self.settings.issuer,
            "aud": self.settings.audience,
            "sub": subject,
            "tenant": tenant_id,
            "role": role,
            "typ": token_type,
            "fam": family,
            "jti": claims.jti,
            "iat": now,
            "iatn": claims.issued_at_ns,
            "nbf": now,
            "exp": claims.expires_at,
        }
        token = jwt.encode(payload, key.private, algorithm=ALGORITHM, headers={"kid": key.kid})
        return token, claims


class TokenVerifier:
    """Verifies tokens with public keys looked up by kid."""

    def __init__(
        self, settings: AuthSettings, public_key: Callable[[str], Ed25519PublicKey | None], clock: Clock = time.time
    ) -> None:
        self.settings = settings
        self.public_key = public_key
        self.clock = clock
        self._cache: dict[str, Claims] = {}

    def seen(self, token: str) -> bool:
        """Whether this token's signature was verified before (its claims are cached)."""
        return token in self._cache

    def header_kid(self, token: str) -> str:
        """The kid a token names (before its signature is checked), refusing malformed headers."""
        if len(token) > MAX_TOKEN_BYTES:
            raise Unauthenticated("token too large", reason=Reason.MALFORMED_CREDENTIALS)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Unauthenticated("malformed token", reason=Reason.INVALID_TOKEN) from None
        if header.get("alg") != ALGORITHM:
            raise Unauthenticated("token algorithm not accepted", reason=Reason.INVALID_ALGORITHM)
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > 64 or not kid.isascii() or not kid.isprintable():
            raise Unauthenticated("token without a valid kid", reason=Reason.UNKNOWN_SIGNING_KEY)
        return kid

    def verify(self, token: str, *, token_type: str = ACCESS) -> Claims:
        """The claims of a valid token of this type, or UNAUTHENTICATED with a reason."""
        now = self.clock()
        claims = self._cache.get(token)
        if claims is None:
            claims = self._verify_signature(token)
            if len(self._cache) > 50_000:
                self._cache.clear()
            self._cache[token] = claims
        skew = self.settings.clock_skew_s
        if claims.expires_at + skew < now:
            raise Unauthenticated("token expired", reason=Reason.TOKEN_EXPIRED)
        if claims.issued_at - skew > now:
            raise Unauthenticated("token not yet valid", reason=Reason.TOKEN_NOT_YET_VALID)
        if claims.token_type != token_type:
            raise Unauthenticated(f"a {claims.token_type} token cannot be used here", reason=Reason.WRONG_TOKEN_TYPE)
        return claims

    def _verify_signature(self, token: str) -> Claims:
        kid = self.header_kid(token)
        key = self.public_key(kid)
        if key is None:
            raise Unauthenticated("token signed by an unknown key", reason=Reason.UNKNOWN_SIGNING_KEY)
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                options={
                    "require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"],
                    # Time is checked in verify() against the injectable clock (and again on cache hits).
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidAudienceError:
            raise Unauthenticated("token for another audience", reason=Reason.INVALID_AUDIENCE) from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("token from another issuer", reason=Reason.INVALID_ISSUER) from None
        except jwt.InvalidAlgorithmError:
            raise Unauthenticated("token algorithm not accepted", reason=Reason.INVALID_ALGORITHM) from None
        except jwt.InvalidTokenError:
            raise Unauthenticated("invalid token", reason=Reason.INVALID_TOKEN) from None
        try:
            nbf = int(payload["nbf"])
            claims = Claims(
                jti=str(payload["jti"]),
                subject=str(payload["sub"]),
                tenant_id=str(payload["tenant"]),
                role=int(payload["role"]),
                token_type=str(payload.get("typ", "")),
                family=str(payload.get("fam", "")),
                issued_at=max(int(payload["iat"]), nbf),
                expires_at=int(payload["exp"]),
                issued_at_ns=int(payload.get("iatn") or int(payload["iat"]) * 1_000_000_000),
            )
        except (KeyError, TypeError, ValueError, OverflowError):  # OverflowError: int(inf)
            raise Unauthenticated("invalid token claims", reason=Reason.INVALID_TOKEN) from None
        return claims
