"""AIP-158 pagination: page sizes and opaque page tokens.

A page token is URL-safe base64 of a small JSON document holding the cursor and a fingerprint of the
request it belongs to (tenant and every parameter except the page size and token). A token used with
different parameters, or damaged, is rejected with INVALID_ARGUMENT reason INVALID_PAGE_TOKEN.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from shared.core.errors import InvalidArgument
from shared.core.reasons import Reason


def page_size(requested: int, default: int, maximum: int, field: str = "page_size") -> int:
    """The effective page size: 0 means the default, above the maximum means the maximum."""
    if requested < 0:
        raise InvalidArgument(f"{field} must not be negative", violations=[(field, "must not be negative")])
    if requested == 0:
        return default
    return min(requested, maximum)


def fingerprint(*parts: Any) -> str:
    """A short digest of the parameters a token is bound to."""
    digest = hashlib.blake2b(digest_size=12)
    for part in parts:
        digest.update(part if isinstance(part, bytes) else repr(part).encode())
        digest.update(b"\x1f")
    return digest.hexdigest()


def encode(bound_to: str, cursor: dict[str, Any]) -> str:
    """An opaque token for the cursor."""
    raw = json.dumps({"f": bound_to, "c": cursor}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode(token: str, bound_to: str) -> dict[str, Any]:
    """The cursor in a token, checking that it belongs to this request."""
    try:
        padded = token + "=" * (-len(token) % 4)
        doc = json.loads(base64.urlsafe_b64decode(padded.encode()))
        cursor = doc["c"]
        valid = isinstance(cursor, dict) and doc["f"] == bound_to
    except (ValueError, KeyError, TypeError, binascii.Error):
        valid = False
    if not valid:
        raise InvalidArgument(
            "page_token is not valid for this request; repeat the request with the same parameters",
            reason=Reason.INVALID_PAGE_TOKEN,
            violations=[("page_token", "damaged, or issued for different request parameters")],
        )
    return cursor


def _damaged() -> InvalidArgument:
    return InvalidArgument(
        "page_token is not valid", reason=Reason.INVALID_PAGE_TOKEN, violations=[("page_token", "damaged")]
    )


def cursor_int(cursor: dict[str, Any], key: str) -> int:
    """A non-negative 64-bit integer from a decoded cursor (tokens are opaque, not trusted)."""
    value = cursor.get(key)
    if type(value) is not int or not 0 <= value < 2**63:
        raise _damaged()
    return value


def cursor_str(cursor: dict[str, Any], key: str) -> str:
    """A string from a decoded cursor: valid UTF-8 text, at most 4 KiB."""
    value = cursor.get(key, "")
    if not isinstance(value, str) or len(value) > 4096:
        raise _damaged()
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate from a forged token
        raise _damaged() from None
    return value
