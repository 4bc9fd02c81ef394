"""Five-field cron expressions in UTC (minute, hour, day of month, month, day of week) for backup
schedules: numbers, `*`, lists, ranges and steps; day of week 0-7 (0 and 7 are Sunday). When both day
fields are restricted a day matches either, as in Vixie cron."""

from __future__ import annotations

import calendar
import time

_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
# The search for the next run gives up past this many minutes (a year and a day): "31 2 *" never matches.
_HORIZON_MIN = 366 * 24 * 60 + 1440


class CronError(ValueError):
    """A malformed cron expression."""


def _field(text: str, name: str, lo: int, hi: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if body == "*":
                start, end = lo, hi
            elif "-" in body:
                a, b = body.split("-", 1)
                start, end = int(a), int(b)
            else:
                start = end = int(body)
                if step_text:
                    end = hi
        except ValueError:
            raise CronError(f"{name}: {part!r} is not a number, range, list or step") from None
        if step < 1 or not (lo <= start <= end <= hi):
            raise CronError(f"{name}: {part!r} is outside {lo}-{hi}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


class Cron:
    """A parsed expression."""

    def __init__(self, expression: str) -> None:
        parts = expression.split()
        if len(parts) != 5:
            raise CronError("a cron expression has five fields: minute hour day-of-month month day-of-week")
        fields = [_field(p, *spec) for p, spec in zip(parts, _FIELDS, strict=True)]
        self.minutes, self.hours, self.days, self.months, dows = fields
        self.dows = frozenset(d % 7 for d in dows)
        self.any_day = parts[2] == "*"
        self.any_dow = parts[4] == "*"

    def _day_matches(self, tm: time.struct_time) -> bool:
        dom = tm.tm_mday in self.days
        dow = (tm.tm_wday + 1) % 7 in self.dows  # struct_time: Monday 0; cron: Sunday 0
        if self.any_day or self.any_dow:
            return dom and dow
        return dom or dow

    def next_after(self, after_s: float) -> float | None:
        """The first matching minute strictly after a time (epoch seconds), or None within a year."""
        t = (int(after_s) // 60 + 1) * 60
        for _ in range(_HORIZON_MIN):
            tm = time.gmtime(t)
            if tm.tm_mon not in self.months or not self._day_matches(tm):
                t = calendar.timegm((tm.tm_year, tm.tm_mon, tm.tm_mday, 0, 0, 0)) + 86400  # next day
                continue
            if tm.tm_hour not in self.hours:
                t = (t // 3600 + 1) * 3600
                continue
            if tm.tm_min in self.minutes:
                return float(t)
            t += 60
        return None
