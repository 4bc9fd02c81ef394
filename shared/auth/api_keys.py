"""API-key secrets: `as_<key id>_<secret>`. Only an HMAC of the secret is stored, under a server pepper;
the key id embedded in the secret finds the record in one lookup (never a scan), and the comparison is
constant-time."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

PREFIX = "as_"
_FORMAT = re.compile(r"as_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")


def generate() -> tuple[str, str, str]:
    """(key id, secret part, full secret) for a new key."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return key_id, secret, f"{PREFIX}{key_id}_{secret}"


def new_secret(key_id: str) -> tuple[str, str]:
    """(secret part, full secret) for an existing key id (rotation)."""
    secret = secrets.token_urlsafe(32)
    return secret, f"{PREFIX}{key_id}_{secret}"


def parse(token: str) -> tuple[str, str] | None:
    """(key id, secret part) of a well-formed key, else None."""
    match = _FORMAT.fullmatch(token)
    return (match.group(1), match.group(2)) if match else None


def digest(pepper: bytes, key_id: str, secret: str) -> bytes:
    """The stored form of a secret."""
    return hmac.new(pepper, f"{key_id}:{secret}".encode(), hashlib.sha256).digest()


def matches(pepper: bytes, key_id: str, secret: str, stored: bytes) -> bool:
    """Constant-time comparison of a presented secret with a stored digest."""
    return bool(stored) and hmac.compare_digest(digest(pepper, key_id, secret), stored)
