"""Memory-pressure detection: act before the process is at risk of the out-of-memory killer.

A monitor reads the process's resident set size (/proc/self/statm) every `memory.check_interval_s`
and compares it with a limit: `memory.limit_bytes` when set (0 turns the monitor off), else the cgroup's
memory limit when the process runs under one (v2 memory.max, v1 memory.limit_in_bytes), else none (off).
At `memory.high_water` of the limit the process is under pressure: the service's `shed` hook runs
(the query service empties its read cache and keeps nothing new; storage shrinks its RocksDB block
cache) and `admit` refuses new long-lived work (subscriptions, Consume streams) with UNAVAILABLE /
OVERLOADED and RetryInfo, until the resident size falls below `memory.low_water` of the limit (then
`relieve` runs: the caches grow again). Each transition is logged (a warning entering, info leaving)
and the state is exported as gauges. A reload (SIGHUP) re-checks at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily

from shared.config.settings import MemorySettings
from shared.core.errors import Unavailable
from shared.core.reasons import Reason
from shared.telemetry import metrics

log = logging.getLogger(__name__)
CGROUP_FILES = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
NO_LIMIT = 1 << 60  # cgroup v1 reports "no limit" as a number near 2**63
RETRY_AFTER_S = 5.0


def resident_bytes(statm: Path = Path("/proc/self/statm")) -> int:
    """The process's resident set size (0 where /proc is not available)."""
    try:
        return int(statm.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def cgroup_limit(files: tuple[Path, ...] = CGROUP_FILES) -> int:
    """The memory limit of the process's cgroup, or 0 when there is none (or it cannot be read)."""
    for path in files:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text == "max":
            return 0
        with contextlib.suppress(ValueError):
            value = int(text)
            return value if 0 < value < NO_LIMIT else 0
    return 0


class MemoryMonitor:
    """Watches the resident size against the limit; `pressured` while between high and low water."""

    def __init__(
        self, settings: MemorySettings, shed: Callable[[], None], relieve: Callable[[], None], *, service: str
    ) -> None:
        self.settings = settings
        self.shed = shed
        self.relieve = relieve
        self.service = service
        self.pressured = False
        self.rss = 0
        self.limit = 0
        self.transitions = 0
        self._cgroup = cgroup_limit()

    def effective_limit(self) -> int:
        """The limit in force (0: off)."""
        configured = self.settings.limit_bytes
        return self._cgroup if configured is None else configured

    def check(self) -> None:
        """Read the resident size once and move in or out of pressure."""
        self.rss, self.limit = resident_bytes(), self.effective_limit()
        high, low = self.settings.high_water * self.limit, self.settings.low_water * self.limit
        if not self.pressured and self.limit and self.rss >= high:
            self.pressured = True
            self.transitions += 1
            log.warning(
                "memory pressure: shedding caches and refusing new subscriptions",
                extra={"rss_bytes": self.rss, "limit_bytes": self.limit, "high_water_bytes": int(high)},
            )
        elif self.pressured and (not self.limit or self.rss < low):
            self.pressured = False
            self.transitions += 1
            self.relieve()
            log.info(
                "memory pressure over: caches and new subscriptions are back",
                extra={"rss_bytes": self.rss, "limit_bytes": self.limit, "low_water_bytes": int(low)},
            )
        if self.pressured:
            self.shed()  # every check while under pressure: nothing kept meanwhile stays

    def admit(self, what: str) -> None:
        """Refuse new long-lived work (`what`, e.g. "subscriptions") while under pressure."""
        if self.pressured:
            raise Unavailable(
                f"this {self.service} replica is short of memory and takes no new {what}; retry later or on "
                "another replica",
                reason=Reason.OVERLOADED,
                metadata={"limit": "memory.limit_bytes", "value": str(self.limit), "rss_bytes": str(self.rss)},
                retry_after=RETRY_AFTER_S,
            )

    def metric_families(self) -> Iterator[GaugeMetricFamily]:
        """The monitor's gauges, labelled with its service."""
        label = {"service": self.service}
        yield metrics.gauge(
            "allsource_memory_pressure",
            "1 while the process's resident size is past memory.high_water of its limit (caches shed, new "
            "subscriptions refused) and not yet back below memory.low_water.",
            int(self.pressured),
            label,
        )
        yield metrics.gauge("allsource_memory_limit_bytes", "The memory limit in force (0: none).", self.limit, label)
        yield metrics.gauge("allsource_memory_resident_bytes", "Resident size at the last check.", self.rss, label)

    async def run(self, stop: asyncio.Event) -> None:
        """Check every memory.check_interval_s until stop is set."""
        while not stop.is_set():
            self.check()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.check_interval_s)
