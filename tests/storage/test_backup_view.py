"""A small backup (an incremental one, typically) reads the live database through iterators made at one
instant: no checkpoint, and nothing written after that instant gets in, in any family."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from allsource.storage.v1 import backup_pb2

from services.storage import keys
from services.storage.backend import AppendOp
from services.storage.backup import format as fmt
from services.storage.backup.destinations import LocalDirectory
from services.storage.backup.jobs import BackupJobs
from services.storage.rocksdb_backend import RocksBackend
from shared.config.settings import BackupSettings, StorageSettings
from tests.storage.contract import T, ev, req


def test_a_small_backup_reads_the_live_database_as_of_one_instant_without_a_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body() -> tuple[backup_pb2.Backup, list[bytes]]:
        backend = RocksBackend(StorageSettings(data_dir=str(tmp_path / "data")))
        await backend.start()
        try:
            await backend.append([AppendOp(T, req("s", *[ev() for _ in range(50)]))])
            jobs = BackupJobs(backend, BackupSettings(dir=str(tmp_path / "backups")))

            async def no_checkpoint(path: Path) -> None:
                raise AssertionError("a small backup took a checkpoint")

            monkeypatch.setattr(backend, "checkpoint", no_checkpoint)
            made = backend.consistent_view
            number = backend._tenants[T].number

            def then_writes(names: Any) -> dict[str, Any]:
                view = made(names)
                # Written once the view exists and before the backup reads anything: an event past the
                # tenant's head (garbage: reading it would fail) and a record of the tenant.
                backend._cf["events"][keys.event_key(number, 51)] = b"written after the view"
                backend._cf["records"][keys.tenant_prefix(number) + b"late"] = b"written after the view"
                return view

            monkeypatch.setattr(backend, "consistent_view", then_writes)
            last = None
            async for progress in jobs.create(backup_pb2.CreateBackupRequest(tenant_ids=[T])):
                last = progress
            assert last is not None and last.done
            manifest = fmt.Manifest.from_json(
                (tmp_path / "backups" / last.backup.backup_id / fmt.MANIFEST).read_bytes()
            )
            records: list[bytes] = []
            for chunk in manifest.chunks:
                if chunk.section == "records":
                    data = (tmp_path / "backups" / manifest.backup_id / chunk.name).read_bytes()
                    records += [k for k, _ in fmt.decode_records(fmt.decompress(data, chunk.name), chunk.name)]
            return last.backup, records
        finally:
            await backend.close()

    backup, records = asyncio.run(body())
    assert [(t.tenant_id, t.from_position, t.to_position, t.events) for t in backup.tenants] == [(T, 0, 50, 50)]
    assert b"late" not in records
    assert not (tmp_path / "data" / "backup-work").exists() or not any((tmp_path / "data" / "backup-work").iterdir())


def test_finding_an_incrementals_parent_reads_no_manifest_it_has_read_or_written_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each incremental backup looks through the destination's backups for its parent; with many backups
    (a schedule keeps dozens; with S3 each read is a GET) reading every manifest each time added up."""
    reads: list[str] = []
    plain = LocalDirectory.manifest

    def counted(self: LocalDirectory, backup_id: str) -> bytes | None:
        reads.append(backup_id)
        return plain(self, backup_id)

    monkeypatch.setattr(LocalDirectory, "manifest", counted)

    async def body() -> list[backup_pb2.Backup]:
        backend = RocksBackend(StorageSettings(data_dir=str(tmp_path / "data")))
        await backend.start()
        try:
            jobs = BackupJobs(backend, BackupSettings(dir=str(tmp_path / "backups")))
            made = []
            for i in range(4):
                await backend.append([AppendOp(T, req(f"s-{i}", *[ev() for _ in range(10)]))])
                last = None
                async for progress in jobs.create(backup_pb2.CreateBackupRequest(tenant_ids=[T], incremental=i > 0)):
                    last = progress
                assert last is not None and last.done
                made.append(last.backup)
            return made
        finally:
            await backend.close()

    made = asyncio.run(body())
    assert [b.parent_backup_id for b in made] == ["", *[b.backup_id for b in made[:-1]]]
    # Only the dump's own reading of each parent, which checks what it builds on (was 1 + 2 + 3 more).
    assert reads == [b.backup_id for b in made[:-1]]


def test_a_whole_suite_incremental_builds_on_the_last_one_even_with_no_suite_wide_records(tmp_path: Path) -> None:
    """Whether a backup is of the whole suite was told by its suite-wide chunks; a suite with none of those
    records made incrementals that every one built on the full backup (re-copying everything since), and
    a one-tenant suite's whole backups looked like that tenant's own to its administrator."""

    async def body() -> list[backup_pb2.Backup]:
        backend = RocksBackend(StorageSettings(data_dir=str(tmp_path / "data")))
        await backend.start()
        try:
            jobs = BackupJobs(backend, BackupSettings(dir=str(tmp_path / "backups")))
            made = []
            for i, count in enumerate((3, 5, 7)):
                await backend.append([AppendOp(T, req(f"s-{i}", *[ev() for _ in range(count)]))])
                last = None
                async for progress in jobs.create(backup_pb2.CreateBackupRequest(incremental=i > 0)):
                    last = progress
                assert last is not None and last.done
                made.append(last.backup)
            return made
        finally:
            await backend.close()

    made = asyncio.run(body())
    assert [b.parent_backup_id for b in made] == ["", made[0].backup_id, made[1].backup_id]
    assert [b.events for b in made] == [3, 5, 7]
    assert all(b.suite_records for b in made)  # what the admin service's tenant check reads
