"""Chains whose tenants start again: after the data directory was restored offline to an earlier point
in time (the tenants come back under the same internal numbers and their logs grow past the old backup's
end again, with other events), and a tenant deleted and made again between a full backup of the whole
suite from the checkpoint's files and an incremental read by worker processes. The next incremental
must not take them for the tenants its parent backed up."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.backup.support import acting, append, create, delete_tenant, everything, restore, restore_offline
from tests.harness import Suite


def test_an_incremental_after_an_offline_restore_to_an_earlier_time_holds_the_diverged_tenant_whole(
    tmp_path: Path,
) -> None:
    backup_dir = tmp_path / "backups"
    suite = Suite(tmp_path / "suite", extra_env={"ALLSOURCE_BACKUP__DIR": str(backup_dir)})
    suite.start_all()
    try:
        # A tenant made and deleted first: "solo" gets the number the offline restore will give it again.
        suite.create_tenant("gone")
        delete_tenant(suite, "gone")
        md = suite.create_tenant("solo")
        operator_key = suite.admin_key
        append(suite, md, "s", 20)
        time.sleep(0.05)
        cut = datetime.now(UTC)
        time.sleep(0.05)
        append(suite, md, "s", 10)
        full = create(suite)
    finally:
        suite.stop_all()

    restore_offline(suite, operator_key, full.backup_id, "--to-time", cut.isoformat())

    suite.start_all()
    try:
        assert append(suite, md, "s", 15) == list(range(21, 36))  # past the full backup's 30, other events
        expected = everything(suite, md)
        incremental = create(suite, incremental=True)
        assert incremental.parent_backup_id == full.backup_id
        manifests = {
            b: json.loads((backup_dir / b / "manifest.json").read_text())
            for b in (full.backup_id, incremental.backup_id)
        }
        numbers = [next(t["number"] for t in m["tenants"] if t["tenant_id"] == "solo") for m in manifests.values()]
        assert numbers[0] == numbers[1], "the case this test is about: the same internal number again"
        part = next(t for t in incremental.tenants if t.tenant_id == "solo")
        assert (part.from_position, part.to_position, part.events) == (0, 35, 35)
        delete_tenant(suite, "solo")
        restore(suite, backup_id=incremental.backup_id, tenant_ids=["solo"])
        assert everything(suite, acting(suite, "solo")) == expected
    finally:
        suite.stop_all()


def test_a_whole_suite_chain_from_checkpoint_files_restores_a_re_made_tenant_from_its_restart(tmp_path: Path) -> None:
    """The same rule on the other paths: a full backup of the whole suite that copies the checkpoint's
    files, then an incremental read from a checkpoint by two worker processes (both above a lowered
    backup.inline_max_events), restored online and then offline."""
    backup_dir = tmp_path / "backups"
    suite = Suite(
        tmp_path / "suite",
        extra_env={"ALLSOURCE_BACKUP__DIR": str(backup_dir), "ALLSOURCE_BACKUP__INLINE_MAX_EVENTS": "10"},
    )
    suite.start_all()
    try:
        steady = suite.create_tenant("steady")
        append(suite, steady, "kept", 20)
        md = suite.create_tenant("phoenix")
        append(suite, md, "old", 30)
        full = create(suite)
        manifest = json.loads((backup_dir / full.backup_id / "manifest.json").read_text())
        assert manifest["layout"] == "checkpoint"
        delete_tenant(suite, "phoenix")
        md = suite.create_tenant("phoenix")
        append(suite, md, "new", 12)
        append(suite, steady, "kept", 5)
        expected = {t: everything(suite, acting(suite, t)) for t in ("steady", "phoenix")}
        incremental = create(suite, incremental=True)
        parts = {t.tenant_id: (t.from_position, t.to_position, t.events) for t in incremental.tenants}
        assert parts["phoenix"] == (0, 12, 12) and parts["steady"] == (20, 25, 5)
        made = [json.loads(line) for line in suite.log("storage").splitlines() if '"backup made"' in line]
        (record,) = [r for r in made if r["backup_id"] == incremental.backup_id]
        assert (record["read"], len(record["workers"])) == ("checkpoint", 2)
        delete_tenant(suite, "phoenix")
        restore(suite, backup_id=incremental.backup_id, tenant_ids=["phoenix"])
        assert everything(suite, acting(suite, "phoenix")) == expected["phoenix"]
        operator_key = suite.admin_key
    finally:
        suite.stop_all()

    restore_offline(suite, operator_key, incremental.backup_id)
    suite.start_all()
    try:
        for tenant, events in expected.items():
            assert everything(suite, acting(suite, tenant)) == events, tenant
    finally:
        suite.stop_all()
