"""Backups to a real S3-compatible server (moto_server, started here), and backup schedules run by the
admin service: an interval schedule running twice, retention deleting the oldest, a restart keeping it."""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Iterator

import boto3
import grpc
import pytest
from allsource.v1 import backup_pb2
from allsource_client import error_from_rpc
from google.protobuf.duration_pb2 import Duration

from services.storage.backup.destinations import S3Bucket
from tests.backup.support import acting, append, backups, create, delete_tenant, everything, fill, restore
from tests.external import AWS_TEST_ENV, moto_server
from tests.harness import Suite, wait_until

BUCKET = "allsource-test-backups"


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    with moto_server() as endpoint:
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **_keys()).create_bucket(Bucket=BUCKET)
        yield endpoint


def _keys() -> dict[str, str]:
    return {
        "aws_access_key_id": AWS_TEST_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS_TEST_ENV["AWS_SECRET_ACCESS_KEY"],
    }


def test_a_full_and_incremental_round_trip_through_s3_and_a_corrupted_chunk_refused(
    s3: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = {
        "ALLSOURCE_BACKUP__DEFAULT_DESTINATION": "s3",
        "ALLSOURCE_BACKUP__S3_ENDPOINT_URL": s3,
        "ALLSOURCE_BACKUP__S3_BUCKET": BUCKET,
        "ALLSOURCE_BACKUP__S3_PREFIX": "suite-1/",
        # Credentials through the secrets layer (an env: reference), never in a file.
        "ALLSOURCE_BACKUP__S3_ACCESS_KEY_ID": "env:TEST_S3_KEY_ID",
        "ALLSOURCE_BACKUP__S3_SECRET_ACCESS_KEY": "env:TEST_S3_SECRET",
        "TEST_S3_KEY_ID": AWS_TEST_ENV["AWS_ACCESS_KEY_ID"],
        "TEST_S3_SECRET": AWS_TEST_ENV["AWS_SECRET_ACCESS_KEY"],
    }
    suite = Suite(tmp_path_factory.mktemp("s3"), extra_env=env)
    suite.start_all()
    try:
        md = suite.create_tenant("cloudy")
        fill(suite, md, "c", 6000, streams=5)
        full = create(suite, tenant_ids=["cloudy"])
        assert full.destination == "s3"
        append(suite, md, "c-late", 50)
        incremental = create(suite, tenant_ids=["cloudy"], incremental=True)
        assert incremental.parent_backup_id == full.backup_id and incremental.tenants[0].events == 50
        expected = everything(suite, md)
        client = boto3.client("s3", endpoint_url=s3, region_name="us-east-1", **_keys())
        listed = client.list_objects_v2(Bucket=BUCKET, Prefix=f"suite-1/{full.backup_id}/")
        assert any(o["Key"].endswith("manifest.json") for o in listed["Contents"])
        stub = backups(suite)
        assert [b.backup_id for b in stub.ListBackups(backup_pb2.ListBackupsRequest()).backups] == [
            full.backup_id,
            incremental.backup_id,
        ]
        assert stub.VerifyBackup(backup_pb2.VerifyBackupRequest(backup_id=incremental.backup_id)).ok

        delete_tenant(suite, "cloudy")
        done = restore(suite, backup_id=incremental.backup_id, tenant_ids=["cloudy"])
        assert list(done.chain) == [full.backup_id, incremental.backup_id]
        assert everything(suite, acting(suite, "cloudy")) == expected

        key = next(o["Key"] for o in listed["Contents"] if "-events-" in o["Key"])
        body = bytearray(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        body[10] ^= 0x55
        client.put_object(Bucket=BUCKET, Key=key, Body=bytes(body))
        chunk = key.split("/", 1)[1]
        verdict = stub.VerifyBackup(backup_pb2.VerifyBackupRequest(backup_id=incremental.backup_id))
        assert not verdict.ok and any(chunk in p for p in verdict.problems), verdict
        delete_tenant(suite, "cloudy")
        with pytest.raises(grpc.RpcError) as refused:
            restore(suite, backup_id=incremental.backup_id, tenant_ids=["cloudy"])
        typed = error_from_rpc(refused.value)
        assert (refused.value.code(), typed.reason, typed.metadata["chunk"]) == (
            grpc.StatusCode.DATA_LOSS,
            "BACKUP_CORRUPT",
            chunk,
        )
    finally:
        suite.stop_all()


def _schedules(suite: Suite) -> list[backup_pb2.BackupSchedule]:
    return list(backups(suite).ListBackupSchedules(backup_pb2.ListBackupSchedulesRequest()).schedules)


def test_an_interval_schedule_runs_keeps_the_newest_and_survives_a_restart(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    workdir = tmp_path_factory.mktemp("schedules")
    suite = Suite(
        workdir,
        extra_env={"ALLSOURCE_BACKUP__DIR": str(workdir / "backups"), "ALLSOURCE_BACKUP__SCHEDULE_CHECK_S": "0.2"},
    )
    suite.start_all()
    try:
        md = suite.create_tenant("timed")
        append(suite, md, "t-1", 10)
        stub = backups(suite)
        with pytest.raises(grpc.RpcError) as invalid:
            stub.PutBackupSchedule(
                backup_pb2.PutBackupScheduleRequest(
                    schedule=backup_pb2.BackupSchedule(name="bad name", cron="61 * * * *", interval=Duration(seconds=5))
                )
            )
        fields = sorted({v[0] for v in error_from_rpc(invalid.value).violations})
        assert fields == ["schedule.cron", "schedule.interval", "schedule.name"]
        put = stub.PutBackupSchedule(
            backup_pb2.PutBackupScheduleRequest(
                schedule=backup_pb2.BackupSchedule(
                    name="every-second",
                    interval=Duration(seconds=1),
                    tenant_ids=["timed"],
                    full_every=3,
                    retention=backup_pb2.Retention(keep_last=1),
                    enabled=True,
                )
            )
        )
        assert put.schedule.HasField("next_run_at")
        ran = wait_until(
            lambda: next((s for s in _schedules(suite) if s.runs >= 2 and s.last_run.deleted), None),
            timeout=60,
            what="two runs and a retention deletion",
        )
        assert ran.last_run.ok, ran.last_run.error
        mine = [b for b in stub.ListBackups(backup_pb2.ListBackupsRequest()).backups if b.schedule == "every-second"]
        # keep_last 1, but an incremental kept keeps the backups it builds on (full_every 3).
        kept = {b.backup_id for b in mine}
        assert ran.last_run.backup_id in kept and not kept & set(ran.last_run.deleted)
        newest = max(mine, key=lambda b: b.backup_id)
        chain = {newest.backup_id}
        parent = newest.parent_backup_id
        while parent:
            chain.add(parent)
            parent = next(b.parent_backup_id for b in mine if b.backup_id == parent)
        assert kept == chain
        runs_before = ran.runs

        suite.stop("admin")
        suite.start("admin")
        assert [s.name for s in _schedules(suite)] == ["every-second"]
        wait_until(
            lambda: next((s for s in _schedules(suite) if s.runs > runs_before + 1), None),
            timeout=60,
            what="runs after the restart",
        )
        stub = backups(suite)
        stub.DeleteBackupSchedule(backup_pb2.DeleteBackupScheduleRequest(name="every-second"))
        assert _schedules(suite) == []
        with pytest.raises(grpc.RpcError) as gone:
            stub.DeleteBackupSchedule(backup_pb2.DeleteBackupScheduleRequest(name="every-second"))
        assert error_from_rpc(gone.value).reason == "BACKUP_SCHEDULE_NOT_FOUND"
    finally:
        suite.stop_all()


def test_large_chunks_go_up_in_parts_and_come_back_whole(s3: str) -> None:
    """The S3 destination itself: a chunk past backup.s3_multipart_bytes is a multipart upload (its ETag
    says how many parts); reads, listings and deletion see only complete backups."""
    dest = S3Bucket(
        {
            "bucket": BUCKET,
            "prefix": "parts/",
            "endpoint_url": s3,
            "access_key_id": AWS_TEST_ENV["AWS_ACCESS_KEY_ID"],
            "secret_access_key": AWS_TEST_ENV["AWS_SECRET_ACCESS_KEY"],
            "multipart_bytes": 5 * 1024 * 1024,
        }
    )
    data = os.urandom(11 * 1024 * 1024)
    dest.put("b1", "t00000-events-0-000000.zst", data)
    assert dest.get("b1", "t00000-events-0-000000.zst") == data
    head = boto3.client("s3", endpoint_url=s3, region_name="us-east-1", **_keys()).head_object(
        Bucket=BUCKET, Key="parts/b1/t00000-events-0-000000.zst"
    )
    assert head["ETag"].strip('"').endswith("-3")  # three parts of 5, 5 and 1 MiB
    assert dest.get("b1", "absent.zst") is None
    assert dest.backup_ids() == []  # no manifest yet: not a backup
    dest.put("b1", "manifest.json", b"{}")
    assert dest.backup_ids() == ["b1"]
    dest.delete("b1")
    assert dest.backup_ids() == [] and dest.get("b1", "t00000-events-0-000000.zst") is None


def test_listing_backups_costs_a_request_per_thousand_backups_not_per_thousand_chunks(s3: str) -> None:
    """Listing every object to find the manifests cost a request per 1,000 chunks of every backup kept (a
    full backup of a large database has thousands of chunks); backups are now listed by their common
    prefix, and whether one has its manifest is asked once."""
    dest = S3Bucket({**dest_config(s3), "prefix": "many/"})
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: dest.put("big", f"file-{i:06d}.zst", b"x"), range(1001)))
    dest.put("big", "manifest.json", b"{}")
    dest.put("partial", "file-000000.zst", b"x")  # being written: no manifest yet
    calls: list[str] = []
    fresh = S3Bucket({**dest_config(s3), "prefix": "many/"})  # another process: nothing remembered
    fresh._client.meta.events.register("before-call.s3", lambda model, **kw: calls.append(model.name))
    assert fresh.backup_ids() == ["big"]
    assert sorted(calls) == ["HeadObject", "HeadObject", "ListObjectsV2"], calls
    calls.clear()
    assert fresh.backup_ids() == ["big"]
    assert calls == ["ListObjectsV2", "HeadObject"]  # only the one still without a manifest is asked again
    fresh.put("partial", "manifest.json", b"{}")
    calls.clear()
    assert fresh.backup_ids() == ["big", "partial"] and calls == ["ListObjectsV2"]
    fresh.delete("partial")
    assert fresh.backup_ids() == ["big"]
    dest.delete("big")
    assert fresh.backup_ids() == []


def dest_config(s3: str) -> dict[str, str]:
    return {
        "bucket": BUCKET,
        "endpoint_url": s3,
        "access_key_id": AWS_TEST_ENV["AWS_ACCESS_KEY_ID"],
        "secret_access_key": AWS_TEST_ENV["AWS_SECRET_ACCESS_KEY"],
    }
