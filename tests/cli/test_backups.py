"""`allsource-cli backups` end to end against the real suite: create, list, info, verify, restore (dry run
and real), delete, schedules; `--output json` parsed; refusals exit 3 with the server's reason."""

from __future__ import annotations

from tests.backup.support import delete_tenant
from tests.cli.conftest import Cli, exit_reason
from tests.harness import Suite


def test_a_tenant_backed_up_deleted_and_restored_through_the_cli(cli: Cli, suite: Suite, tenant: str) -> None:
    for n in range(3):
        cli.ok("--tenant", tenant, "events", "append", f"order-{n}", "--type", "Placed")
    made = cli.json("backups", "create", "--tenant", tenant, "--label", "before the migration")
    backup_id = made["backup_id"]
    assert made["kind"] == "BACKUP_KIND_FULL" and made["tenants"][0]["tenant_id"] == tenant
    assert made["events"] == "3" and made["label"] == "before the migration"
    assert backup_id in [b["backup_id"] for b in cli.json("backups", "list")]
    assert cli.json("backups", "info", backup_id)["tenants"][0]["to_position"] == "3"
    assert cli.json("backups", "verify", backup_id)["ok"] is True
    table = cli.ok("backups", "list")
    assert "full" in table and "events" in table

    exit_reason(cli.run("backups", "restore", backup_id, "--tenant", tenant), 3, "RESTORE_TARGET_NOT_EMPTY")
    delete_tenant(suite, tenant)
    dry = cli.json("backups", "restore", backup_id, "--tenant", tenant, "--dry-run")
    assert dry == [{"tenant_id": tenant, "events": "3", "streams": "3", "last_position": "3"}]
    done = cli.json("backups", "restore", backup_id, "--tenant", tenant, "--to-position", f"{tenant}=2")
    assert done == [{"tenant_id": tenant, "events": "2", "streams": "2", "last_position": "2"}]
    read = cli.json("--tenant", tenant, "events", "read", "order-1")
    assert [e["event_type"] for e in read] == ["Placed"]

    exit_reason(cli.run("backups", "delete", backup_id), 2, "needs --yes")  # piped: not confirmed, not deleted
    assert backup_id in [b["backup_id"] for b in cli.json("backups", "list")]
    assert cli.json("backups", "delete", backup_id, "--yes") == {"backup_id": backup_id, "deleted": True}
    exit_reason(cli.run("backups", "info", backup_id), 3, "BACKUP_NOT_FOUND")


def test_backup_schedules_through_the_cli(cli: Cli) -> None:
    exit_reason(cli.run("backups", "schedules", "put", "nightly"), 2, "--every")
    exit_reason(cli.run("backups", "schedules", "put", "nightly", "--cron", "0 25 * * *"), 3, "schedule.cron")
    put = cli.json("backups", "schedules", "put", "nightly", "--cron", "0 3 * * *", "--keep-daily", "7", "--disabled")
    assert (put["name"], put["cron"], put["retention"], put.get("enabled", False)) == (
        "nightly",
        "0 3 * * *",
        {"keep_daily": 7, "keep_last": 0, "keep_weekly": 0, "keep_monthly": 0},
        False,
    )
    listed = cli.json("backups", "schedules", "list")
    assert [s["name"] for s in listed] == ["nightly"] and listed[0]["next_run_at"].endswith("03:00:00Z")
    assert "daily 7" in cli.ok("backups", "schedules", "list", env={"COLUMNS": "250"})
    assert cli.json("backups", "schedules", "delete", "nightly") == {"schedule": "nightly", "deleted": True}
    exit_reason(cli.run("backups", "schedules", "delete", "nightly"), 3, "BACKUP_SCHEDULE_NOT_FOUND")
