"""The memory monitor's limit (configured, else the cgroup's) and its high/low-water hysteresis."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config.settings import MemorySettings
from shared.core.errors import Unavailable
from shared.limits import memory
from shared.limits.memory import MemoryMonitor, cgroup_limit, resident_bytes


def test_cgroup_limit_reads_v2_and_v1_and_treats_no_limit_as_none(tmp_path: Path) -> None:
    v2, v1 = tmp_path / "memory.max", tmp_path / "memory.limit_in_bytes"
    assert cgroup_limit((v2, v1)) == 0  # neither file
    v1.write_text("9223372036854771712\n")  # v1's "unlimited"
    assert cgroup_limit((v2, v1)) == 0
    v1.write_text("4294967296\n")
    assert cgroup_limit((v2, v1)) == 4 << 30
    v2.write_text("max\n")
    assert cgroup_limit((v2, v1)) == 0  # v2 first: no limit
    v2.write_text("2147483648\n")
    assert cgroup_limit((v2, v1)) == 2 << 30


def test_resident_bytes_is_the_process_rss() -> None:
    assert 1 << 20 < resident_bytes() < 1 << 40


def test_pressure_enters_at_high_water_and_leaves_below_low_water(monkeypatch: pytest.MonkeyPatch) -> None:
    rss = [0]
    monkeypatch.setattr(memory, "resident_bytes", lambda: rss[0])
    settings = MemorySettings(limit_bytes=1000, high_water=0.9, low_water=0.8)
    calls: list[str] = []
    monitor = MemoryMonitor(settings, lambda: calls.append("shed"), lambda: calls.append("relieve"), service="t")
    rss[0] = 899
    monitor.check()
    assert not monitor.pressured and not calls
    monitor.admit("subscriptions")
    rss[0] = 900
    monitor.check()
    assert monitor.pressured and calls == ["shed"]
    with pytest.raises(Unavailable) as refused:
        monitor.admit("subscriptions")
    assert refused.value.reason == "OVERLOADED" and refused.value.retry_after
    rss[0] = 850  # between the marks: still under pressure, still shedding
    monitor.check()
    assert monitor.pressured and calls == ["shed", "shed"]
    rss[0] = 799
    monitor.check()
    assert not monitor.pressured and calls == ["shed", "shed", "relieve"]
    monitor.admit("subscriptions")
    monitor.settings = MemorySettings(limit_bytes=0)  # off
    rss[0] = 10**12
    monitor.check()
    assert not monitor.pressured
    assert monitor.transitions == 2


def test_low_water_must_be_below_high_water() -> None:
    with pytest.raises(ValueError, match="low_water must be below high_water"):
        MemorySettings(high_water=0.5, low_water=0.5)
