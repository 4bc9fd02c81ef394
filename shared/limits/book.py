"""Quota overrides and emergency throttles as a public process knows them, kept current from storage.

Both are suite-wide records (shared.limits.plans). The admin service writes one and then an entry of
kind LIMITS_CHANGED on the auth change feed, which every process follows by a watch stream: the process
reads both namespaces again at once, so a throttle or override takes effect on every replica within
milliseconds (well inside the 2 s the roadmap asks). They are read again in full every
`auth.change_resync_s` as a safety net and at start, so they survive restarts; expiry is checked on
use, so an override or throttle ends on time without any message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from allsource.v1 import admin_pb2

from shared.core.errors import AllSourceError
from shared.limits.plans import NS_QUOTA_OVERRIDES, NS_THROTTLES, Overrides, split_override_key

if TYPE_CHECKING:
    from shared.auth.state import RecordStore

log = logging.getLogger(__name__)
PAGE = 1000


@dataclass(frozen=True, slots=True)
class Throttle:
    """A ceiling on calls per second (per replica) for a tenant or, under key "*", the suite."""

    calls_per_second: float
    expires_ns: int  # 0: until cleared


class LimitBook:
    """Overrides and throttles in force, read from storage."""

    def __init__(self, records: RecordStore, *, resync_s: float = 30.0) -> None:
        self.records = records
        self.resync_s = resync_s
        self.overrides = Overrides()
        self.throttles: dict[str, Throttle] = {}
        self.version = 0  # bumped whenever anything changes (cached plans and limits check it)
        self.loaded = False
        self._wake = asyncio.Event()
        self.on_change: list[Callable[[], None]] = []

    def changed(self) -> None:
        """Something changed (a LIMITS_CHANGED entry of the change feed): read everything again."""
        self._wake.set()

    async def load(self) -> None:
        """Read every override and throttle."""
        overrides = []
        for key, value in await self._all(NS_QUOTA_OVERRIDES):
            tenant_id, quota = split_override_key(key)
            record = admin_pb2.QuotaOverride.FromString(value)
            overrides.append((tenant_id, quota, record.value, record.expires_at.ToNanoseconds()))
        throttles = {}
        for key, value in await self._all(NS_THROTTLES):
            throttle = admin_pb2.EmergencyThrottle.FromString(value)
            expires = throttle.expires_at.ToNanoseconds() if throttle.HasField("expires_at") else 0
            throttles[key] = Throttle(throttle.calls_per_second, expires)
        before = self.overrides.version
        self.overrides.replace(overrides)
        if self.overrides.version != before or throttles != self.throttles:
            self.throttles = throttles
            self.version += 1
            for callback in self.on_change:
                callback()
        self.loaded = True

    async def _all(self, namespace: str) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        after = ""
        while True:
            page = await self.records.list("", namespace, after, PAGE)
            out += [(key, value) for key, value, _ in page]
            if len(page) < PAGE:
                return out
            after = page[-1][0]

    def throttle(self, key: str, now_ns: int) -> Throttle | None:
        """The throttle in force under a key (a tenant id, or "*"), if any."""
        found = self.throttles.get(key)
        if found is None or (found.expires_ns and found.expires_ns <= now_ns):
            return None
        return found

    async def run(self, stop: asyncio.Event) -> None:
        """Read at start, again when told something changed, and every resync_s; until stop is set."""
        while not stop.is_set():
            self._wake.clear()
            try:
                await self.load()
            except AllSourceError as exc:
                log.warning("cannot read quota overrides and throttles; retrying", extra={"detail": exc.message})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
                continue
            waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait(waits, timeout=self.resync_s, return_when=asyncio.FIRST_COMPLETED)
            for waiting in waits:
                waiting.cancel()
