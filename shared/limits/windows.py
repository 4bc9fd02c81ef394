"""Calendar windows of quotas: UTC minutes, hours and days.

POSIX time has no leap seconds, so UTC minute, hour and day boundaries are exact multiples of 60, 3,600
and 86,400 seconds since the epoch.
"""

from __future__ import annotations

MINUTE, HOUR, DAY = 60, 3600, 86400
NS = 1_000_000_000

# Quotas that count within a window, and the window's length in seconds.
WINDOWED = {
    "max_events_per_minute": MINUTE,
    "max_events_per_hour": HOUR,
    "max_events_per_day": DAY,
    "max_queries_per_hour": HOUR,
}


def window_index(length_s: int, now_ns: int) -> int:
    """The number of the window (of this length) that contains `now_ns`."""
    return now_ns // (length_s * NS)


def window_end_ns(length_s: int, now_ns: int) -> int:
    """When the window containing `now_ns` ends, in ns since the epoch (the next UTC boundary)."""
    return (window_index(length_s, now_ns) + 1) * length_s * NS


def seconds_to_reset(length_s: int, now_ns: int) -> float:
    """Seconds until the window containing `now_ns` ends."""
    return (window_end_ns(length_s, now_ns) - now_ns) / NS
