"""Hand encoding of the few protobuf wire fragments built on hot paths (forwarding bytes, not messages)."""

from __future__ import annotations


def varint(value: int) -> bytes:
    """Protobuf base-128 varint encoding of a non-negative integer."""
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def length_delimited(tag: bytes, data: bytes) -> bytes:
    """A length-delimited field: tag, length, bytes."""
    return tag + varint(len(data)) + data
