"""A full disk, for real: the storage data directory on a small tmpfs.

Appends then fail with RESOURCE_EXHAUSTED / STORAGE_FULL (not INTERNAL), reads keep working, nothing
acknowledged is lost, and writes resume by themselves once space is freed: after RocksDB itself hit the
wall (storage reopens the database in-process), and before it, at the low-disk threshold.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from allsource.v1 import event_pb2, ingest_pb2, ingest_pb2_grpc
from allsource_client import status_from_call
from google.rpc import error_details_pb2

from tests.harness import Suite

PAYLOAD = b'{"pad":"' + b"x" * 1000 + b'"}'


@contextlib.contextmanager
def small_volume(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def reason_of(err: grpc.RpcError) -> tuple[str, str]:
    status = status_from_call(err)
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return err.code().name, info.reason
    return err.code().name, ""


def fill_until_refused(suite: Suite, prefix: str) -> tuple[list[tuple[str, int]], tuple[str, str]]:
    """Append 50-event batches until one is refused; the acknowledged (stream, events) and the refusal."""
    ingest = ingest_pb2_grpc.IngestServiceStub(suite.channel("ingest"))
    acked: list[tuple[str, int]] = []
    for n in range(2000):
        stream = f"{prefix}{n}"
        request = ingest_pb2.AppendEventsRequest(
            stream_id=stream,
            events=[event_pb2.EventData(event_type="Fill", payload=PAYLOAD) for _ in range(50)],
            request_id=f"{prefix}{n}",
        )
        try:
            ingest.AppendEvents(request, timeout=30)
        except grpc.RpcError as err:
            return acked, reason_of(err)
        acked.append((stream, 50))
    raise AssertionError("the volume never filled up")


def all_readable(suite: Suite, acked: list[tuple[str, int]]) -> None:
    with suite.client() as client:
        for stream, count in acked:
            assert len(client.read_stream(stream)) == count, stream


def resumes(suite: Suite, prefix: str) -> None:
    ingest = ingest_pb2_grpc.IngestServiceStub(suite.channel("ingest"))

    def accepted() -> bool:
        try:
            ingest.AppendEvents(
                ingest_pb2.AppendEventsRequest(
                    stream_id=f"{prefix}after", events=[event_pb2.EventData(event_type="After", payload=b"{}")]
                ),
                timeout=10,
            )
        except grpc.RpcError as err:
            assert reason_of(err) == ("RESOURCE_EXHAUSTED", "STORAGE_FULL"), reason_of(err)
            return False
        return True

    suite.wait_until(accepted, timeout=30, what="appends accepted again after space was freed")


@pytest.mark.parametrize(
    ("min_free", "where"),
    [("0", "RocksDB itself runs out of space"), (str(4 * 1024 * 1024), "the low-disk threshold")],
    ids=["engine", "threshold"],
)
def test_a_full_disk_refuses_writes_clearly_keeps_reads_and_recovers(tmp_path: Path, min_free: str, where: str) -> None:
    suite = Suite(
        tmp_path / "suite",
        extra_env={
            "ALLSOURCE_STORAGE__MIN_FREE_BYTES": min_free,
            "ALLSOURCE_STORAGE__WRITE_BUFFER_BYTES": str(1024 * 1024),
        },
    )
    with small_volume(suite.data_dir, "32m"):
        ballast = suite.data_dir / "ballast"
        ballast.write_bytes(b"\0" * (12 * 1024 * 1024))  # freed later: "the operator makes room"
        try:
            suite.start_all()
            prefix = f"f{uuid.uuid4().hex[:6]}-"
            acked, refusal = fill_until_refused(suite, prefix)
            assert refusal == ("RESOURCE_EXHAUSTED", "STORAGE_FULL"), (where, refusal)
            assert len(acked) > 5, "the volume filled up before anything was written"
            all_readable(suite, acked)  # reads keep working while writes are refused
            assert suite.procs["storage"].poll() is None, "storage died"
            ballast.unlink()
            started = time.monotonic()
            resumes(suite, prefix)
            print(f"{where}: {len(acked) * 50} events acknowledged; writes back {time.monotonic() - started:.1f} s")
            suite.stop("storage")
            suite.start("storage")  # nothing acknowledged is lost, across a restart too
            suite.wait_until(lambda: _serving(suite), timeout=30, what="query serving again")
            all_readable(suite, acked)
        finally:
            suite.stop_all()


def _serving(suite: Suite) -> bool:
    try:
        with suite.client() as client:
            client.read_stream("nonexistent-probe")
    except Exception as exc:
        return "STREAM_NOT_FOUND" in str(getattr(exc, "reason", "")) or "NOT_FOUND" in str(exc)
    return True
