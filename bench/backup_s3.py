"""Backups to an S3-compatible server: a chain of incrementals, listing, verifying and restoring.

    .venv/bin/python bench/backup_s3.py            # 10K events, a full backup and 12 incrementals
    .venv/bin/python bench/backup_s3.py --quick    # 2K events, 3 incrementals

moto_server (a real S3-compatible HTTP server, from moto) is started on a free loopback port, and a
suite with `backup.default_destination = "s3"` on a temporary directory. One tenant gets N events (1,000
per append, 10 streams); a full backup of the whole suite is made, then, in turn, 1,000 more events and
an incremental backup (each on the one before: a chain). Then ListBackups is timed (ten times), and the
tenant is deleted and restored from the last backup of the chain (which verifies every chunk of the
chain first), and VerifyBackup of it is timed. Medians are printed. moto_server runs on the same cores
as the suite, and does its own work in Python: a real store's requests cost network round trips instead.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
from allsource.v1 import backup_pb2  # noqa: E402

from tests.backup.support import append, backups, create, delete_tenant, restore  # noqa: E402
from tests.external import AWS_TEST_ENV, moto_server  # noqa: E402
from tests.harness import Suite  # noqa: E402

BUCKET = "allsource-bench-backups"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    events, rounds = (2_000, 3) if args.quick else (10_000, 12)
    keys = {
        "aws_access_key_id": AWS_TEST_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS_TEST_ENV["AWS_SECRET_ACCESS_KEY"],
    }
    with moto_server() as endpoint, tempfile.TemporaryDirectory(prefix="bench-s3-") as tmp:
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **keys).create_bucket(Bucket=BUCKET)
        env = {
            "ALLSOURCE_BACKUP__DEFAULT_DESTINATION": "s3",
            "ALLSOURCE_BACKUP__S3_ENDPOINT_URL": endpoint,
            "ALLSOURCE_BACKUP__S3_BUCKET": BUCKET,
            "ALLSOURCE_BACKUP__S3_ACCESS_KEY_ID": "env:BENCH_S3_KEY_ID",
            "ALLSOURCE_BACKUP__S3_SECRET_ACCESS_KEY": "env:BENCH_S3_SECRET",
            "BENCH_S3_KEY_ID": keys["aws_access_key_id"],
            "BENCH_S3_SECRET": keys["aws_secret_access_key"],
        }
        suite = Suite(Path(tmp) / "suite", extra_env=env)
        suite.start_all()
        try:
            md = suite.create_tenant("bench")
            for i in range(0, events, 1000):
                append(suite, md, f"bench-{(i // 1000) % 10}", 1000, start=i)
            stub = backups(suite)  # one connection for every call timed
            stub.ListBackups(backup_pb2.ListBackupsRequest())
            started = time.perf_counter()
            last = create(suite, stub=stub)
            full_s = time.perf_counter() - started
            incrementals = []
            for r in range(rounds):
                append(suite, md, "bench-late", 1000, start=r * 1000)
                started = time.perf_counter()
                last = create(suite, stub=stub, incremental=True)
                incrementals.append((time.perf_counter() - started) * 1000)
            listings = []
            for _ in range(10):
                started = time.perf_counter()
                stub.ListBackups(backup_pb2.ListBackupsRequest())
                listings.append((time.perf_counter() - started) * 1000)
            delete_tenant(suite, "bench")
            started = time.perf_counter()
            done = restore(suite, backup_id=last.backup_id, tenant_ids=["bench"])
            restore_s = time.perf_counter() - started
            restored = sum(t.events for t in done.tenants)
            started = time.perf_counter()
            stub.VerifyBackup(backup_pb2.VerifyBackupRequest(backup_id=last.backup_id), timeout=300)
            verify_s = time.perf_counter() - started
        finally:
            suite.stop_all()
    print(f"S3 (moto_server): {events:,} events, a full backup and a chain of {rounds} incrementals of 1,000")
    print(f"full backup:           {full_s * 1000:8.1f} ms")
    print(
        f"incremental (1K):      {statistics.median(incrementals):8.1f} ms median"
        f"  ({', '.join(f'{t:.0f}' for t in incrementals)})"
    )
    print(f"ListBackups:           {statistics.median(listings):8.1f} ms median of 10 ({rounds + 1} backups)")
    print(f"restore (whole chain): {restore_s:8.2f} s  {restored:,} events, {restored / restore_s:,.0f} events/s")
    print(f"VerifyBackup (chain):  {verify_s:8.2f} s")


if __name__ == "__main__":
    main()
