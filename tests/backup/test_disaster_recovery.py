"""Disaster recovery: a full backup taken while writers append, more writes, an incremental backup, the
data directory deleted, the chain restored offline (`allsource-storage restore`), and everything back:
every event field by field, every acknowledged event, API keys, logins, snapshots, gapless positions."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from allsource.v1 import auth_pb2, auth_pb2_grpc, backup_pb2, query_pb2, query_pb2_grpc

from tests.backup.support import (
    Writers,
    acting,
    append,
    backups,
    create,
    delete_tenant,
    everything,
    fill,
    restore,
    restore_offline,
)
from tests.harness import Suite

SOAK = os.environ.get("ALLSOURCE_SOAK") == "1"
# ~100K events over three tenants (the size); the default run keeps to about a third of it.
PER_TENANT = 34_000 if SOAK else 12_000
TENANTS = ("north", "south", "east")


@pytest.mark.slow
def test_a_deleted_data_directory_comes_back_whole_from_a_full_and_an_incremental_backup(tmp_path: Path) -> None:
    backup_dir = tmp_path / "backups"
    suite = Suite(tmp_path / "suite", extra_env={"ALLSOURCE_BACKUP__DIR": str(backup_dir)})
    suite.start_all()
    try:
        keys = {t: suite.create_tenant(t) for t in (*TENANTS, "west")}
        fill(suite, keys["west"], "west-item", 2000, streams=4)
        operator_key = suite.admin_key
        auth = auth_pb2_grpc.AuthServiceStub(suite.channel("admin", keys["north"]))
        auth.CreateUser(
            auth_pb2.CreateUserRequest(username="ada", password="correct horse battery", role=auth_pb2.ROLE_DEVELOPER)
        )
        early = auth_pb2_grpc.AuthServiceStub(suite.raw_channel("admin")).Login(
            auth_pb2.LoginRequest(tenant_id="north", username="ada", password="correct horse battery")
        )
        for tenant in TENANTS:
            fill(suite, keys[tenant], f"{tenant}-order", PER_TENANT)
        # A stream long enough for GetEntityState to store a snapshot of it.
        append(suite, keys["north"], "north-ledger", 300)
        state = query_pb2_grpc.QueryServiceStub(suite.channel("query", keys["north"]))
        folded = state.GetEntityState(query_pb2.GetEntityStateRequest(stream_id="north-ledger"))

        with Writers(suite, keys["south"], "south-live", 8) as writers:
            full = create(suite)
        assert full.kind == 1 and writers.acked, "the writers appended while the backup ran"
        more = {t: append(suite, keys[t], f"{t}-after", 200) for t in TENANTS}
        incremental = create(suite, incremental=True)
        assert incremental.parent_backup_id == full.backup_id
        incr_events = {t.tenant_id: t.events for t in incremental.tenants}
        assert incr_events["north"] == 200 and incr_events["south"] >= 200, incremental

        # The full backup of the whole suite copied the checkpoint's files (docs/BACKUP.md).
        manifest = json.loads((backup_dir / full.backup_id / "manifest.json").read_text())
        assert manifest["layout"] == "checkpoint" and any(c["section"] == "file" for c in manifest["chunks"])
        # One tenant back from that chain, online, to a position: its events come out of the files.
        west_all = everything(suite, keys["west"])
        delete_tenant(suite, "west")
        done = restore(suite, backup_id=incremental.backup_id, tenant_ids=["west"], to_positions={"west": 1500})
        assert [(t.events, t.last_position) for t in done.tenants] == [(1500, 1500)]
        assert everything(suite, acting(suite, "west")) == {k: e for k, e in west_all.items() if e[2] <= 1500}

        before = {t: everything(suite, keys[t]) for t in TENANTS}
        heads = {t: max(e[2] for e in before[t].values()) for t in TENANTS}
        assert len(before["north"]) == PER_TENANT + 300 + 200
        for event_id in writers.acked:
            assert event_id in before["south"]
        assert all(p in {e[2] for e in before[t].values()} for t in TENANTS for p in more[t])
    finally:
        suite.stop_all()

    restore_offline(suite, operator_key, incremental.backup_id)

    suite.start_all()
    try:
        after = {t: everything(suite, keys[t]) for t in TENANTS}
        for tenant in TENANTS:
            assert after[tenant] == before[tenant], tenant  # every field of every event, positions included
        for event_id in writers.acked:
            assert event_id in after["south"]
        # Appends continue from the restored head, without a gap.
        for tenant in TENANTS:
            assert append(suite, keys[tenant], f"{tenant}-later", 1) == [heads[tenant] + 1]
        # API keys and logins made before the backup still work.
        login = auth_pb2_grpc.AuthServiceStub(suite.raw_channel("admin")).Login(
            auth_pb2.LoginRequest(tenant_id="north", username="ada", password="correct horse battery")
        )
        token = (("authorization", f"Bearer {login.tokens.access_token}"),)
        stub = query_pb2_grpc.QueryServiceStub(suite.channel("query", token))
        assert stub.ReadStream(query_pb2.ReadStreamRequest(stream_id="north-ledger")).events
        # A token issued before the backup too: the (sealed) signing keys came back with the same secret.
        early_token = (("authorization", f"Bearer {early.tokens.access_token}"),)
        query_pb2_grpc.QueryServiceStub(suite.channel("query", early_token)).ReadStream(
            query_pb2.ReadStreamRequest(stream_id="north-ledger")
        )
        # The snapshot came back: the fold starts from it.
        again = query_pb2_grpc.QueryServiceStub(suite.channel("query", keys["north"])).GetEntityState(
            query_pb2.GetEntityStateRequest(stream_id="north-ledger")
        )
        assert again.snapshot_version > 0 and again.state == folded.state
        # The operator's key too: it lists the backups it made.
        listed = backups(suite).ListBackups(backup_pb2.ListBackupsRequest())
        assert [b.backup_id for b in listed.backups] == [full.backup_id, incremental.backup_id]
    finally:
        suite.stop_all()
