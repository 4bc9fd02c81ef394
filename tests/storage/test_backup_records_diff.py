"""An incremental backup's records: exactly those changed, added and deleted since its parent, over a
family of several thousand records (the dump compares them a block of 1,024 at a time)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from allsource.storage.v1 import backup_pb2

from services.storage import keys
from services.storage.backend import AppendOp
from services.storage.backup import format as fmt
from services.storage.backup.jobs import BackupJobs
from services.storage.rocksdb_backend import RocksBackend
from shared.config.settings import BackupSettings, StorageSettings
from tests.storage.contract import T, ev, req

RECORDS = 3000


def _sections(root: Path, backup_id: str) -> dict[str, list[tuple[bytes, bytes]]]:
    """The records of each section of a backup (in chunk order)."""
    manifest = fmt.Manifest.from_json((root / backup_id / fmt.MANIFEST).read_bytes())
    out: dict[str, list[tuple[bytes, bytes]]] = {}
    for chunk in manifest.chunks:
        if chunk.tenant_id == T and chunk.section != fmt.EVENTS:
            data = fmt.decompress((root / backup_id / chunk.name).read_bytes(), chunk.name)
            out.setdefault(chunk.section, []).extend(fmt.decode_records(data, chunk.name))
    return out


async def _backup(jobs: BackupJobs, incremental: bool) -> str:
    """A backup of tenant T to its end; its id."""
    last = None
    async for progress in jobs.create(backup_pb2.CreateBackupRequest(tenant_ids=[T], incremental=incremental)):
        last = progress
    assert last is not None and last.done
    return last.backup.backup_id


def test_an_incremental_backup_holds_exactly_the_records_changed_added_and_deleted(tmp_path: Path) -> None:
    root = tmp_path / "backups"

    async def body() -> tuple[dict[str, list[tuple[bytes, bytes]]], dict[str, list[tuple[bytes, bytes]]], bytes]:
        backend = RocksBackend(StorageSettings(data_dir=str(tmp_path / "data")))
        await backend.start()
        try:
            await backend.append([AppendOp(T, req("s", ev()))])
            prefix = keys.tenant_prefix(backend._tenants[T].number)
            records = backend._cf["records"]
            for i in range(RECORDS):
                records[prefix + b"bench/%05d" % i] = b"value %d" % i
            jobs = BackupJobs(backend, BackupSettings(dir=str(root)))

            full = await _backup(jobs, False)
            # Changed: in the first, a middle and the last block; added: between and after; deleted: two.
            for i in (5, 1500, 2999):
                records[prefix + b"bench/%05d" % i] = b"changed %d" % i
            records[prefix + b"bench/01500a"] = b"added between"
            records[prefix + b"bench/99999"] = b"added last"
            del records[prefix + b"bench/00007"]
            del records[prefix + b"bench/02048"]
            incremental = await _backup(jobs, True)
            return _sections(root, full), _sections(root, incremental), prefix
        finally:
            await backend.close()

    full, incremental, _ = asyncio.run(body())
    ours = [(k, v) for k, v in full["records"] if k.startswith(b"bench/")]
    assert len(ours) == RECORDS
    assert [(k, v) for k, v in incremental["records"] if k.startswith(b"bench/")] == [
        (b"bench/00005", b"changed 5"),
        (b"bench/01500", b"changed 1500"),
        (b"bench/01500a", b"added between"),
        (b"bench/02999", b"changed 2999"),
        (b"bench/99999", b"added last"),
    ]
    assert [k for k, _ in incremental["records.deleted"]] == [b"bench/00007", b"bench/02048"]
    # The index: every record the tenant has now, in key order, each with its value's digest.
    index = incremental["records.index"]
    assert [k for k, _ in index] == sorted(k for k, _ in index)
    by_key = dict(index)
    assert len([k for k in by_key if k.startswith(b"bench/")]) == RECORDS + 2 - 2
    assert by_key[b"bench/01500"] == fmt.digest(b"changed 1500")
    assert by_key[b"bench/00006"] == fmt.digest(b"value 6")
    assert b"bench/00007" not in by_key


def test_digests_and_columns_agree_with_their_one_at_a_time_forms() -> None:
    values = [b"", b"a", b"x" * 10_000, bytes(range(256))]
    assert fmt.digests(values) == [fmt.digest(v) for v in values]
    keys_ = [b"k%d" % i for i in range(len(values))]
    raw = fmt.encode_columns(keys_, values)
    assert fmt.decode_columns(raw, "c") == (keys_, values)
    assert list(fmt.decode_records(raw, "c")) == list(zip(keys_, values, strict=True))
    assert fmt.decode_columns(fmt.encode_columns([], []), "c") == ([], [])


def test_an_incremental_holds_exactly_the_heads_of_the_streams_appended_to(tmp_path: Path) -> None:
    """Stream heads go by their last position (a head changes only by an append to its stream), over
    several blocks of 1,024 heads, and no index of them is written."""
    root = tmp_path / "backups"

    async def body() -> tuple[fmt.Manifest, dict[str, list[tuple[bytes, bytes]]], dict[bytes, bytes]]:
        backend = RocksBackend(StorageSettings(data_dir=str(tmp_path / "data")))
        await backend.start()
        try:
            await backend.append([AppendOp(T, req(f"s-{i:05d}", ev())) for i in range(RECORDS)])
            jobs = BackupJobs(backend, BackupSettings(dir=str(root)))

            full = await _backup(jobs, False)
            await backend.append([AppendOp(T, req(f"s-{i:05d}", ev(), ev())) for i in (5, 1500, 2999)])
            await backend.append([AppendOp(T, req("s-new", ev()))])
            incremental = await _backup(jobs, True)
            prefix = keys.tenant_prefix(backend._tenants[T].number)
            heads = {k[4:]: v for k, v in backend._cf["streams"].items(from_key=prefix) if k.startswith(prefix)}
            return (
                fmt.Manifest.from_json((root / full / fmt.MANIFEST).read_bytes()),
                _sections(root, incremental),
                heads,
            )
        finally:
            await backend.close()

    full, incremental, heads = asyncio.run(body())
    assert not any(c.section == "streams.index" for c in full.chunks)
    assert sum(c.records for c in full.chunks if c.section == "streams") == RECORDS
    changed = [b"s-00005", b"s-01500", b"s-02999", b"s-new"]
    assert incremental["streams"] == [(k, heads[k]) for k in changed]
    assert "streams.index" not in incremental


def test_an_incremental_holds_exactly_the_append_results_stored_since_its_parent(tmp_path: Path) -> None:
    """Stored append results (idempotency records: one per append with a request id, kept) go by their
    recording time; an append repeated with the same request id stores nothing new."""
    root = tmp_path / "backups"

    async def body() -> tuple[fmt.Manifest, dict[str, list[tuple[bytes, bytes]]]]:
        backend = RocksBackend(StorageSettings(data_dir=str(tmp_path / "data")))
        await backend.start()
        try:
            await backend.append([AppendOp(T, req("s", ev(), request_id=f"r-{i:05d}")) for i in range(RECORDS)])
            # The parent ends with a later append: what its last batch stored comes again (harmless), so
            # the results above must not be in that batch.
            await asyncio.sleep(0.002)
            await backend.append([AppendOp(T, req("s", ev()))])
            jobs = BackupJobs(backend, BackupSettings(dir=str(root)))
            full = await _backup(jobs, False)
            await backend.append([AppendOp(T, req("s", ev(), request_id="r-00005"))])  # a retry: deduplicated
            await backend.append([AppendOp(T, req("s", ev(), request_id=f"r-new-{i}")) for i in range(3)])
            incremental = await _backup(jobs, True)
            return fmt.Manifest.from_json((root / full / fmt.MANIFEST).read_bytes()), _sections(root, incremental)
        finally:
            await backend.close()

    full, incremental = asyncio.run(body())
    assert not any(c.section == "requests.index" for c in full.chunks)
    assert sum(c.records for c in full.chunks if c.section == "requests") == RECORDS
    assert [k for k, _ in incremental["requests"]] == [b"r-new-0", b"r-new-1", b"r-new-2"]
    assert "requests.index" not in incremental
