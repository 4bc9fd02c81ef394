"""Hand encoding of the few protobuf wire fragments built on hot paths (forwarding bytes, not messages)."""

from __future__ import annotations

from typing import TypeVar

from google.protobuf.message import Message

M = TypeVar("M", bound=Message)


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


def recast(message: Message, target: type[M]) -> M:
    """A message as another type with the same wire format (the storage service's types and the public
    API's mirror each other; tests/unit/test_wire_compat.py keeps them so)."""
    return target.FromString(message.SerializeToString())


class Prebuilt:
    """A unary response the handler serialized itself (bytes forwarded from a cache or from storage):
    the call chain sends `data` as it is. `results` is the number of results it carries (what a page
    read is charged for)."""

    __slots__ = ("data", "results")

    def __init__(self, data: bytes, results: int) -> None:
        self.data = data
        self.results = results
