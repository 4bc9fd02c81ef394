"""Backups and restores take turns: a call that finds another running waits in arrival order instead of
being refused, one job per set of tenants running or waiting, and the line is bounded."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from allsource.storage.v1 import backup_pb2

from services.storage.backend import AppendOp
from services.storage.backup import dump
from services.storage.backup.jobs import BackupJobs, Turns
from services.storage.rocksdb_backend import RocksBackend
from shared.config.settings import BackupSettings, StorageSettings
from shared.core.errors import AllSourceError
from tests.storage.contract import StorageContract, T, ev, req


def test_turns_go_in_arrival_order_one_per_scope() -> None:
    async def body() -> list[str]:
        turns = Turns()
        order: list[str] = []
        release = {name: asyncio.Event() for name in ("a", "b", "c")}

        async def job(scope: str, name: str) -> None:
            async with turns.turn(scope):
                order.append(name)
                await release[name].wait()

        first = asyncio.ensure_future(job("acme", "a"))
        await asyncio.sleep(0)
        assert turns.running == "acme"
        # The same tenants again, while theirs runs: refused, not queued.
        with pytest.raises(AllSourceError) as busy:
            turns.must_wait("acme")
        assert busy.value.reason == "BACKUP_BUSY"
        assert turns.must_wait("")  # another scope waits
        second = asyncio.ensure_future(job("", "b"))
        third = asyncio.ensure_future(job("globex", "c"))
        await asyncio.sleep(0)
        with pytest.raises(AllSourceError):
            turns.must_wait("globex")  # already waiting
        release["a"].set()
        await first
        # acme asks again once its job is done: behind those who waited meanwhile.
        again = asyncio.ensure_future(job("acme", "a2"))
        release["a2"] = asyncio.Event()
        release["a2"].set()
        release["b"].set()
        release["c"].set()
        await asyncio.gather(second, third, again)
        assert turns.running is None and not turns.waiting
        return order

    assert asyncio.run(body()) == ["a", "b", "c", "a2"]


def test_a_caller_gone_leaves_the_line_and_a_turn_given_to_one_gone_passes_on() -> None:
    async def body() -> list[str]:
        turns = Turns()
        order: list[str] = []
        hold = asyncio.Event()

        async def job(scope: str) -> None:
            async with turns.turn(scope):
                order.append(scope)
                if scope == "first":
                    await hold.wait()

        first = asyncio.ensure_future(job("first"))
        await asyncio.sleep(0)
        gone = asyncio.ensure_future(job("gone"))
        late = asyncio.ensure_future(job("late"))
        await asyncio.sleep(0)
        gone.cancel()
        await asyncio.sleep(0)
        assert list(turns.waiting) == ["late"]
        # Given its turn as it is cancelled: the turn goes on to the next.
        given = asyncio.ensure_future(job("given"))
        await asyncio.sleep(0)
        hold.set()
        await first  # hands the turn to "late"
        await late
        assert turns.running == "given"
        given.cancel()
        with pytest.raises(asyncio.CancelledError):
            await given
        assert turns.running is None
        after = asyncio.ensure_future(job("after"))
        await after
        return order

    assert asyncio.run(body()) == ["first", "late", "after"]


def test_the_line_is_bounded() -> None:
    async def body() -> None:
        turns = Turns()
        hold = asyncio.Event()

        async def job(scope: str) -> None:
            async with turns.turn(scope):
                await hold.wait()

        jobs = [asyncio.ensure_future(job(f"t{i}")) for i in range(Turns.MAX_WAITING + 1)]
        await asyncio.sleep(0)
        assert len(turns.waiting) == Turns.MAX_WAITING
        with pytest.raises(AllSourceError) as busy:
            turns.must_wait("one-more")
        assert busy.value.reason == "BACKUP_BUSY"
        hold.set()
        await asyncio.gather(*jobs)

    asyncio.run(body())


def test_the_operators_backup_waits_for_a_tenants_backup_instead_of_being_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: one tenant's running backup made every other backup fail with BACKUP_BUSY, so a tenant
    making backup after backup could keep the operator's (scheduled) backups out for good."""
    reading, go_on = threading.Event(), threading.Event()
    plain_events = dump.Dump._events

    def held(self: dump.Dump, *args: Any) -> None:
        if self.job.get("tenant_ids") == ["acme"]:
            reading.set()
            assert go_on.wait(10)
        plain_events(self, *args)

    monkeypatch.setattr(dump.Dump, "_events", held)

    async def body() -> tuple[list[str], list[str], str]:
        backend = RocksBackend(StorageSettings(data_dir=str(tmp_path / "data")))
        await backend.start()
        try:
            await StorageContract.new_tenant(backend, "acme")
            await backend.append([AppendOp("acme", req("s", *[ev() for _ in range(20)]))])
            await backend.append([AppendOp(T, req("s", ev()))])
            jobs = BackupJobs(backend, BackupSettings(dir=str(tmp_path / "backups")))

            async def backup(tenant_ids: list[str]) -> list[str]:
                phases = []
                async for progress in jobs.create(backup_pb2.CreateBackupRequest(tenant_ids=tenant_ids)):
                    phases.append(progress.phase)
                return phases

            tenants = asyncio.ensure_future(backup(["acme"]))
            assert await asyncio.to_thread(reading.wait, 10)
            suite = asyncio.ensure_future(backup([]))
            for _ in range(200):  # until it waits its turn (bounded), or ends (refused, before)
                if "" in jobs.turns.waiting or suite.done():
                    break
                await asyncio.sleep(0.05)
            assert not suite.done()  # waiting, not refused
            refused = ""
            try:
                await backup(["acme"])  # the same tenant again while its own runs
            except AllSourceError as exc:
                refused = exc.reason
            go_on.set()
            return await tenants, await suite, refused
        finally:
            go_on.set()
            await backend.close()

    tenants, suite, refused = asyncio.run(body())
    assert tenants[0] == "checkpoint" and tenants[-1] == "done"
    assert suite[0] == "queued" and suite[1] == "checkpoint" and suite[-1] == "done"
    assert refused == "BACKUP_BUSY"


def test_verifications_run_one_at_a_time_in_turns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each VerifyBackup reads and hashes a whole chain in a worker process; before, every call started
    one at once, so a tenant could start as many as it made calls."""
    running: list[int] = [0]
    most: list[int] = [0]
    go_on = asyncio.Event()

    async def worker(self: BackupJobs, module: str, job: dict[str, Any]) -> Any:
        running[0] += 1
        most[0] = max(most[0], running[0])
        try:
            await go_on.wait()
            yield {"summary": {"problems": [], "chunks": 1, "bytes": 1}}
        finally:
            running[0] -= 1

    async def body() -> tuple[list[bool], str]:
        backend = RocksBackend(StorageSettings(data_dir=str(tmp_path / "data")))
        await backend.start()
        try:
            for tenant in ("acme", "globex"):
                await StorageContract.new_tenant(backend, tenant)
                await backend.append([AppendOp(tenant, req("s", ev()))])
            jobs = BackupJobs(backend, BackupSettings(dir=str(tmp_path / "backups")))
            made = {}
            for tenant in ("acme", "acme", "globex"):
                async for progress in jobs.create(backup_pb2.CreateBackupRequest(tenant_ids=[tenant])):
                    if progress.done:
                        made.setdefault(tenant, []).append(progress.backup.backup_id)
            monkeypatch.setattr(BackupJobs, "_process", worker)

            def verify(backup_id: str) -> Any:
                return asyncio.ensure_future(jobs.verify(backup_pb2.VerifyBackupRequest(backup_id=backup_id)))

            async def until(condition: Any) -> None:  # each call reads its manifest on a thread first
                for _ in range(200):
                    if condition():
                        return
                    await asyncio.sleep(0.05)

            first = verify(made["acme"][0])
            await until(lambda: jobs.verifies.running == "acme")
            other = verify(made["globex"][0])
            await until(lambda: "globex" in jobs.verifies.waiting)
            again = verify(made["acme"][1])  # the same tenant's, while its first is running
            await asyncio.wait([again], timeout=10)
            assert again.done(), "the same tenant's second verification was not refused"
            refused = getattr(again.exception(), "reason", "")
            go_on.set()
            return [(await first).ok, (await other).ok], refused
        finally:
            go_on.set()
            await backend.close()

    oks, refused = asyncio.run(body())
    assert oks == [True, True] and refused == "BACKUP_BUSY"
    assert most[0] == 1
