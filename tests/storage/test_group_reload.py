"""A consumer group loaded after a restart counts its parked events from their records.

The group's own record (its checkpoint and parked count) is rewritten a little after each move, while a
parked event's record is written before the park is done: a kill -9 in between left a group reporting
none of the events parked just before it (seen once in test_parked_events_survive_kill_9_of_storage_and_query
on two workers: 10 parked records, a parked count of 0)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from allsource.storage.v1 import model_pb2
from allsource.v1 import groups_pb2

from services.storage.groups import NS_GROUPS, NS_PARKED, GroupEngine, parked_key, with_defaults
from services.storage.rocksdb_backend import RocksBackend
from shared.config.settings import StorageSettings


def test_a_reloaded_group_counts_the_parked_events_its_last_saved_record_missed(tmp_path: Path) -> None:
    async def body() -> tuple[int, set[int], int]:
        backend = RocksBackend(StorageSettings(data_dir=str(tmp_path / "data")))
        await backend.start()
        try:
            await backend.put_tenant(model_pb2.TenantRecord(tenant_id="acme"), 0)
            group = with_defaults(groups_pb2.ConsumerGroup(name="p"))
            # The record as last saved: checkpoint 2, nothing parked yet.
            stale = groups_pb2.GetConsumerGroupResponse(
                group=group, status=groups_pb2.ConsumerGroupStatus(checkpoint=2, parked_count=0)
            )
            await backend.put_record("acme", NS_GROUPS, "p", stale.SerializeToString(), None)
            # Parked since (3, 6 ... 30), one of them (1) before that save but counted by none, and a
            # group whose name starts the same ("p2") with parked events of its own.
            for position in (1, *range(3, 31, 3)):
                await backend.put_record("acme", NS_PARKED, parked_key("p", position), b"", None)
            await backend.put_record("acme", NS_PARKED, parked_key("p2", 4), b"", None)
            loaded = await GroupEngine(backend).get("acme", "p")
            return loaded.parked_count, loaded.parked_above, loaded.checkpoint()
        finally:
            await backend.close()

    parked_count, parked_above, checkpoint = asyncio.run(body())
    assert parked_count == 11  # was the record's 0
    assert parked_above == set(range(3, 31, 3))  # not read from the log again; 1 is below the checkpoint
    assert checkpoint == 2
