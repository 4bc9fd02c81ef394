"""White-box: every RocksDB write of the embedded backend syncs the WAL exactly when `storage.sync_writes`
says so (or, for the writes documented as best effort, never on its own).

The engine is wrapped where the backend opens it, so every write (the group-commit writer's batches,
records, tenant records, the tenant purge, start-up registration) is seen with the options it carried.
The backend's methods come from the StorageBackend interfaces: each must be classified below, so a new
write path cannot be left out.

Mutations this catches (each applied once and seen to fail): the writer's `WriteOptions.sync` forced
off; the record writes given `WriteOptions()` (never synced); the purge given sync=True whatever the
setting; `apply_settings` not passing a reloaded `sync_writes` to the record writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from allsource.storage.v1 import lifecycle_pb2, model_pb2

from services.storage import rocksdb_backend
from services.storage.backend import AppendOp, Snapshot, StorageBackend
from services.storage.rocksdb_backend import RocksBackend
from shared.config.settings import StorageSettings
from tests.storage.contract import T, ev, req

# What each method of the storage interfaces writes: DURABLE writes follow storage.sync_writes,
# BEST_EFFORT ones never sync (a snapshot only saves work; query counts are approximate), READ ones
# write nothing.
DURABLE, BEST_EFFORT, READ = "durable", "best effort", "read"
POLICY = {
    "start": DURABLE,
    "append": DURABLE,
    "put_record": DURABLE,
    "delete_record": DURABLE,
    "put_tenant": DURABLE,
    "delete_tenant": DURABLE,
    "put_snapshot": BEST_EFFORT,
    "add_usage": BEST_EFFORT,
    "get_event": READ,
    "read_stream": READ,
    "read_events": READ,
    "list_streams": READ,
    "get_stream": READ,
    "volatile": READ,
    "head_position": READ,
    "present": READ,
    "wait_for_commit": READ,
    "get_snapshot": READ,
    "get_record": READ,
    "list_records": READ,
    "wait_for_records": READ,
    "check_tenant_usable": READ,
    "tenant_incarnation": READ,
    "get_tenant": READ,
    "list_tenants": READ,
    "tenant_usage": READ,
    "index_stats": READ,
    "quota_warning": READ,
    "stats": READ,
    "close": READ,
    "get_stream_metadata": READ,
    "set_stream_metadata": DURABLE,
    "delete_stream": DURABLE,
    "delete_events": DURABLE,
}
Step = Callable[[StorageBackend], Awaitable[object]]


def steps() -> list[tuple[str, Step]]:
    """Each method, called once on a started backend (in this order; `start` is called by the test)."""
    acme = model_pb2.TenantRecord(tenant_id="acme")
    filter_ = model_pb2.EventFilter()
    return [
        ("append", lambda b: b.append([AppendOp(T, req("s", ev()))])),
        ("put_record", lambda b: b.put_record(T, "users", "u1", b"x", None)),
        ("get_record", lambda b: b.get_record(T, "users", "u1")),
        ("list_records", lambda b: b.list_records(T, "users", "", 10)),
        ("wait_for_records", lambda b: b.wait_for_records(T, "users", 0.01)),
        ("delete_record", lambda b: b.delete_record(T, "users", "u1", None)),
        ("put_tenant", lambda b: b.put_tenant(acme, 0)),
        ("put_tenant", lambda b: b.put_tenant(acme, 1)),
        ("append", lambda b: b.append([AppendOp("acme", req("s", ev(), ev()))])),
        ("put_snapshot", lambda b: b.put_snapshot(T, "s", Snapshot(1, b"{}", 1))),
        ("get_snapshot", lambda b: b.get_snapshot(T, "s", 1)),
        ("add_usage", lambda b: b.add_usage(T, 3)),
        ("get_event", lambda b: b.get_event(T, "00000000-0000-7000-8000-000000000000")),
        ("read_stream", lambda b: b.read_stream(T, "s", backward=False, from_version=0, limit=10)),
        ("read_events", lambda b: b.read_events(T, filter_, after_position=0, limit=10, max_scan=10)),
        ("list_streams", lambda b: b.list_streams(T, prefix="", after="", limit=10)),
        ("get_stream", lambda b: b.get_stream(T, "s", None)),
        ("volatile", lambda b: b.volatile(T, "s")),
        ("head_position", lambda b: b.head_position(T)),
        ("present", lambda b: asyncio.sleep(0, b.present(T, [1, 2]))),
        ("wait_for_commit", lambda b: b.wait_for_commit(T, 0, 0.01)),
        ("check_tenant_usable", lambda b: b.check_tenant_usable(T)),
        ("tenant_incarnation", lambda b: b.tenant_incarnation("acme")),
        ("get_tenant", lambda b: b.get_tenant("acme")),
        ("list_tenants", lambda b: b.list_tenants("", 10)),
        ("tenant_usage", lambda b: b.tenant_usage("acme")),
        ("index_stats", lambda b: b.index_stats("acme")),
        ("quota_warning", lambda b: b.quota_warning("acme", 0.8)),
        ("stats", lambda b: b.stats()),
        (
            "set_stream_metadata",
            lambda b: b.set_stream_metadata(
                lifecycle_pb2.SetStreamMetadataRequest(
                    tenant_id=T, stream_id="s", metadata=lifecycle_pb2.StreamMetadata(max_count=5)
                )
            ),
        ),
        ("get_stream_metadata", lambda b: b.get_stream_metadata(T, "s")),
        (
            "delete_events",
            lambda b: b.delete_events(lifecycle_pb2.DeleteEventsRequest(tenant_id=T, stream_id_prefix="s")),
        ),
        ("delete_stream", lambda b: b.delete_stream(lifecycle_pb2.DeleteStreamRequest(tenant_id=T, stream_id="s"))),
        ("delete_tenant", lambda b: b.delete_tenant("acme")),
        ("close", lambda b: b.close()),
    ]


class Recorded:
    """The writes the engine was asked for: (what, sync) each."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, bool]] = []

    def take(self) -> list[tuple[str, bool]]:
        taken, self.writes = self.writes, []
        return taken


class Spy:
    """A database or column family that records every write with the sync flag of its options."""

    WRITES = {"write": 1, "put": 2, "delete": 1, "delete_range": 2}  # method -> index of its options

    def __init__(self, inner: Any, recorded: Recorded) -> None:
        self._inner = inner
        self._recorded = recorded

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name == "get_column_family":
            return lambda *a, **k: Spy(attribute(*a, **k), self._recorded)
        if name not in self.WRITES:
            return attribute
        index = self.WRITES[name]

        def write(*args: Any, **kwargs: Any) -> Any:
            options = args[index] if len(args) > index else kwargs.get("write_opt")
            self._recorded.writes.append((name, bool(options is not None and options.sync)))
            return attribute(*args, **kwargs)

        return write


def interface_methods() -> set[str]:
    return set(StorageBackend.__abstractmethods__)


def test_every_backend_method_is_classified() -> None:
    """A new storage method must say here whether (and how durably) it writes."""
    missing = interface_methods() - set(POLICY)
    assert not missing, f"classify these storage methods in POLICY: {sorted(missing)}"
    assert {name for name, _ in steps()} | {"start"} == set(POLICY), "every classified method needs a step"


@pytest.mark.parametrize(
    ("configured", "reloaded"),
    [(True, None), (False, None), (True, False), (False, True)],
    ids=["sync", "no-sync", "reloaded-off", "reloaded-on"],
)
def test_every_write_syncs_as_storage_sync_writes_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, configured: bool, reloaded: bool | None
) -> None:
    recorded = Recorded()
    engine = rocksdb_backend.Rdict
    monkeypatch.setattr(rocksdb_backend, "Rdict", lambda *a, **k: Spy(engine(*a, **k), recorded))
    wrong: list[str] = []
    seen: dict[str, int] = {}

    def check(name: str, writes: list[tuple[str, bool]], sync: bool) -> None:
        seen[name] = seen.get(name, 0) + len(writes)
        expected = {DURABLE: sync, BEST_EFFORT: False}.get(POLICY[name])
        for kind, synced in writes:
            if expected is None:
                wrong.append(f"{name} wrote ({kind}), but it is classified as a read")
            elif synced != expected:
                wrong.append(f"{name}: {kind} with sync={synced}, expected sync={expected}")

    async def body() -> None:
        backend = RocksBackend(StorageSettings(data_dir=str(tmp_path), sync_writes=configured))
        await backend.start()
        check("start", recorded.take(), configured)
        sync = configured
        if reloaded is not None:
            backend.apply_settings(StorageSettings(data_dir=str(tmp_path), sync_writes=reloaded))
            sync = reloaded
        for name, step in steps():
            try:
                await step(backend)
            except Exception as exc:  # a refused read (not found) still shows what it wrote: nothing
                if POLICY[name] != READ:
                    raise AssertionError(f"{name} failed: {exc!r}") from exc
            check(name, recorded.take(), sync)

    asyncio.run(body())
    assert not wrong, "\n".join(wrong)
    silent = [name for name, policy in POLICY.items() if policy != READ and not seen.get(name)]
    assert not silent, f"these write paths wrote nothing through the engine (is the spy bypassed?): {silent}"
