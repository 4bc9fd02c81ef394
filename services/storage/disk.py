"""Free space on the storage volume: writes are refused before RocksDB runs out of room.

Below `storage.min_free_bytes` free, and after a write failed for lack of space, every write is refused
at once with RESOURCE_EXHAUSTED / STORAGE_FULL and a retry delay, while reads go on. The backend reopens
the database once space is back (RocksDB stays read-only after such a failure until it is reopened).
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

from shared.core.errors import ResourceExhausted
from shared.core.reasons import Reason

RECHECK_S = 0.25
REOPEN_FREE_BYTES = 4 * 1024 * 1024


def out_of_space(exc: BaseException) -> bool:
    """Whether an engine error was the volume running full."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    text = str(exc).lower()
    return "no space left" in text or "nospace" in text


class DiskGuard:
    """Tells whether writes may go ahead on the volume of a directory."""

    def __init__(self, path: Path, min_free_bytes: int) -> None:
        self.path = path
        self.min_free_bytes = min_free_bytes
        self.full = False  # a write failed for lack of space; cleared when the database is reopened
        self._free = 0
        self._measured = 0.0

    def free_bytes(self) -> int:
        """Bytes available to this process on the volume (measured at most every RECHECK_S)."""
        now = time.monotonic()
        if now - self._measured > RECHECK_S:
            stat = os.statvfs(self.path)
            self._free, self._measured = stat.f_bavail * stat.f_frsize, now
        return self._free

    def check(self) -> None:
        """Raise STORAGE_FULL when writes must not go ahead."""
        if self.full or self.free_bytes() < self.min_free_bytes:
            raise ResourceExhausted(
                "the storage volume is full; writes resume by themselves once space is freed",
                reason=Reason.STORAGE_FULL,
                metadata={"free_bytes": str(self._free), "min_free_bytes": str(self.min_free_bytes)},
                retry_after=1.0,
            )

    def room_again(self) -> bool:
        """After a failure: whether there is room to write again (REOPEN_FREE_BYTES beyond the threshold,
        so that reopening, which recovers the log and flushes it, does not fail again at once)."""
        self._measured = 0.0
        return self.free_bytes() >= self.min_free_bytes + REOPEN_FREE_BYTES
