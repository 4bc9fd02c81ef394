"""AIP-158 pagination: page sizes and opaque page tokens.

A page token is URL-safe base64 of a flat binary record: a format byte, a 12-byte fingerprint of the
request it belongs to (tenant and every parameter except the page size and token), then the cursor's
fields, each a one-letter name and a signed integer (8 bytes) or a text (a length byte pair and UTF-8). It
cannot nest, and a token longer than MAX_TOKEN_CHARS is refused before it is decoded. A token used with
different parameters, or damaged, is rejected with INVALID_ARGUMENT reason INVALID_PAGE_TOKEN.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from typing import Any

from shared.core.errors import InvalidArgument
from shared.core.reasons import Reason

FORMAT = 1
MAX_TOKEN_CHARS = 8192
MAX_TEXT = 4096
_I64 = struct.Struct(">q")
_U16 = struct.Struct(">H")


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
    """An opaque token for the cursor (one-letter keys; 64-bit integers or short texts)."""
    out = bytearray((FORMAT,)) + bytes.fromhex(bound_to)
    for key, value in cursor.items():
        out += key.encode("ascii")
        if isinstance(value, int):
            out += b"i" + _I64.pack(value)
        else:
            text = str(value).encode()
            out += b"s" + _U16.pack(len(text)) + text
    return base64.urlsafe_b64encode(bytes(out)).rstrip(b"=").decode()


def decode(token: str, bound_to: str) -> dict[str, Any]:
    """The cursor in a token, checking that it belongs to this request."""
    cursor = _parse(token, bound_to)
    if cursor is None:
        raise InvalidArgument(
            "page_token is not valid for this request; repeat the request with the same parameters",
            reason=Reason.INVALID_PAGE_TOKEN,
            violations=[("page_token", "damaged, or issued for different request parameters")],
        )
    return cursor


def _parse(token: str, bound_to: str) -> dict[str, Any] | None:
    if len(token) > MAX_TOKEN_CHARS:
        return None
    try:
        raw = base64.urlsafe_b64decode((token + "=" * (-len(token) % 4)).encode("ascii"))
    except (ValueError, binascii.Error, UnicodeEncodeError):
        return None
    fingerprint = bytes.fromhex(bound_to)
    if raw[:1] != bytes((FORMAT,)) or raw[1 : 1 + len(fingerprint)] != fingerprint:
        return None
    cursor: dict[str, Any] = {}
    at = 1 + len(fingerprint)
    try:
        while at < len(raw):
            key, kind = chr(raw[at]), raw[at + 1 : at + 2]
            at += 2
            if kind == b"i":
                cursor[key] = _I64.unpack_from(raw, at)[0]
                at += 8
            elif kind == b"s":
                (size,) = _U16.unpack_from(raw, at)
                text = raw[at + 2 : at + 2 + size]
                if len(text) != size or size > MAX_TEXT:
                    return None
                cursor[key] = text.decode()
                at += 2 + size
            else:
                return None
    except (struct.error, IndexError, UnicodeDecodeError):
        return None
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
