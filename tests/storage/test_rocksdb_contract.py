"""The storage contract against the embedded RocksDB backend, plus RocksDB-specific behaviour."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from allsource.storage.v1 import model_pb2

from services.storage.backend import AppendOp, StorageBackend, StorageOpenError
from services.storage.rocksdb_backend import RocksBackend
from shared.config.settings import StorageSettings
from shared.core.errors import AllSourceError
from tests.storage.contract import StorageContract, T, ev, req


class TestRocksContract(StorageContract):
    def new_backend(self, path: Path) -> StorageBackend:
        return RocksBackend(StorageSettings(data_dir=str(path)))


def test_concurrent_appends_share_write_batches(tmp_path: Path) -> None:
    async def body() -> None:
        b = RocksBackend(StorageSettings(data_dir=str(tmp_path)))
        await b.start()
        try:
            results = await b.append([AppendOp(T, req(f"s-{i}", ev())) for i in range(200)])
            assert sorted(r.first_position for r in results) == list(range(1, 201))
            stats = await b.stats()
            assert stats.appends_committed == 200
            # 200 appends of 6 entries each fit in one 4000-entry group
            assert stats.write_batches == 1
        finally:
            await b.close()

    asyncio.run(body())


def test_failed_write_acknowledges_nothing_and_keeps_state(tmp_path: Path) -> None:
    async def body() -> None:
        b = RocksBackend(StorageSettings(data_dir=str(tmp_path)))
        await b.start()
        try:
            await b.append([AppendOp(T, req("s", ev()))])
            writer: Any = b._writer
            real_db = writer._db

            class Failing:
                def write(self, *a: Any) -> None:
                    raise OSError("disk full")

                def __getattr__(self, name: str) -> Any:
                    return getattr(real_db, name)

            writer._db = Failing()
            (failed,) = await b.append([AppendOp(T, req("s", ev()))])
            assert isinstance(failed, AllSourceError)
            assert failed.reason == "STORAGE_WRITE_FAILED" and failed.code.name == "UNAVAILABLE"
            assert await b.head_position(T) == 1
            writer._db = real_db
            (ok,) = await b.append([AppendOp(T, req("s", ev()))])
            assert (ok.first_version, ok.first_position) == (2, 2)  # no gap left by the failure
        finally:
            await b.close()

    asyncio.run(body())


def test_engine_errors_on_reads_become_typed_errors(tmp_path: Path) -> None:
    async def body() -> None:
        b = RocksBackend(StorageSettings(data_dir=str(tmp_path)))
        await b.start()
        await b.append([AppendOp(T, req("s", ev()))])
        real = b._cf["stream_idx"]

        class Broken:
            def get(self, *a: Any, **k: Any) -> Any:
                raise RuntimeError("Corruption: block checksum mismatch")

        b._cf["stream_idx"] = Broken()
        try:
            with pytest.raises(AllSourceError) as err:
                await b.read_stream(T, "s", backward=False, from_version=1, limit=10)
            assert err.value.reason == "STORAGE_ENGINE_ERROR"
            assert "checksum" not in err.value.message  # engine internals stay in the log
        finally:
            b._cf["stream_idx"] = real
            await b.close()

    asyncio.run(body())


def test_second_process_cannot_open_the_same_database(tmp_path: Path) -> None:
    async def body() -> None:
        first = RocksBackend(StorageSettings(data_dir=str(tmp_path)))
        await first.start()
        try:
            with pytest.raises(StorageOpenError):
                await RocksBackend(StorageSettings(data_dir=str(tmp_path))).start()
        finally:
            await first.close()

    asyncio.run(body())


def test_an_interrupted_tenant_deletion_finishes_at_the_next_start(tmp_path: Path) -> None:
    """A crash after the deletion was recorded and before the range was purged: the next start purges
    it, so no key of the tenant survives and the id can be created again."""

    from services.storage import keys

    async def first() -> int:
        b = RocksBackend(StorageSettings(data_dir=str(tmp_path)))
        await b.start()
        await b.put_tenant(model_pb2.TenantRecord(tenant_id="acme"), 0)
        await b.append([AppendOp("acme", req("s", ev(), ev()))])
        await b.put_record("acme", "users", "u1", b"x", None)
        number = await b.tenant_incarnation("acme")
        # What delete_tenant records before it starts purging, then "crash".
        b._cf["meta"].put(keys.META_TENANT_DELETING + b"acme", keys.tenant_prefix(number))
        await b.close()
        return number

    async def second(number: int) -> None:
        b = RocksBackend(StorageSettings(data_dir=str(tmp_path)))
        await b.start()
        try:
            prefix = keys.tenant_prefix(number)
            for name, cf in b._cf.items():
                if name == "meta":
                    left = [k for k, _ in cf.items() if b"acme" in k or prefix in k[:20]]
                else:
                    left = [k for k, _ in cf.items() if k.startswith(prefix)]
                assert not left, (name, left)
            with pytest.raises(AllSourceError):
                await b.get_tenant("acme")
            await b.put_tenant(model_pb2.TenantRecord(tenant_id="acme"), 0)
            assert await b.tenant_incarnation("acme") > number
            assert (await b.tenant_usage("acme")).events == 0
        finally:
            await b.close()

    number = asyncio.run(first())
    asyncio.run(second(number))
