"""An acknowledged append has been synced to the write-ahead log before it was acknowledged.

kill -9 cannot tell (the WAL survives in the page cache), so this counts the storage process's syncs of
its WAL files (`strace -f -y`, fsync/fdatasync of `*.log`) per acknowledged group commit, with
`storage.sync_writes` on (the default) and off, in the same test: off, the count must drop, so the test
can fail. The white-box side (every write path carries the setting) is tests/storage/test_rocksdb_sync.py.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from allsource.storage.v1 import model_pb2, storage_pb2, storage_pb2_grpc
from allsource.v1 import ingest_pb2
from allsource_client import event

from shared.auth.scopes import SCOPE_KEY, SYSTEM_TENANT, ScopeSigner
from shared.core.wire import recast
from tests.harness import Suite

DEV_SERVICE_SECRET = b"development-only-service-secret"
APPENDS = 20
WAL_SYNC = re.compile(r"\b(?:fsync|fdatasync)\(\d+<[^>]*\.log>\)")


def strace() -> str:
    found = shutil.which("strace")
    assert found, "strace is required for the durability test (apt-get install strace; .ci/run installs it)"
    return found


@contextlib.contextmanager
def tracing_wal_syncs(pid: int, workdir: Path) -> Iterator[list[str]]:
    """Trace every thread of the process for fsync/fdatasync; yields a list filled with the WAL syncs
    seen once the block ends."""
    out, err = workdir / "strace.out", workdir / "strace.err"
    with open(err, "wb") as errors:
        tracer = subprocess.Popen(
            [strace(), "-f", "-y", "-e", "trace=fsync,fdatasync", "-o", str(out), "-p", str(pid)], stderr=errors
        )
    syncs: list[str] = []
    try:
        deadline = time.monotonic() + 20
        while "attached" not in err.read_text():
            assert tracer.poll() is None, f"strace could not attach: {err.read_text()}"
            assert time.monotonic() < deadline, f"strace did not attach within 20 s: {err.read_text()}"
            time.sleep(0.02)
        yield syncs
    finally:
        tracer.send_signal(signal.SIGINT)  # detaches, leaving storage running, and flushes its output
        tracer.wait(timeout=20)
    syncs.extend(line for line in out.read_text().splitlines() if WAL_SYNC.search(line))


def append_one(stub: storage_pb2_grpc.StorageServiceStub, stream_id: str) -> None:
    scope = ScopeSigner(DEV_SERVICE_SECRET, "ingest", 60).mint("default", "user:durability")
    operation = storage_pb2.AppendOperation(
        tenant_id="default",
        request=recast(ingest_pb2.AppendEventsRequest(stream_id=stream_id, events=[event("E")]), model_pb2.AppendInput),
    )
    reply = stub.Append(storage_pb2.AppendRequest(operations=[operation]), metadata=((SCOPE_KEY, scope),), timeout=20)
    assert reply.outcomes[0].WhichOneof("result") == "success", reply


def write_batches(stub: storage_pb2_grpc.StorageServiceStub) -> int:
    scope = ScopeSigner(DEV_SERVICE_SECRET, "admin", 60).mint(SYSTEM_TENANT, "system")
    return stub.GetStats(storage_pb2.GetStatsRequest(), metadata=((SCOPE_KEY, scope),), timeout=20).stats.write_batches


def wal_syncs_per_commit(workdir: Path, sync_writes: str) -> tuple[int, int]:
    """(WAL syncs, acknowledged group commits) of APPENDS one-by-one appends to a storage of its own."""
    suite = Suite(workdir, extra_env={"ALLSOURCE_STORAGE__SYNC_WRITES": sync_writes})
    try:
        proc = suite.start("storage")
        with suite.raw_channel("storage") as channel:
            stub = storage_pb2_grpc.StorageServiceStub(channel)
            before = write_batches(stub)
            with tracing_wal_syncs(proc.pid, workdir) as syncs:
                for n in range(APPENDS):
                    append_one(stub, f"durable-{n}")
            commits = write_batches(stub) - before
    finally:
        suite.stop_all()
    return len(syncs), commits


def test_every_acknowledged_group_commit_syncs_the_wal(tmp_path: Path) -> None:
    """Mutation caught: the writer's `WriteOptions.sync` forced off (`write_options(False)` in
    GroupCommitWriter): 0 WAL syncs for 20 acknowledged commits."""
    strace()
    synced, commits = wal_syncs_per_commit(tmp_path / "sync-on", "true")
    assert commits == APPENDS, f"{APPENDS} one-by-one appends made {commits} group commits"
    assert synced >= commits, f"sync_writes=true: {synced} WAL syncs for {commits} acknowledged group commits"
    unsynced, commits_off = wal_syncs_per_commit(tmp_path / "sync-off", "false")
    assert commits_off == APPENDS
    # The control: without the setting the syncs are gone, so the count above measures the setting.
    assert unsynced <= commits_off // 4, f"sync_writes=false: still {unsynced} WAL syncs for {commits_off} commits"
