"""Five-field cron expressions in UTC (minute, hour, day of month, month, day of week) for backup
schedules: numbers, `*`, lists, ranges and steps; day of week 0-7 (0 and 7 are Sunday). When both day
fields are restricted a day matches either, as in Vixie cron."""

from __future__ import annotations

import calendar
import time

_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
MAX_EXPRESSION_CHARS = 200
# Longest a month can be (February: 29, in leap years).
_MONTH_DAYS = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}
# The search for the next run takes a step a day, and within a matching day an hour or a minute at a time:
# a valid expression matches within eight years (February 29th across 2100), so it never takes more.
_HORIZON_STEPS = 9 * 366 + 24 + 60 + 24


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
        if len(expression) > MAX_EXPRESSION_CHARS:
            raise CronError(f"a cron expression has at most {MAX_EXPRESSION_CHARS} characters")
        parts = expression.split()
        if len(parts) != 5:
            raise CronError("a cron expression has five fields: minute hour day-of-month month day-of-week")
        fields = [_field(p, *spec) for p, spec in zip(parts, _FIELDS, strict=True)]
        self.minutes, self.hours, self.days, self.months, dows = fields
        self.dows = frozenset(d % 7 for d in dows)
        # As in Vixie cron, a day field starting with `*` (`*/1` too) leaves the days to the other field.
        self.any_day = parts[2].startswith("*")
        self.any_dow = parts[4].startswith("*")
        if not self.any_day and self.any_dow and not any(min(self.days) <= _MONTH_DAYS[m] for m in self.months):
            raise CronError("the day of month never occurs in the months given: the expression never matches")

    def _day_matches(self, tm: time.struct_time) -> bool:
        dom = tm.tm_mday in self.days
        dow = (tm.tm_wday + 1) % 7 in self.dows  # struct_time: Monday 0; cron: Sunday 0
        if self.any_day or self.any_dow:
            return dom and dow
        return dom or dow

    def next_after(self, after_s: float) -> float | None:
        """The first matching minute strictly after a time (epoch seconds); None past the horizon (never, for
        an expression the constructor accepts)."""
        t = (int(after_s) // 60 + 1) * 60
        for _ in range(_HORIZON_STEPS):
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
