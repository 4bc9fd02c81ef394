"""`allsource-cli quotas` end to end against the real suite: usage of every limit, overrides, emergency
throttles; `--output json|yaml` parsed; usage errors exit 2, the server's refusals 3 with its reason."""

from __future__ import annotations

import time
import uuid
from datetime import datetime

import yaml

from services.cli.commands.tenants import QUOTA_NAMES
from tests.cli.conftest import Cli, exit_reason


def _moment(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_usage_shows_every_limit_and_its_state_after_appends(cli: Cli) -> None:
    name = f"cli-q-{uuid.uuid4().hex[:8]}"
    cli.ok("tenants", "create", name, "--preset", "free", "--quota", "events_per_day=5")
    for n in range(4):
        cli.ok("--tenant", name, "events", "append", f"s-{n}", "--type", "Created")

    usage = cli.json("quotas", "usage", name)
    assert usage["tenant_id"] == name and usage["soft_limit_ratio"] == 0.8
    assert [q["quota"] for q in usage["quotas"]] == QUOTA_NAMES  # every limit, in TenantQuotas order
    quotas = {q["quota"]: q for q in usage["quotas"]}
    day = quotas["max_events_per_day"]
    assert (day["used"], day["limit"], day["state"]) == ("4", "5", "QUOTA_STATE_SOFT")
    assert _moment(day["resets_at"]) > time.time() and day["overridden"] is False
    assert (quotas["max_api_keys"]["limit"], quotas["max_api_keys"]["state"]) == ("2", "QUOTA_STATE_OK")
    assert "resets_at" not in quotas["max_event_bytes"]  # a limit on each request has no window
    assert usage["throttles"] == []

    # The acting tenant by default; one more append reaches the hard limit.
    cli.ok("--tenant", name, "events", "append", "s-4", "--type", "Created")
    usage = yaml.safe_load(cli.ok("--tenant", name, "--output", "yaml", "quotas", "usage"))
    day = next(q for q in usage["quotas"] if q["quota"] == "max_events_per_day")
    assert (day["used"], day["state"]) == ("5", "QUOTA_STATE_HARD")

    table = cli.ok("quotas", "usage", name)
    assert "events_per_day" in table and "hard" in table and "soft limit at 80%" in table


def test_override_shows_in_usage_and_overrides_until_cleared(cli: Cli, tenant: str) -> None:
    before = {q["quota"]: q for q in cli.json("quotas", "usage", tenant)["quotas"]}
    assert "limit" not in before["max_events_per_hour"]  # unlimited preset
    assert before["max_events_per_hour"]["state"] == "QUOTA_STATE_UNLIMITED"

    made = cli.json("quotas", "override", tenant, "events_per_hour", "50", "--for", "2h", "--reason", "launch day")
    assert (made["tenant_id"], made["quota"], made["value"], made["reason"]) == (
        tenant,
        "max_events_per_hour",
        "50",
        "launch day",
    )
    assert 7000 < _moment(made["expires_at"]) - time.time() <= 7200 and made["set_by"]
    cli.ok("quotas", "override", tenant, "max_users", "3", "--for", "1d", "--reason", "audit")

    after = {q["quota"]: q for q in cli.json("quotas", "usage", tenant)["quotas"]}
    hour = after["max_events_per_hour"]
    assert (hour["limit"], hour["overridden"], hour["state"]) == ("50", True, "QUOTA_STATE_OK")
    assert (after["max_users"]["limit"], after["max_users"]["overridden"]) == ("3", True)

    listed = cli.json("quotas", "overrides", "--tenant", tenant)
    assert [(o["quota"], o["value"]) for o in listed] == [("max_events_per_hour", "50"), ("max_users", "3")]
    assert [o["quota"] for o in cli.json("--tenant", tenant, "quotas", "overrides")] == [
        "max_events_per_hour",
        "max_users",
    ]
    assert "launch day" in cli.ok("quotas", "overrides", "--tenant", tenant)

    assert cli.json("quotas", "clear-override", tenant, "events_per_hour")["cleared"] is True
    assert [o["quota"] for o in cli.json("quotas", "overrides", "--tenant", tenant)] == ["max_users"]
    hour = next(q for q in cli.json("quotas", "usage", tenant)["quotas"] if q["quota"] == "max_events_per_hour")
    assert "limit" not in hour and hour["overridden"] is False


def test_bad_arguments_exit_2_and_server_refusals_3(cli: Cli, tenant: str) -> None:
    override = ("quotas", "override", tenant, "events_per_day", "10")
    exit_reason(cli.run(*override, "--for", "soon", "--reason", "x"), 2, "--for", "not a duration like")
    exit_reason(cli.run(*override, "--for", "10 minutes", "--reason", "x"), 2, "not a duration like")
    exit_reason(cli.run(*override, "--for", "0m", "--reason", "x"), 2, "more than zero")
    exit_reason(cli.run(*override, "--reason", "x"), 2, "Missing option '--for'")
    exit_reason(cli.run(*override, "--for", "1h"), 2, "Missing option '--reason'")
    exit_reason(
        cli.run("quotas", "override", tenant, "bananas", "1", "--for", "1h", "--reason", "x"), 2, "unknown quota"
    )
    exit_reason(cli.run("quotas", "override", tenant, "users", "-1", "--for", "1h", "--reason", "x"), 2, "VALUE")
    throttle = ("quotas", "throttle", "--calls-per-second", "5", "--reason", "x")
    exit_reason(cli.run(*throttle), 2, "--tenant TENANT or --suite")
    exit_reason(cli.run(*throttle, "--tenant", tenant, "--suite"), 2, "--tenant TENANT or --suite")
    exit_reason(cli.run(*throttle, "--tenant", tenant, "--for", "2x"), 2, "not a duration")
    exit_reason(cli.run("quotas", "throttle", "--tenant", tenant, "--calls-per-second", "0", "--reason", "x"), 2, "x>0")
    exit_reason(cli.run("quotas", "throttle", "--tenant", tenant, "--calls-per-second", "5"), 2, "--reason")
    exit_reason(cli.run("quotas", "throttle", "--tenant", tenant, "--clear", "--reason", "x"), 2, "--clear takes no")

    # The server's word: past its 90 days, an unknown tenant (code, reason and the field violated).
    exit_reason(
        cli.run(*override, "--for", "91d", "--reason", "x"),
        3,
        "INVALID_ARGUMENT INVALID_QUOTA_OVERRIDE",
        "  duration: ",
    )
    missing = f"nope-{uuid.uuid4().hex[:8]}"
    refused = cli.run("quotas", "override", missing, "users", "1", "--for", "1h", "--reason", "x")
    exit_reason(refused, 3, "NOT_FOUND TENANT_NOT_FOUND")
    exit_reason(cli.run("quotas", "usage", missing), 3, "NOT_FOUND")


def test_throttle_refuses_a_tenant_past_its_ceiling_until_cleared(cli: Cli, tenant: str) -> None:
    key = cli.json("--tenant", tenant, "keys", "create", "app", "--role", "developer")["secret"]
    append = ("events", "append", "t-1", "--type", "Tick")
    cli.ok(*append, key=key)
    try:
        # One call per 5 s: the second call in a row is past it.
        set_ = cli.json(
            "quotas",
            "throttle",
            "--tenant",
            tenant,
            "--calls-per-second",
            "0.2",
            "--for",
            "10m",
            "--reason",
            "incident",
        )
        assert (set_["tenant_id"], set_["calls_per_second"], set_["reason"]) == (tenant, 0.2, "incident")
        assert 590 < _moment(set_["expires_at"]) - time.time() <= 600
        throttles = cli.json("quotas", "usage", tenant)["throttles"]
        assert [(t["tenant_id"], t["calls_per_second"]) for t in throttles] == [(tenant, 0.2)]
        assert "incident" in cli.ok("quotas", "usage", tenant)  # the throttles' table

        deadline = time.monotonic() + 20
        while (done := cli.run(*append, key=key)).returncode == 0 and time.monotonic() < deadline:
            pass
        exit_reason(done, 3, "RESOURCE_EXHAUSTED RATE_LIMITED", "limit=emergency_throttle")
        cli.ok("--tenant", tenant, *append)  # an operator's calls are exempt

        cleared = cli.json("quotas", "throttle", "--tenant", tenant, "--clear")
        assert cleared == {"tenant_id": tenant, "suite": False, "cleared": True}
        deadline = time.monotonic() + 20
        while (done := cli.run(*append, key=key)).returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert done.returncode == 0, done.stderr
        for _ in range(3):  # well past one call per 5 s again
            cli.ok(*append, key=key)
        assert cli.json("quotas", "usage", tenant)["throttles"] == []
    finally:
        cli.run("quotas", "throttle", "--tenant", tenant, "--clear")
