"""Backups at their bounds: what a tenant's administrator may learn of backups hidden from them (page
tokens, parents), a restore of several tenants refused whole, a dry run that writes nothing, point in
time edges, and requests too large or with ids no backup can have, refused as such."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from allsource.v1 import backup_pb2
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from tests.backup.support import acting, append, backups, create, delete_tenant, everything, fill, restore
from tests.harness import Suite
from tests.limits.support import refusal

DAY_S = 86_400


@pytest.fixture(scope="module")
def bsuite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    workdir = tmp_path_factory.mktemp("backup-bounds")
    running = Suite(workdir, extra_env={"ALLSOURCE_BACKUP__DIR": str(workdir / "backups")})
    try:
        running.start_all()
        yield running
    finally:
        running.stop_all()


@dataclass
class Bulk:
    """Two tenants, one small and one large, and backups of them: of the two, and of the whole suite
    (larger than backup.inline_max_events, so held as a copy of the checkpoint's files)."""

    two: backup_pb2.Backup
    whole: backup_pb2.Backup


@pytest.fixture(scope="module")
def bulk(bsuite: Suite) -> Bulk:
    small, large = bsuite.create_tenant("paa"), bsuite.create_tenant("pbb")
    append(bsuite, small, "paa-1", 100)
    fill(bsuite, large, "pbb", 30_000, streams=10)
    two = create(bsuite, tenant_ids=["paa", "pbb"])
    whole = create(bsuite)
    return Bulk(two, whole)


@pytest.fixture(scope="module")
def pit(bsuite: Suite) -> backup_pb2.Backup:
    """A backup of tenant "pit": 10 events at positions 1-10."""
    md = bsuite.create_tenant("pit")
    append(bsuite, md, "p-1", 10)
    return create(bsuite, tenant_ids=["pit"])


def outcome(fn: Callable[..., Any], *args: Any, **kw: Any) -> tuple[Any, ...]:
    """What a call gave: ("OK", what `fn` returned, []) or (code, reason, the fields of its violations)."""
    try:
        return ("OK", fn(*args, **kw), [])
    except grpc.RpcError as err:
        found = refusal(err)
        return (found.code, found.reason, sorted(set(found.violations)))


def events_of(suite: Suite, tenant: str) -> int:
    """How many events the tenant has (0 when it does not exist)."""
    try:
        return len(everything(suite, acting(suite, tenant)))
    except grpc.RpcError as err:
        if err.code() == grpc.StatusCode.NOT_FOUND:
            return 0
        raise


@dataclass
class Hidden:
    """Tenant alice's administrator, two backups of theirs, and three they may not see, oldest first:
    the operator's of the whole suite, alice's, bob's, alice's, bob's."""

    alice: tuple[tuple[str, str], ...]
    suite_wide: backup_pb2.Backup
    own: list[backup_pb2.Backup]
    bobs: list[backup_pb2.Backup]


@pytest.fixture(scope="module")
def hidden(bsuite: Suite) -> Hidden:
    alice, bob = bsuite.create_tenant("alice"), bsuite.create_tenant("bob")
    append(bsuite, alice, "a-1", 5)
    append(bsuite, bob, "b-1", 5)
    suite_wide = create(bsuite)  # the operator's, of everything
    own_1 = create(bsuite, alice)
    bobs_1 = create(bsuite, tenant_ids=["bob"])
    own_2 = create(bsuite, alice)
    bobs_2 = create(bsuite, tenant_ids=["bob"])  # hidden, and the newest
    return Hidden(alice, suite_wide, [own_1, own_2], [bobs_1, bobs_2])


def test_a_tenant_administrator_paging_one_backup_at_a_time_learns_nothing_of_hidden_ones(
    bsuite: Suite, hidden: Hidden
) -> None:
    stub = backups(bsuite, hidden.alice)
    pages: list[tuple[list[str], str]] = []
    token = ""
    for _ in range(20):
        reply = stub.ListBackups(backup_pb2.ListBackupsRequest(page_size=1, page_token=token), timeout=30)
        pages.append(([b.backup_id for b in reply.backups], reply.next_page_token))
        token = reply.next_page_token
        if not token:
            break
    assert not token, f"no end after 20 pages: {pages}"
    assert [i for ids, _ in pages for i in ids] == [b.backup_id for b in hidden.own], pages
    not_theirs = {hidden.suite_wide.backup_id, *(b.backup_id for b in hidden.bobs)}
    for ids, next_token in pages:
        if next_token:  # a token only after a page of theirs, and naming nothing hidden
            assert ids, f"an empty page carries a token: {pages}"
            assert not any(h in next_token for h in not_theirs), f"a token names a hidden backup: {pages}"


def test_a_tenant_administrator_cannot_build_an_incremental_on_a_hidden_backup(bsuite: Suite, hidden: Hidden) -> None:
    got = {}
    for which, parent in (("suite", hidden.suite_wide), ("bob", hidden.bobs[0])):
        result = outcome(create, bsuite, hidden.alice, parent_backup_id=parent.backup_id)
        got[which] = ("OK", f"made {result[1].backup_id}", []) if result[0] == "OK" else result
    assert got == {which: ("NOT_FOUND", "BACKUP_NOT_FOUND", []) for which in ("suite", "bob")}
    # Nothing of theirs was built on bob's backup: the operator deletes it.
    deleted = backups(bsuite).DeleteBackup(
        backup_pb2.DeleteBackupRequest(backup_id=hidden.bobs[0].backup_id), timeout=60
    )
    assert deleted.backup_id == hidden.bobs[0].backup_id


def test_a_restore_of_two_tenants_refused_for_the_second_restores_neither(bsuite: Suite, bulk: Bulk) -> None:
    delete_tenant(bsuite, "paa")
    delete_tenant(bsuite, "pbb")
    stream = backups(bsuite).RestoreBackup(
        backup_pb2.RestoreBackupRequest(backup_id=bulk.two.backup_id, tenant_ids=["paa", "pbb"]), timeout=300
    )
    phases: list[str] = []
    with pytest.raises(grpc.RpcError) as refusing:
        for message in stream:
            phases.append(message.phase)
            if message.phase == "checking" and "meddled" not in phases:
                # While the backup is being checked (30,000 events of pbb), pbb is made again and written to.
                phases.append("meddled")
                try:
                    append(bsuite, bsuite.create_tenant("pbb"), "new-pbb", 1)
                except grpc.RpcError as err:  # not the refusal looked for: the restore was not held
                    raise AssertionError(f"pbb could not be made again during the restore: {refusal(err)}") from err
    assert "meddled" in phases, phases
    found = refusal(refusing.value)
    assert (found.code, found.reason) == ("FAILED_PRECONDITION", "RESTORE_TARGET_NOT_EMPTY"), (found, phases)
    assert events_of(bsuite, "paa") == 0  # not restored: the restore is all or nothing
    assert events_of(bsuite, "pbb") == 1  # the new one's event, alone


def test_a_dry_run_restore_writes_nothing_under_the_data_directory(bsuite: Suite, bulk: Bulk) -> None:
    """A dry run of a backup kept as records (a tenant's, or incremental) writes nothing. One of a
    whole-suite backup kept as a copy of the checkpoint's files unpacks that copy to count what it holds
    (documented on RestoreBackupRequest.dry_run; only an operator can, a tenant's administrator cannot
    see such a backup) and leaves nothing behind."""
    restore(bsuite, backup_id=bulk.whole.backup_id, tenant_ids=["paa"], dry_run=True)
    work = bsuite.data_dir / "restore-work"
    assert not [p for p in work.rglob("*") if p.is_file()]
    seen: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for root, _, files in os.walk(work):
                seen.extend(str(Path(root, f).relative_to(bsuite.data_dir)) for f in files)
            if seen:
                return
            stop.wait(0.002)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        dry = restore(bsuite, backup_id=bulk.two.backup_id, tenant_ids=["paa"], dry_run=True)
    finally:
        stop.set()
        watcher.join(10)
    assert dry.dry_run and [(t.tenant_id, t.events) for t in dry.tenants] == [("paa", 100)]
    assert not seen, f"a dry run wrote {sorted(set(seen))[:5]}"
    assert not [p for p in work.rglob("*") if p.is_file()]  # nor left anything behind


def test_point_in_time_edges_restore_nothing_or_are_refused(bsuite: Suite, pit: backup_pb2.Backup) -> None:
    def dry(**kw: Any) -> list[tuple[str, int]]:
        done = restore(bsuite, backup_id=pit.backup_id, tenant_ids=["pit"], dry_run=True, **kw)
        return [(t.tenant_id, t.events) for t in done.tenants]

    got = {
        "position 3": outcome(dry, to_positions={"pit": 3}),
        "position 0": outcome(dry, to_positions={"pit": 0}),  # up to position 0: nothing
        "the epoch": outcome(dry, to_time=Timestamp(seconds=0, nanos=0)),  # before every event
        "nanos 2e9": outcome(dry, to_time=Timestamp(seconds=1, nanos=2_000_000_000)),
    }
    assert {k: v for k, v in got.items() if k != "nanos 2e9"} == {
        "position 3": ("OK", [("pit", 3)], []),
        "position 0": ("OK", [("pit", 0)], []),
        "the epoch": ("OK", [("pit", 0)], []),
    }, got
    code, _, fields = got["nanos 2e9"]
    assert code == "INVALID_ARGUMENT" and "to_time" in fields, got


def test_a_restore_naming_thousands_of_tenants_is_refused_as_invalid(bsuite: Suite, pit: backup_pb2.Backup) -> None:
    got: dict[str, tuple[str, str, int]] = {}
    many: tuple[tuple[str, dict[str, Any]], ...] = (
        ("tenant_ids", {"tenant_ids": [f"nobody-{i:06d}" for i in range(5000)]}),
        ("to_positions", {"tenant_ids": ["pit"], "to_positions": {f"k{i:06d}": 1 for i in range(5000)}}),
    )
    for name, kw in many:
        try:
            restore(bsuite, backup_id=pit.backup_id, dry_run=True, **kw)
            got[name] = ("OK", "", 0)
        except grpc.RpcError as err:
            found = refusal(err)
            got[name] = (found.code, found.reason, min(len(found.violations), 101))
    assert {k: v[:2] for k, v in got.items()} == {
        k: ("INVALID_ARGUMENT", "INVALID_BACKUP_REQUEST") for k in ("tenant_ids", "to_positions")
    }, got
    assert all(1 <= v[2] <= 100 for v in got.values()), got  # violations, at most 100 of them


@pytest.mark.parametrize("bad", ["a\x00b", "x" * 5000, "2020 0101"], ids=["nul", "5000-chars", "space"])
def test_a_backup_id_no_backup_can_have_is_refused_as_invalid(bsuite: Suite, bad: str) -> None:
    stub = backups(bsuite)
    calls = {
        "GetBackup": (lambda: stub.GetBackup(backup_pb2.GetBackupRequest(backup_id=bad), timeout=30), "backup_id"),
        "VerifyBackup": (
            lambda: stub.VerifyBackup(backup_pb2.VerifyBackupRequest(backup_id=bad), timeout=30),
            "backup_id",
        ),
        "RestoreBackup": (lambda: restore(bsuite, backup_id=bad, dry_run=True), "backup_id"),
        "DeleteBackup": (
            lambda: stub.DeleteBackup(backup_pb2.DeleteBackupRequest(backup_id=bad), timeout=30),
            "backup_id",
        ),
        "CreateBackup": (lambda: create(bsuite, stub=stub, parent_backup_id=bad), "parent_backup_id"),
    }
    got = {name: outcome(call) for name, (call, _) in calls.items()}
    assert got == {name: ("INVALID_ARGUMENT", "INVALID_BACKUP_REQUEST", [field]) for name, (_, field) in calls.items()}


def test_a_schedule_that_never_runs_or_runs_too_far_away_is_refused(bsuite: Suite) -> None:
    stub = backups(bsuite)

    def put(name: str, **kw: object) -> backup_pb2.BackupSchedule:
        schedule = backup_pb2.BackupSchedule(name=name, enabled=True, **kw)  # type: ignore[arg-type]
        return stub.PutBackupSchedule(backup_pb2.PutBackupScheduleRequest(schedule=schedule), timeout=60).schedule

    long_cron = " ".join([",".join(map(str, range(60))), ",".join(map(str, range(24))), "*", "*", "*"])
    assert len(long_cron) > 200
    cases: dict[str, tuple[dict[str, Any], str]] = {
        "feb-31": ({"cron": "0 0 31 2 *"}, "schedule.cron"),
        "feb-30": ({"cron": "0 0 30 2 *"}, "schedule.cron"),
        "long-cron": ({"cron": long_cron}, "schedule.cron"),
        "too-far": ({"interval": Duration(seconds=367 * DAY_S)}, "schedule.interval"),
        "far-too-far": ({"interval": Duration(seconds=10**12)}, "schedule.interval"),
    }
    try:
        got = {name: outcome(put, name, **kw) for name, (kw, _) in cases.items()}
        assert got == {
            name: ("INVALID_ARGUMENT", "INVALID_BACKUP_REQUEST", [field]) for name, (_, field) in cases.items()
        }
        yearly = put("yearly", interval=Duration(seconds=366 * DAY_S))
        assert yearly.HasField("next_run_at")
        yearly.next_run_at.ToDatetime()  # a time a client can read
    finally:
        for name in (*cases, "yearly"):
            try:
                stub.DeleteBackupSchedule(backup_pb2.DeleteBackupScheduleRequest(name=name), timeout=30)
            except grpc.RpcError:
                pass
