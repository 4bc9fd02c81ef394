"""Cron expressions of backup schedules (services.admin.cron): Vixie cron's day rule, expressions that
never match refused when parsed, and a next run found within bounded work for every valid expression."""

from __future__ import annotations

import calendar
import time

import pytest

from services.admin.cron import Cron, CronError


def _at(text: str) -> float:
    """Epoch seconds of a UTC "YYYY-MM-DD HH:MM:SS"."""
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%d %H:%M:%S")))


def test_a_day_field_starting_with_a_star_is_unrestricted_as_in_vixie_cron() -> None:
    """Vixie cron reads a day field whose text starts with '*' ('*/1', '*/2') as unrestricted, so the other
    day field alone decides: "0 0 */1 * 1" runs on Mondays only, not every day."""
    tuesday = _at("2026-03-03 12:00:00")
    assert Cron("0 0 */1 * 1").next_after(tuesday) == _at("2026-03-09 00:00:00")  # the next Monday
    assert Cron("0 0 * * 1").next_after(tuesday) == _at("2026-03-09 00:00:00")  # the same as plain '*'
    # The other way round: day of week '*/1' leaves the 1st of the month alone deciding.
    assert Cron("0 0 1 * */1").next_after(tuesday) == _at("2026-04-01 00:00:00")
    # Both restricted: either matches (2026-03-05 is the first Thursday after; the 10th is later).
    assert Cron("0 0 10 * 4").next_after(tuesday) == _at("2026-03-05 00:00:00")


@pytest.mark.parametrize(
    "expression",
    [
        "0 0 31 2 *",
        "0 0 30 2 *",
        "0 0 30,31 2 *",
        "0 0 31 4,6,9,11 *",
        "0 0 31 2 */1",  # day of week '*/1' is unrestricted (Vixie): February 31st alone
    ],
)
def test_an_expression_that_never_matches_is_refused_when_parsed(expression: str) -> None:
    with pytest.raises(CronError):
        Cron(expression)


def test_february_29th_is_accepted_and_found_in_the_next_leap_year() -> None:
    assert Cron("0 0 29 2 *").next_after(_at("2026-03-01 00:00:00")) == _at("2028-02-29 00:00:00")
    # 2100 is not a leap year: eight years to the next February 29th.
    assert Cron("0 0 29 2 *").next_after(_at("2096-03-01 00:00:00")) == _at("2104-02-29 00:00:00")
    # Both day fields restricted: the 31st of February or any Monday of February, which exist.
    assert Cron("0 0 31 2 1").next_after(_at("2026-03-01 00:00:00")) == _at("2027-02-01 00:00:00")


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # February 29th or a Monday of February (Vixie OR): the first Monday of February 2027...
        ("0 0 29 2 1", "2026-03-01 00:00:00", "2027-02-01 00:00:00"),
        # ...and from Monday 2028-02-28 at midnight, the 29th (a Tuesday) the day after.
        ("0 0 29 2 1", "2028-02-28 00:00:00", "2028-02-29 00:00:00"),
        # The last minute of the year, from just after it: a whole year on.
        ("59 23 31 12 *", "2026-12-31 23:59:00", "2027-12-31 23:59:00"),
        ("59 23 31 12 *", "2026-12-31 23:59:30", "2027-12-31 23:59:00"),
        # Every minute: the next one.
        ("* * * * *", "2026-12-31 23:59:59", "2027-01-01 00:00:00"),
    ],
)
def test_the_next_run_of_a_valid_expression_is_found(expression: str, after: str, expected: str) -> None:
    assert Cron(expression).next_after(_at(after)) == _at(expected)
