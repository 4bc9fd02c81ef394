"""The backup scheduler's lease (services.admin.backups.Scheduler) is kept while a run lasts, and a run
that fails in an unexpected way is recorded as that run's outcome: the schedule moves on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from allsource.storage.v1 import backup_pb2 as storage_backup
from allsource.v1 import backup_pb2
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from services.admin import backups
from services.admin.backups import NS_SCHEDULES, Scheduler
from shared.core.errors import AllSourceError
from shared.core.reasons import Reason


class Records:
    """Control-plane records in memory, with revisions (what StorageRecords does through storage)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, str], tuple[bytes, int]] = {}

    async def get(self, tenant_id: str, namespace: str, key: str) -> tuple[bytes, int] | None:
        return self.rows.get((tenant_id, namespace, key))

    async def put(
        self, tenant_id: str, namespace: str, key: str, value: bytes, expected_revision: int | None = None
    ) -> int:
        found = self.rows.get((tenant_id, namespace, key))
        if expected_revision is not None and (found[1] if found else 0) != expected_revision:
            raise AllSourceError("revision mismatch", reason=Reason.RECORD_REVISION_MISMATCH)
        revision = (found[1] if found else 0) + 1
        self.rows[(tenant_id, namespace, key)] = (value, revision)
        return revision

    async def list(self, tenant_id: str, namespace: str, after: str, limit: int) -> list[tuple[str, bytes, int]]:
        keys = sorted(k for t, ns, k in self.rows if (t, ns) == (tenant_id, namespace) and k > after)
        return [(k, *self.rows[(tenant_id, namespace, k)]) for k in keys[:limit]]

    async def delete(self, tenant_id: str, namespace: str, key: str, expected_revision: int | None = None) -> bool:
        return self.rows.pop((tenant_id, namespace, key), None) is not None


class Storage:
    """A backup that takes `takes` seconds (or raises `fails`), counting the backups started."""

    def __init__(self, takes: float, fails: BaseException | None = None) -> None:
        self.takes, self.fails, self.started = takes, fails, 0

    async def create_backup(self, request: Any) -> AsyncIterator[storage_backup.CreateBackupResponse]:
        self.started += 1
        await asyncio.sleep(self.takes)
        if self.fails is not None:
            raise self.fails
        yield storage_backup.CreateBackupResponse(done=True, backup=storage_backup.Backup(backup_id=f"b{self.started}"))

    async def list_backups(self, request: Any) -> storage_backup.ListBackupsResponse:
        return storage_backup.ListBackupsResponse()


def due_schedule(records: Records) -> None:
    schedule = backup_pb2.BackupSchedule(
        name="nightly", enabled=True, interval=Duration(seconds=3600), next_run_at=Timestamp(seconds=1)
    )
    records.rows[("", NS_SCHEDULES, "nightly")] = (schedule.SerializeToString(), 1)


def replica(records: Records, storage: Storage) -> Scheduler:
    settings = SimpleNamespace(backup=SimpleNamespace(schedule_check_s=3600))
    return Scheduler(SimpleNamespace(records=records, storage=storage, settings=settings))  # type: ignore[arg-type]


def test_a_run_longer_than_the_lease_keeps_it_and_no_other_replica_starts_it_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a lease of 0.3 s and a backup of 1 s: the replica running it renews the lease meanwhile, so
    another replica checking the schedules half-way finds the lease held and starts nothing. Before, the
    lease was renewed only between runs: the second replica took the expired lease and ran the same
    schedule again (two backups)."""
    monkeypatch.setattr(backups, "LEASE_S", 0.3)

    async def body() -> None:
        records, storage = Records(), Storage(takes=1.0)
        due_schedule(records)
        first, second = replica(records, storage), replica(records, storage)
        running = asyncio.ensure_future(first.tick())
        await asyncio.sleep(0.5)
        await second.tick()
        await running
        assert storage.started == 1
        stored = backup_pb2.BackupSchedule.FromString(records.rows[("", NS_SCHEDULES, "nightly")][0])
        assert stored.last_run.ok and stored.runs == 1

    asyncio.run(body())


def test_an_unexpected_failure_is_the_runs_outcome_and_the_schedule_moves_on() -> None:
    """A run failing with something other than a refusal is recorded (ok false, the error) and the next
    run time moves on; before, the exception escaped the run, the schedule stayed due, and every check
    ran it again."""

    async def body() -> None:
        records, storage = Records(), Storage(takes=0.0, fails=ValueError("unexpected"))
        due_schedule(records)
        await replica(records, storage).tick()
        stored = backup_pb2.BackupSchedule.FromString(records.rows[("", NS_SCHEDULES, "nightly")][0])
        assert not stored.last_run.ok and "unexpected" in stored.last_run.error
        assert stored.next_run_at.seconds > 1 and stored.runs == 1

    asyncio.run(body())
