"""Values no request can carry (a duration of millions of years, a time past year 9999, a number past its
field's range) are usage errors: exit 2 with a one-line message, never a traceback; inside the shell
the next command still runs."""

from __future__ import annotations

import pytest

from tests.cli.conftest import Cli

HUGE = "99999999999999999999999"


@pytest.mark.parametrize(
    "args",
    [
        ("keys", "create", "k", "--ttl", "99999999999999999999d"),
        ("events", "delete", "--since", "9999999999d", "--dry-run"),
        ("events", "delete", "--since", "9999-12-31T23:59:59-05:00", "--dry-run"),
        ("events", "read", "s", "--from-version", HUGE),
        ("quotas", "override", "acme", "max_events_per_day", HUGE, "--for", "1h", "--reason", "incident"),
    ],
    ids=["ttl", "since-ago", "since-past-9999", "from-version", "quota-value"],
)
def test_an_out_of_range_value_is_a_usage_error(cli: Cli, args: tuple[str, ...]) -> None:
    """Each ended in ValueError or OverflowError with a traceback and exit 1 before."""
    done = cli.run(*args)  # Cli.run fails the test on a traceback
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "invalid value" in done.stderr.lower(), done.stderr


def test_the_shell_goes_on_after_an_out_of_range_value(cli: Cli) -> None:
    """Before, the out-of-range value ended the whole shell with a traceback: `whoami` never ran."""
    done = cli.run("shell", stdin=f"events read s1 --from-version {HUGE}\nwhoami\n")
    assert "invalid value" in done.stderr.lower(), done.stderr
    assert "subject" in done.stdout.lower() or "role" in done.stdout.lower(), done.stdout
