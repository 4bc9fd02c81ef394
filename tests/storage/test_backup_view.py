"""A small backup (an incremental one, typically) reads the live database through iterators made at one
instant: no checkpoint, and nothing written after that instant gets in, in any family."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from allsource.storage.v1 import backup_pb2, model_pb2

from services.storage import keys
from services.storage.backend import AppendOp
from services.storage.backup import format as fmt
from services.storage.backup.destinations import LocalDirectory
from services.storage.backup.jobs import BackupJobs
from services.storage.backup.load import Loader
from services.storage.rocksdb_backend import RocksBackend
from shared.config.settings import BackupSettings, StorageSettings
from shared.core.errors import AllSourceError
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

            def then_writes(names: Any, events_after: Any = None) -> dict[str, Any]:
                view = made(names, events_after)
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


def test_a_small_backup_reads_events_as_runs_made_at_the_views_instant_and_steps_over_gaps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The live view also makes, at its instant, a run of each tenant's event values (read in C); keys are
    then made from positions, which holds only when no position of the range was erased: with a gap the
    dump steps the view's iterator from the chunk where the gap is. Either way the chunks hold the events
    as of the view."""
    from services.storage.backup.dump import ChunkSink

    used: list[int] = []
    plain_add_run = ChunkSink.add_run

    def counted(self: ChunkSink, info: fmt.ChunkInfo, values: list[bytes]) -> None:
        used.append(len(values))
        plain_add_run(self, info, values)

    monkeypatch.setattr(ChunkSink, "add_run", counted)

    def events_of(backup: backup_pb2.Backup) -> dict[int, bytes]:
        root = tmp_path / "backups" / backup.backup_id
        manifest = fmt.Manifest.from_json((root / fmt.MANIFEST).read_bytes())
        assert len({c.name for c in manifest.chunks}) == len(manifest.chunks)
        out: dict[int, bytes] = {}
        for chunk in manifest.chunks:
            if chunk.section == "events":
                records = fmt.decode_records(fmt.decompress((root / chunk.name).read_bytes(), chunk.name), chunk.name)
                out.update((keys.unpack_u64(k), v) for k, v in records)
        return out

    async def body() -> tuple[dict[int, bytes], dict[int, bytes], dict[int, bytes], list[int]]:
        backend = RocksBackend(StorageSettings(data_dir=str(tmp_path / "data")))
        await backend.start()
        try:
            await backend.append([AppendOp(T, req("s", *[ev(payload=b'{"i": %d}' % i) for i in range(3000)]))])
            jobs = BackupJobs(backend, BackupSettings(dir=str(tmp_path / "backups")))
            number = backend._tenants[T].number
            events = backend._cf["events"]
            original = events[keys.event_key(number, 10)]
            made = backend.consistent_view

            def then_rewrites(names: Any, events_after: Any = None) -> dict[str, Any]:
                view = made(names, events_after)
                events[keys.event_key(number, 10)] = b"rewritten after the view"  # must not be read
                return view

            async def backup(**kw: Any) -> backup_pb2.Backup:
                last = None
                async for progress in jobs.create(backup_pb2.CreateBackupRequest(tenant_ids=[T], **kw)):
                    last = progress
                assert last is not None and last.done
                return last.backup

            monkeypatch.setattr(backend, "consistent_view", then_rewrites)
            as_of_view = events_of(await backup())
            monkeypatch.setattr(backend, "consistent_view", made)
            events[keys.event_key(number, 10)] = original
            await backend.append([AppendOp(T, req("s", *[ev() for _ in range(5)]))])
            incremental = events_of(await backup(incremental=True))
            runs = list(used)
            del events[keys.event_key(number, 2500)]  # a gap, as an erasure leaves
            used.clear()
            monkeypatch.setattr(fmt, "CHUNK_RAW_BYTES", 8)  # a chunk per block of 1,024 values read
            with_gap = events_of(await backup())
            return as_of_view, incremental, with_gap, runs + used
        finally:
            await backend.close()

    as_of_view, incremental, with_gap, runs = asyncio.run(body())
    # A run of 3,000; the incremental's 5; then two chunks of 1,024 before the one with the gap, which is
    # stepped with the rest.
    assert runs == [3000, 5, 1024, 1024]
    assert sorted(as_of_view) == list(range(1, 3001)) and b'{"i": 9}' in as_of_view[10]
    assert sorted(incremental) == list(range(3001, 3006))
    assert sorted(with_gap) == [p for p in range(1, 3006) if p != 2500] and b'{"i": 2498}' in with_gap[2499]


def test_a_run_of_values_encodes_as_the_same_columns_as_their_keys_and_values() -> None:
    values = [b"a", b"", b"ccc" * 100]
    keys_ = [keys.U64.pack(p) for p in (7, 8, 9)]
    assert fmt.encode_run(7, values) == fmt.encode_columns(keys_, values)
    assert list(fmt.decode_records(fmt.encode_run(7, values), "x")) == list(zip(keys_, values, strict=True))


def test_a_reopen_after_a_failed_write_waits_for_a_small_backups_live_view(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a failed write (a full disk) storage closes and reopens the database; a small backup reading
    the live view on its thread meanwhile holds iterators of the database being closed. The reopen waits
    for the backup to be done with them, and both succeed."""
    import threading

    from services.storage.backup import dump

    reading, go_on = threading.Event(), threading.Event()
    plain_events = dump.Dump._events

    def held(self: dump.Dump, *args: Any) -> None:
        reading.set()
        assert go_on.wait(10)
        plain_events(self, *args)

    monkeypatch.setattr(dump.Dump, "_events", held)

    async def body() -> tuple[backup_pb2.Backup, bool]:
        backend = RocksBackend(StorageSettings(data_dir=str(tmp_path / "data")))
        await backend.start()
        try:
            await backend.append([AppendOp(T, req("s", *[ev() for _ in range(20)]))])
            jobs = BackupJobs(backend, BackupSettings(dir=str(tmp_path / "backups")))

            async def backup() -> backup_pb2.Backup:
                last = None
                async for progress in jobs.create(backup_pb2.CreateBackupRequest(tenant_ids=[T])):
                    last = progress
                assert last is not None and last.done
                return last.backup

            making = asyncio.ensure_future(backup())
            assert await asyncio.to_thread(reading.wait, 10)
            reopening = asyncio.ensure_future(backend._reopen())
            await asyncio.sleep(0.2)
            waited = not reopening.done()
            go_on.set()
            made = await making
            await reopening
            await backend.append([AppendOp(T, req("s", ev()))])  # the reopened database takes writes
            return made, waited
        finally:
            go_on.set()
            await backend.close()

    made, waited = asyncio.run(body())
    assert waited
    assert made.events == 20


def test_an_incremental_reads_its_parents_indexes_at_once_and_copies_only_what_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An incremental backup compares each key-value family with its parent's index of it. The parent's
    index chunks are read ahead, several at once (with S3 each read is a round trip; one after another
    they took much of a small incremental), in the order the families are compared: two tenants and the
    suite's records, each compared with its own index, so only the one stream record that changed is
    copied. A damaged index chunk of the parent is named, and no backup is made on it."""
    in_flight, most = 0, 0
    lock = threading.Lock()
    plain = LocalDirectory.get

    def slow_get(self: LocalDirectory, backup_id: str, object_name: str) -> bytes | None:
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
        try:
            time.sleep(0.05)  # a remote store's round trip
            return plain(self, backup_id, object_name)
        finally:
            with lock:
                in_flight -= 1

    async def body() -> tuple[list[fmt.Manifest], str]:
        nonlocal most
        backend = RocksBackend(StorageSettings(data_dir=str(tmp_path / "data")))
        await backend.start()
        try:
            await backend.put_tenant(model_pb2.TenantRecord(tenant_id="acme"), 0)
            await backend.append([AppendOp(T, req("a", *[ev() for _ in range(5)]))])
            await backend.append([AppendOp("acme", req("b", *[ev() for _ in range(5)]))])
            for tenant in (T, "acme", ""):
                await backend.put_record(tenant, "settings", "colour", b"blue", None)
            jobs = BackupJobs(backend, BackupSettings(dir=str(tmp_path / "backups")))

            async def backup() -> fmt.Manifest:
                last = None
                async for progress in jobs.create(backup_pb2.CreateBackupRequest(incremental=bool(made))):
                    last = progress
                assert last is not None and last.done
                raw = (tmp_path / "backups" / last.backup.backup_id / fmt.MANIFEST).read_bytes()
                return fmt.Manifest.from_json(raw)

            made: list[fmt.Manifest] = []
            made.append(await backup())
            monkeypatch.setattr(LocalDirectory, "get", slow_get)
            await backend.append([AppendOp("acme", req("b", ev()))])
            made.append(await backup())
            # Verifying the chain (as restores do first) reads its chunks several at once too.
            most_before, most = most, 0
            job = {
                "destination": jobs.destination_config(""),
                "backup_id": made[-1].backup_id,
                "staging": str(tmp_path / "staging"),
                "verify_only": True,
            }
            verified = Loader(job, report=lambda message: None).run()
            assert verified["problems"] == [] and verified["chunks"] == sum(len(m.chunks) for m in made)
            assert most > 1, "a chain's chunks were verified one at a time"
            most = most_before
            # One of the parent's index chunks damaged: the next incremental names it and is not made.
            damaged = next(c for c in made[-1].chunks if c.tenant_id == T and c.section == "records.index")
            path = tmp_path / "backups" / made[-1].backup_id / damaged.name
            path.write_bytes(path.read_bytes()[:-1] + b"\0")
            with pytest.raises(AllSourceError) as refused:
                await backup()
            return made, refused.value.message
        finally:
            await backend.close()

    made, refused = asyncio.run(body())
    full, incremental = made
    indexes = {(c.tenant_id, c.section) for c in full.chunks if c.section.endswith(".index")}
    assert {("acme", "records.index"), ("", "records.index"), (T, "records.index")} <= indexes
    assert not any(section == "streams.index" for _, section in indexes)  # heads go by their last position
    copied = [(c.tenant_id, c.section, c.records) for c in incremental.chunks if c.section in fmt.KV_FAMILIES]
    assert copied == [("acme", "streams", 1)], copied  # only the stream that changed
    assert [(t.tenant_id, t.events) for t in incremental.tenants] == [("acme", 1), (T, 0)]
    assert most > 1, "the parent's index chunks were read one at a time"
    assert "records.index" in refused and "SHA-256" in refused
    assert [m.backup_id for m in made] == sorted(p.name for p in (tmp_path / "backups").iterdir())
