"""Backups on a running suite: point-in-time and selective restores, what a restore refuses, the
deletion ledger applied again, damaged and newer-format backups, and who may back up what."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from allsource.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    backup_pb2,
    event_pb2,
    ingest_pb2,
    ingest_pb2_grpc,
    lifecycle_pb2,
    query_pb2,
    query_pb2_grpc,
)
from allsource_client import error_from_rpc
from google.protobuf.timestamp_pb2 import Timestamp

from tests.backup.support import Writers, acting, append, backups, create, delete_tenant, everything, fill, restore
from tests.harness import Suite, wait_until


@pytest.fixture(scope="module")
def bsuite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    workdir = tmp_path_factory.mktemp("backups")
    running = Suite(workdir, extra_env={"ALLSOURCE_BACKUP__DIR": str(workdir / "backups")})
    try:
        running.start_all()
        yield running
    finally:
        running.stop_all()


def backup_dir(suite: Suite) -> Path:
    return suite.workdir / "backups"


def refusal(err: grpc.RpcError) -> tuple[grpc.StatusCode, str, dict[str, str]]:
    typed = error_from_rpc(err)
    return err.code(), typed.reason, dict(typed.metadata)


def test_a_point_in_time_restore_gives_exactly_the_events_before_that_time(bsuite: Suite) -> None:
    md = bsuite.create_tenant("pit")
    append(bsuite, md, "pit-a", 30)
    first = everything(bsuite, md)
    last_a = max((e[7], e[8]) for e in first.values())
    time.sleep(0.05)
    append(bsuite, md, "pit-b", 20)
    later = everything(bsuite, md)
    first_b = min((e[7], e[8]) for k, e in later.items() if k not in first)
    assert first_b > last_a
    # Halfway between the last event of the first append and the first of the second.
    mid_ns = (last_a[0] * 10**9 + last_a[1] + first_b[0] * 10**9 + first_b[1]) // 2
    full = create(bsuite, tenant_ids=["pit"])
    delete_tenant(bsuite, "pit")
    done = restore(
        bsuite,
        backup_id=full.backup_id,
        tenant_ids=["pit"],
        to_time=Timestamp(seconds=mid_ns // 10**9, nanos=mid_ns % 10**9),
    )
    assert [t.events for t in done.tenants] == [30]
    assert everything(bsuite, acting(bsuite, "pit")) == first
    # By position instead: the first 40 positions.
    delete_tenant(bsuite, "pit")
    done = restore(bsuite, backup_id=full.backup_id, tenant_ids=["pit"], to_positions={"pit": 40})
    assert [(t.events, t.last_position) for t in done.tenants] == [(40, 40)]
    assert everything(bsuite, acting(bsuite, "pit")) == {k: e for k, e in later.items() if e[2] <= 40}
    # Appends continue right after the restored head; the cut stream's version too.
    assert append(bsuite, acting(bsuite, "pit"), "pit-b", 1) == [41]
    stream = query_pb2_grpc.QueryServiceStub(bsuite.channel("query", acting(bsuite, "pit"))).ReadStream(
        query_pb2.ReadStreamRequest(stream_id="pit-b")
    )
    assert [e.version for e in stream.events] == list(range(1, 12))


def test_a_restored_tenant_answers_from_its_rebuilt_category_type_index(bsuite: Suite) -> None:
    """A restore rebuilds the (stream category, event type) index from the events, like the others."""
    md = bsuite.create_tenant("cati")
    append(bsuite, md, "cart-1", 10, kind="Added")
    append(bsuite, md, "cart-2", 5, kind="Removed")
    append(bsuite, md, "user-1", 5, kind="Added")
    full = create(bsuite, tenant_ids=["cati"])
    delete_tenant(bsuite, "cati")
    restore(bsuite, backup_id=full.backup_id, tenant_ids=["cati"])
    query = query_pb2_grpc.QueryServiceStub(bsuite.channel("query", acting(bsuite, "cati")))
    request = query_pb2.ListEventsRequest(
        filter=event_pb2.EventFilter(stream_id_prefix="cart-", event_types=["Added"]), page_size=100, explain=True
    )
    reply = query.ListEvents(request, timeout=20)
    assert (reply.plan.index, reply.plan.keys_examined) == ("category_type", 10)
    assert [e.stream_id for e in reply.events] == ["cart-1"] * 10


def test_one_tenant_restored_into_the_running_suite_leaves_a_tenant_writing_meanwhile_untouched(bsuite: Suite) -> None:
    lost, busy = bsuite.create_tenant("lost"), bsuite.create_tenant("busy")
    fill(bsuite, lost, "lost-item", 3500, streams=7)
    fill(bsuite, busy, "busy-item", 1000, streams=3)
    full = create(bsuite, tenant_ids=["lost", "busy"])
    expected = everything(bsuite, lost)
    delete_tenant(bsuite, "lost")
    before = everything(bsuite, busy)
    with Writers(bsuite, busy, "busy-live", 4) as writers:
        done = restore(bsuite, backup_id=full.backup_id, tenant_ids=["lost"])
    assert [(t.tenant_id, t.events, t.streams) for t in done.tenants] == [("lost", 3500, 7)]
    assert everything(bsuite, acting(bsuite, "lost")) == expected
    after = everything(bsuite, busy)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing of it changed
    assert set(after) - set(before) == set(writers.acked)  # and every append it made meanwhile is there


def test_a_restore_refuses_a_tenant_that_has_data_and_a_dry_run_writes_nothing(bsuite: Suite) -> None:
    md = bsuite.create_tenant("full-of-data")
    append(bsuite, md, "thing-1", 5)
    backup = create(bsuite, tenant_ids=["full-of-data"])
    with pytest.raises(grpc.RpcError) as refused:
        restore(bsuite, backup_id=backup.backup_id, tenant_ids=["full-of-data"])
    assert refusal(refused.value)[:2] == (grpc.StatusCode.FAILED_PRECONDITION, "RESTORE_TARGET_NOT_EMPTY")
    delete_tenant(bsuite, "full-of-data")
    dry = restore(bsuite, backup_id=backup.backup_id, tenant_ids=["full-of-data"], dry_run=True)
    assert dry.dry_run and [(t.events, t.streams) for t in dry.tenants] == [(5, 1)]
    with pytest.raises(grpc.RpcError) as gone:
        query_pb2_grpc.QueryServiceStub(bsuite.channel("query", acting(bsuite, "full-of-data"))).ReadStream(
            query_pb2.ReadStreamRequest(stream_id="thing-1")
        )
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND  # the tenant is still deleted
    with pytest.raises(grpc.RpcError) as unknown:
        restore(bsuite, backup_id=backup.backup_id, tenant_ids=["never-backed-up"])
    assert refusal(unknown.value)[:2] == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_BACKUP_REQUEST")


def test_erasures_and_deletions_after_a_backup_are_applied_again_by_a_restore_of_the_chain(bsuite: Suite) -> None:
    md = bsuite.create_tenant("gdpr")
    append(bsuite, md, "user-1", 10)
    append(bsuite, md, "user-2", 10)
    append(bsuite, md, "order-1", 10)
    full = create(bsuite, tenant_ids=["gdpr"])
    ingest = ingest_pb2_grpc.IngestServiceStub(bsuite.channel("ingest", md))
    erased = ingest.DeleteEvents(lifecycle_pb2.DeleteEventsRequest(stream_id_prefix="user-1"))
    assert erased.events_deleted == 10
    ingest.DeleteStream(ingest_pb2.DeleteStreamRequest(stream_id="user-2", hard=True))
    incremental = create(bsuite, tenant_ids=["gdpr"], incremental=True)
    assert incremental.parent_backup_id == full.backup_id
    delete_tenant(bsuite, "gdpr")
    restore(bsuite, backup_id=incremental.backup_id, tenant_ids=["gdpr"])
    restored = everything(bsuite, acting(bsuite, "gdpr"))
    assert sorted({e[0] for e in restored.values()}) == ["order-1"]  # user-1 erased, user-2 deleted
    with pytest.raises(grpc.RpcError) as tombstoned:
        append(bsuite, acting(bsuite, "gdpr"), "user-2", 1)
    assert refusal(tombstoned.value)[1] == "STREAM_DELETED"


def test_a_restore_does_not_revive_the_api_keys_of_a_tenant_deleted_after_the_backup(bsuite: Suite) -> None:
    md = bsuite.create_tenant("revoked")
    append(bsuite, md, "r-1", 3)
    backup = create(bsuite, tenant_ids=["revoked"])
    delete_tenant(bsuite, "revoked")
    restore(bsuite, backup_id=backup.backup_id, tenant_ids=["revoked"])
    with pytest.raises(grpc.RpcError) as refused:
        query_pb2_grpc.QueryServiceStub(bsuite.channel("query", md)).ReadStream(
            query_pb2.ReadStreamRequest(stream_id="r-1")
        )
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert len(everything(bsuite, acting(bsuite, "revoked"))) == 3  # the data is back, for the operator


def test_a_damaged_chunk_is_named_by_verify_and_refused_by_restore_before_anything_is_written(bsuite: Suite) -> None:
    md = bsuite.create_tenant("damaged")
    fill(bsuite, md, "d", 2000, streams=4)
    backup = create(bsuite, tenant_ids=["damaged"])
    stub = backups(bsuite)
    assert stub.VerifyBackup(backup_pb2.VerifyBackupRequest(backup_id=backup.backup_id)).ok
    chunk = sorted((backup_dir(bsuite) / backup.backup_id).glob("*-events-*.zst"))[0]
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    verdict = stub.VerifyBackup(backup_pb2.VerifyBackupRequest(backup_id=backup.backup_id))
    assert not verdict.ok and len(verdict.problems) == 1 and chunk.name in verdict.problems[0]
    delete_tenant(bsuite, "damaged")
    with pytest.raises(grpc.RpcError) as refused:
        restore(bsuite, backup_id=backup.backup_id, tenant_ids=["damaged"])
    code, reason, metadata = refusal(refused.value)
    assert (code, reason) == (grpc.StatusCode.DATA_LOSS, "BACKUP_CORRUPT")
    assert metadata["chunk"] == f"{backup.backup_id}/{chunk.name}"
    with pytest.raises(grpc.RpcError) as absent:  # nothing was written: the tenant is still gone
        everything(bsuite, acting(bsuite, "damaged"))
    assert absent.value.code() == grpc.StatusCode.NOT_FOUND


def test_an_incomplete_chain_and_a_newer_format_are_refused_clearly(bsuite: Suite) -> None:
    md = bsuite.create_tenant("chained")
    append(bsuite, md, "c-1", 5)
    full = create(bsuite, tenant_ids=["chained"])
    append(bsuite, md, "c-1", 5)
    incremental = create(bsuite, tenant_ids=["chained"], incremental=True)
    stub = backups(bsuite)
    with pytest.raises(grpc.RpcError) as dependents:
        stub.DeleteBackup(backup_pb2.DeleteBackupRequest(backup_id=full.backup_id))
    assert refusal(dependents.value)[:2] == (grpc.StatusCode.FAILED_PRECONDITION, "BACKUP_HAS_DEPENDENTS")
    delete_tenant(bsuite, "chained")
    shutil.rmtree(backup_dir(bsuite) / full.backup_id)  # lost behind the suite's back
    with pytest.raises(grpc.RpcError) as broken:
        restore(bsuite, backup_id=incremental.backup_id, tenant_ids=["chained"])
    assert refusal(broken.value)[:2] == (grpc.StatusCode.FAILED_PRECONDITION, "BACKUP_CHAIN_BROKEN")
    assert not stub.VerifyBackup(backup_pb2.VerifyBackupRequest(backup_id=incremental.backup_id)).ok

    newer = create(bsuite, tenant_ids=["default"])
    path = backup_dir(bsuite) / newer.backup_id / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["format_version"] = 99
    path.write_text(json.dumps(manifest))
    with pytest.raises(grpc.RpcError) as refused:
        stub.GetBackup(backup_pb2.GetBackupRequest(backup_id=newer.backup_id))
    code, reason, _ = refusal(refused.value)
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "BACKUP_FORMAT_UNSUPPORTED")
    assert "format version 99" in refused.value.details()


def _part(suite: Suite, backup_id: str, tenant_id: str) -> dict[str, object]:
    manifest = json.loads((backup_dir(suite) / backup_id / "manifest.json").read_text())
    part: dict[str, object] = next(t for t in manifest["tenants"] if t["tenant_id"] == tenant_id)
    return part


def test_an_incremental_holds_whole_a_tenant_deleted_and_made_again_since_its_parent(bsuite: Suite) -> None:
    """The new tenant's log starts again at position 1: an incremental that took only the positions past
    its parent's copied none of its events, and the chain restored the deleted tenant's events instead."""
    md = bsuite.create_tenant("reborn")
    append(bsuite, md, "old", 30)
    create(bsuite, tenant_ids=["reborn"])
    delete_tenant(bsuite, "reborn")
    md = bsuite.create_tenant("reborn")
    append(bsuite, md, "new", 10)
    expected = everything(bsuite, md)
    incremental = create(bsuite, tenant_ids=["reborn"], incremental=True)
    assert [(t.from_position, t.to_position, t.events, t.restart) for t in incremental.tenants] == [(0, 10, 10, True)]
    assert _part(bsuite, incremental.backup_id, "reborn")["restart"] is True
    # The public description says so too (GetBackup reads it from the manifest).
    described = backups(bsuite).GetBackup(backup_pb2.GetBackupRequest(backup_id=incremental.backup_id)).backup
    assert [(t.tenant_id, t.restart) for t in described.tenants] == [("reborn", True)]
    # One more on top of it goes on from there, as usual.
    append(bsuite, md, "new", 5)
    expected = everything(bsuite, md)
    last = create(bsuite, tenant_ids=["reborn"], incremental=True)
    assert [(t.from_position, t.to_position, t.events, t.restart) for t in last.tenants] == [(10, 15, 5, False)]
    assert _part(bsuite, last.backup_id, "reborn")["restart"] is False
    delete_tenant(bsuite, "reborn")
    done = restore(bsuite, backup_id=last.backup_id, tenant_ids=["reborn"])
    assert [(t.events, t.last_position) for t in done.tenants] == [(15, 15)]
    assert everything(bsuite, acting(bsuite, "reborn")) == expected


def test_an_incremental_holds_whole_a_tenant_restored_to_an_earlier_point_since_its_parent(bsuite: Suite) -> None:
    md = bsuite.create_tenant("rewound")
    append(bsuite, md, "r", 30)
    full = create(bsuite, tenant_ids=["rewound"])
    delete_tenant(bsuite, "rewound")
    restore(bsuite, backup_id=full.backup_id, tenant_ids=["rewound"], to_positions={"rewound": 20})
    md = acting(bsuite, "rewound")
    assert append(bsuite, md, "r", 5) == [21, 22, 23, 24, 25]  # not the 21-25 the full backup holds
    expected = everything(bsuite, md)
    incremental = create(bsuite, tenant_ids=["rewound"], incremental=True)
    assert [(t.from_position, t.to_position, t.events, t.restart) for t in incremental.tenants] == [(0, 25, 25, True)]
    delete_tenant(bsuite, "rewound")
    restore(bsuite, backup_id=incremental.backup_id, tenant_ids=["rewound"])
    assert everything(bsuite, acting(bsuite, "rewound")) == expected


def test_an_incremental_on_a_format_1_parent_continues_its_chain(bsuite: Suite) -> None:
    """A backup written before format 2 (no restart, no to_recorded_ns) is a parent like any other: the
    tenant continues by its number and position, and the chain restores whole."""
    md = bsuite.create_tenant("format-one")
    append(bsuite, md, "a", 20)
    full = create(bsuite, tenant_ids=["format-one"])
    path = backup_dir(bsuite) / full.backup_id / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["format_version"] = 1
    for part in manifest["tenants"]:
        del part["restart"], part["to_recorded_ns"]
    path.write_text(json.dumps(manifest))
    append(bsuite, md, "a", 5)
    append(bsuite, md, "b", 3)
    expected = everything(bsuite, md)
    incremental = create(bsuite, tenant_ids=["format-one"], incremental=True)
    assert incremental.parent_backup_id == full.backup_id
    assert [(t.from_position, t.to_position, t.events) for t in incremental.tenants] == [(20, 28, 8)]
    delete_tenant(bsuite, "format-one")
    restore(bsuite, backup_id=incremental.backup_id, tenant_ids=["format-one"])
    assert everything(bsuite, acting(bsuite, "format-one")) == expected


def test_a_tenant_administrator_backs_up_lists_and_restores_only_their_own_tenant(bsuite: Suite) -> None:
    mine, other = bsuite.create_tenant("self-served"), bsuite.create_tenant("neighbour")
    append(bsuite, mine, "s-1", 4)
    append(bsuite, other, "n-1", 4)
    own = create(bsuite, mine)  # an empty request: their own tenant, not the suite
    assert [t.tenant_id for t in own.tenants] == ["self-served"] and not own.suite_records
    with pytest.raises(grpc.RpcError) as denied:
        create(bsuite, mine, tenant_ids=["neighbour"])
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    listed = backups(bsuite, mine).ListBackups(backup_pb2.ListBackupsRequest())
    assert [b.backup_id for b in listed.backups] == [own.backup_id]
    suite_wide = create(bsuite, tenant_ids=["neighbour"])
    with pytest.raises(grpc.RpcError) as hidden:
        backups(bsuite, mine).GetBackup(backup_pb2.GetBackupRequest(backup_id=suite_wide.backup_id))
    assert refusal(hidden.value)[:2] == (grpc.StatusCode.NOT_FOUND, "BACKUP_NOT_FOUND")
    with pytest.raises(grpc.RpcError) as busy:  # their own tenant has data
        restore(bsuite, mine, backup_id=own.backup_id)
    assert refusal(busy.value)[1] == "RESTORE_TARGET_NOT_EMPTY"


def test_a_stream_prefix_restores_only_those_streams(bsuite: Suite) -> None:
    md = bsuite.create_tenant("prefixed")
    append(bsuite, md, "keep-1", 5)
    append(bsuite, md, "drop-1", 5)
    append(bsuite, md, "keep-2", 5)
    backup = create(bsuite, tenant_ids=["prefixed"])
    expected = {k: e for k, e in everything(bsuite, md).items() if e[0].startswith("keep-")}
    delete_tenant(bsuite, "prefixed")
    done = restore(bsuite, backup_id=backup.backup_id, tenant_ids=["prefixed"], stream_prefix="keep-")
    assert [(t.events, t.streams) for t in done.tenants] == [(10, 2)]
    assert everything(bsuite, acting(bsuite, "prefixed")) == expected


def test_backup_requests_out_of_bounds_are_refused_with_the_field(bsuite: Suite) -> None:
    stub = backups(bsuite)
    for call, request, field in (
        (stub.ListBackups, backup_pb2.ListBackupsRequest(destination="tape"), "destination"),
        (stub.ListBackups, backup_pb2.ListBackupsRequest(page_size=-1), "page_size"),
        (stub.GetBackup, backup_pb2.GetBackupRequest(backup_id=""), "backup_id"),
        (stub.GetBackup, backup_pb2.GetBackupRequest(backup_id="../etc"), "backup_id"),
    ):
        with pytest.raises(grpc.RpcError) as refused:
            call(request)
        typed = error_from_rpc(refused.value)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, request
        assert [v[0] for v in typed.violations] == [field], request
    with pytest.raises(grpc.RpcError) as long_label:
        create(bsuite, label="x" * 201)
    assert error_from_rpc(long_label.value).reason == "INVALID_BACKUP_REQUEST"
    with pytest.raises(grpc.RpcError) as no_s3:
        create(bsuite, destination="s3")
    assert error_from_rpc(no_s3.value).reason == "BACKUP_DESTINATION_FAILED"
    with pytest.raises(grpc.RpcError) as missing:
        stub.GetBackup(backup_pb2.GetBackupRequest(backup_id="20200101T000000000Z-abcdef"))
    assert refusal(missing.value)[:2] == (grpc.StatusCode.NOT_FOUND, "BACKUP_NOT_FOUND")


def test_restored_event_ids_and_request_ids_are_still_recognised_and_backups_are_audited(bsuite: Suite) -> None:
    md = bsuite.create_tenant("idempotent")
    event_id = str(uuid.uuid4())
    request = ingest_pb2.AppendEventsRequest(
        stream_id="pay-1", events=[event_pb2.EventData(event_id=event_id, event_type="Paid", payload=b"{}")]
    )
    retried = ingest_pb2.AppendEventsRequest(
        stream_id="pay-2", request_id="req-0001", events=[event_pb2.EventData(event_type="Paid", payload=b"{}")]
    )
    ingest = ingest_pb2_grpc.IngestServiceStub(bsuite.channel("ingest", md))
    first, first_retried = ingest.AppendEvents(request), ingest.AppendEvents(retried)
    backup = create(bsuite, tenant_ids=["idempotent"])
    delete_tenant(bsuite, "idempotent")
    restore(bsuite, backup_id=backup.backup_id, tenant_ids=["idempotent"])
    ingest = ingest_pb2_grpc.IngestServiceStub(bsuite.channel("ingest", acting(bsuite, "idempotent")))
    again = ingest.AppendEvents(request)
    assert again.deduplicated and again.first_position == first.first_position
    again_retried = ingest.AppendEvents(retried)
    assert again_retried.deduplicated and list(again_retried.event_ids) == list(first_retried.event_ids)

    audit = admin_pb2_grpc.AdminServiceStub(bsuite.channel("admin")).ListAuditEvents(
        admin_pb2.ListAuditEventsRequest(page_size=1000)
    )
    actions = [(e.action.rsplit("/", 1)[-1], e.tenant_id, e.outcome) for e in audit.events]
    assert ("CreateBackup", "idempotent", "OK") in actions
    assert ("RestoreBackup", "idempotent", "OK") in actions


def test_a_restored_tenant_answers_at_once_where_its_absence_was_known(bsuite: Suite) -> None:
    """A tenant deleted, then read and written through query and ingest while it does not exist (so that
    those processes know it is gone), then restored: the operator reads its events and appends to it right
    after the restore, without waiting for the auth state's periodic resync (30 s). Before, the processes
    held on to 'no such tenant' until then. (Its API keys stay gone: it was deleted after the backup.)"""
    md = bsuite.create_tenant("comeback")
    append(bsuite, md, "c-1", 3)
    backup = create(bsuite, tenant_ids=["comeback"])
    delete_tenant(bsuite, "comeback")
    operator = acting(bsuite, "comeback")
    query = query_pb2_grpc.QueryServiceStub(bsuite.channel("query", operator))
    with pytest.raises(grpc.RpcError):
        query.ReadStream(query_pb2.ReadStreamRequest(stream_id="c-1"), timeout=10)
    with pytest.raises(grpc.RpcError):
        append(bsuite, operator, "c-2", 1)
    started = time.monotonic()
    restore(bsuite, backup_id=backup.backup_id, tenant_ids=["comeback"])

    def served() -> bool:
        try:
            events = query.ReadStream(query_pb2.ReadStreamRequest(stream_id="c-1"), timeout=10).events
            append(bsuite, operator, "c-2", 1)
            return len(events) == 3
        except grpc.RpcError:
            return False

    wait_until(served, timeout=10, what="the restored tenant served")
    assert time.monotonic() - started < 10
