"""Helpers of the backup tests: appends, whole-tenant reads, and the BackupService calls."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Sequence

import grpc
from allsource.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    backup_pb2,
    backup_pb2_grpc,
    event_pb2,
    ingest_pb2,
    ingest_pb2_grpc,
    query_pb2,
    query_pb2_grpc,
)

from tests.harness import Suite

Metadata = Sequence[tuple[str, str]]


def acting(suite: Suite, tenant: str) -> tuple[tuple[str, str], ...]:
    """The bootstrap operator acting on a tenant."""
    return (*suite.auth_metadata(), ("x-allsource-tenant", tenant))


def append(suite: Suite, md: Metadata, stream: str, count: int, *, kind: str = "Happened", start: int = 0) -> list[int]:
    """One atomic append of `count` events; returns their positions."""
    reply = ingest_pb2_grpc.IngestServiceStub(suite.channel("ingest", md)).AppendEvents(
        ingest_pb2.AppendEventsRequest(
            stream_id=stream,
            events=[
                event_pb2.EventData(
                    event_type=kind,
                    payload=json.dumps({"n": start + i, "stream": stream}).encode(),
                    metadata={"source": "backup-test", "i": str(start + i)},
                )
                for i in range(count)
            ],
        )
    )
    return list(range(reply.first_position, reply.last_position + 1))


def fill(suite: Suite, md: Metadata, prefix: str, events: int, *, streams: int = 50, batch: int = 500) -> None:
    """`events` events over `streams` streams, in appends of `batch`."""
    done = 0
    while done < events:
        n = min(batch, events - done)
        append(suite, md, f"{prefix}-{(done // batch) % streams}", n, start=done)
        done += n


def everything(suite: Suite, md: Metadata) -> dict[str, tuple[object, ...]]:
    """Every event of the tenant, field by field, by event id."""
    stub = query_pb2_grpc.QueryServiceStub(suite.channel("query", md))
    out: dict[str, tuple[object, ...]] = {}
    for message in stub.StreamEvents(query_pb2.StreamEventsRequest(batch_size=1000), timeout=300):
        for e in message.events:
            out[e.event_id] = (
                e.stream_id,
                e.version,
                e.position,
                e.event_type,
                e.payload,
                e.content_type,
                tuple(sorted(e.metadata.items())),
                e.recorded_at.seconds,
                e.recorded_at.nanos,
                e.occurred_at.seconds,
                e.occurred_at.nanos,
            )
    return out


def backups(suite: Suite, md: Metadata | None = None) -> backup_pb2_grpc.BackupServiceStub:
    return backup_pb2_grpc.BackupServiceStub(suite.channel("admin", md))


def create(
    suite: Suite, md: Metadata | None = None, stub: backup_pb2_grpc.BackupServiceStub | None = None, **kw: object
) -> backup_pb2.Backup:
    """CreateBackup to its end (through `stub`, or a new channel); the backup made."""
    last = None
    stub = stub or backups(suite, md)
    for progress in stub.CreateBackup(backup_pb2.CreateBackupRequest(**kw), timeout=300):  # type: ignore[arg-type]
        last = progress
    assert last is not None and last.done, last
    return last.backup


def restore(suite: Suite, md: Metadata | None = None, **kw: object) -> backup_pb2.RestoreBackupResponse:
    """RestoreBackup to its end; the last message."""
    last = None
    for progress in backups(suite, md).RestoreBackup(backup_pb2.RestoreBackupRequest(**kw), timeout=300):  # type: ignore[arg-type]
        last = progress
    assert last is not None and last.done, last
    return last


def restore_offline(suite: Suite, operator_key: str, backup_id: str, *args: str) -> str:
    """With the suite stopped: its data directory deleted and the chain ending at `backup_id` restored into
    it (`python -m services.storage restore`, with `args`), the bootstrap key file written back (it lived
    in the data directory; the key itself is in the restored records). Returns the tool's output."""
    shutil.rmtree(suite.data_dir)
    result = subprocess.run(
        [sys.executable, "-m", "services.storage", "restore", "--backup-id", backup_id, *args],
        env=suite.env(),
        cwd=suite.workdir.parent,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert '"done": true' in result.stdout
    (suite.data_dir / "bootstrap-admin.key").write_text(operator_key + "\n")
    return result.stdout


def delete_tenant(suite: Suite, tenant: str) -> None:
    admin_pb2_grpc.AdminServiceStub(suite.channel("admin")).DeleteTenant(
        admin_pb2.DeleteTenantRequest(tenant_id=tenant, confirm_tenant_id=tenant)
    )


class Writers:
    """Threads that keep appending to their own streams until stopped; every acknowledged event id kept."""

    def __init__(self, suite: Suite, md: Metadata, prefix: str, count: int) -> None:
        self.suite, self.md, self.prefix = suite, md, prefix
        self.stop = threading.Event()
        self.acked: list[str] = []
        self.errors: list[BaseException] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(count)]

    def __enter__(self) -> Writers:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)
        assert not self.errors, self.errors[:3]

    def _run(self, index: int) -> None:
        stub = ingest_pb2_grpc.IngestServiceStub(self.suite.channel("ingest", self.md))
        n = 0
        while not self.stop.is_set():
            try:
                reply = stub.AppendEvents(
                    ingest_pb2.AppendEventsRequest(
                        stream_id=f"{self.prefix}-{index}",
                        events=[
                            event_pb2.EventData(event_type="Written", payload=b'{"w": %d}' % (n + i)) for i in range(10)
                        ],
                    ),
                    timeout=30,
                )
            except grpc.RpcError as err:
                self.errors.append(err)
                return
            with self.lock:
                self.acked.extend(reply.event_ids)
            n += 10
