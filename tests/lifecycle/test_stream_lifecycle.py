"""Stream lifecycle on real processes: metadata (max_count, max_age, truncate_before), soft and hard
deletion, erasure by criteria, subscriptions over removed positions, and the background sweep that
really removes payloads from disk and lowers the tenant's storage bytes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from allsource.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    event_pb2,
    ingest_pb2,
    ingest_pb2_grpc,
    lifecycle_pb2,
    query_pb2,
    query_pb2_grpc,
)
from allsource_client import error_from_rpc
from google.protobuf.duration_pb2 import Duration

from tests.harness import Suite, wait_until


@pytest.fixture(scope="module")
def lsuite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    """A suite whose lifecycle sweep runs every second."""
    running = Suite(
        tmp_path_factory.mktemp("lifecycle"), extra_env={"ALLSOURCE_STORAGE__LIFECYCLE_SWEEP_INTERVAL_S": "1"}
    )
    try:
        running.start_all()
        yield running
    finally:
        running.stop_all()


class Tenant:
    """Stubs of a tenant of its own (so its storage bytes are its tests' alone)."""

    def __init__(self, suite: Suite) -> None:
        self.id = f"lc{uuid.uuid4().hex[:8]}"
        md = suite.create_tenant(self.id)
        self.ingest = ingest_pb2_grpc.IngestServiceStub(suite.channel("ingest", md))
        self.query = query_pb2_grpc.QueryServiceStub(suite.channel("query", md))
        self.admin = admin_pb2_grpc.AdminServiceStub(suite.channel("admin", md))

    def append(self, stream: str, n: int, marker: str = "", event_type: str = "Happened", **kw: object) -> object:
        events = [
            event_pb2.EventData(event_type=event_type, payload=f'{{"i": {i}, "m": "{marker}"}}'.encode())
            for i in range(n)
        ]
        return self.ingest.AppendEvents(ingest_pb2.AppendEventsRequest(stream_id=stream, events=events, **kw))  # type: ignore[arg-type]

    def read(self, stream: str) -> list[event_pb2.Event]:
        return list(self.query.ReadStream(query_pb2.ReadStreamRequest(stream_id=stream, page_size=1000)).events)

    def storage_bytes(self) -> int:
        return int(self.admin.GetTenantStats(admin_pb2.GetTenantStatsRequest()).stats.storage_bytes)

    def set_meta(self, stream: str, **fields: object) -> int:
        reply = self.ingest.SetStreamMetadata(
            lifecycle_pb2.SetStreamMetadataRequest(stream_id=stream, metadata=lifecycle_pb2.StreamMetadata(**fields))  # type: ignore[arg-type]
        )
        return int(reply.metadata_version)


def reason(err: grpc.RpcError) -> str:
    return str(error_from_rpc(err).reason)


def disk_bytes(data_dir: Path) -> bytes:
    """Every byte of the database's SST and WAL files (an offline scan of what is on disk)."""
    out = bytearray()
    for path in (data_dir / "rocksdb").iterdir():
        if path.suffix in (".sst", ".log"):
            try:
                out += path.read_bytes()
            except FileNotFoundError:  # compaction removed it meanwhile
                pass
    return bytes(out)


def test_max_count_truncate_and_metadata_versions(lsuite: Suite) -> None:
    t = Tenant(lsuite)
    t.append("orders-1", 100)
    assert t.set_meta("orders-1", max_count=10) == 1
    events = t.read("orders-1")
    assert [e.version for e in events] == list(range(91, 101))
    listed = t.query.ListEvents(query_pb2.ListEventsRequest(filter=event_pb2.EventFilter(stream_id="orders-1")))
    assert len(listed.events) == 10
    meta = t.query.GetStreamMetadata(lifecycle_pb2.GetStreamMetadataRequest(stream_id="orders-1"))
    assert meta.metadata.max_count == 10 and meta.metadata_version == 1 and meta.stream_version == 100
    with pytest.raises(grpc.RpcError) as err:
        t.ingest.SetStreamMetadata(
            lifecycle_pb2.SetStreamMetadataRequest(
                stream_id="orders-1", metadata=lifecycle_pb2.StreamMetadata(), expected_metadata_version=7
            )
        )
    assert reason(err.value) == "WRONG_METADATA_VERSION"
    with pytest.raises(grpc.RpcError) as err:
        t.set_meta("orders-1", custom={"k": "v" * 20_000})
    assert reason(err.value) == "INVALID_STREAM_METADATA"
    # truncate_before alone (max_count lifted) hides the versions below it
    t.ingest.SetStreamMetadata(
        lifecycle_pb2.SetStreamMetadataRequest(
            stream_id="orders-1",
            metadata=lifecycle_pb2.StreamMetadata(truncate_before=95, custom={"owner": "billing"}),
            expected_metadata_version=1,
        )
    )
    assert [e.version for e in t.read("orders-1")] == list(range(95, 101))
    state = t.query.GetEntityState(query_pb2.GetEntityStateRequest(stream_id="orders-1"))
    assert state.version == 100 and state.events_folded == 6


def test_max_age_hides_old_events(lsuite: Suite) -> None:
    t = Tenant(lsuite)
    t.append("aged-1", 5)
    time.sleep(1.5)
    t.append("aged-1", 3)
    t.set_meta("aged-1", max_age=Duration(seconds=1))
    assert [e.version for e in t.read("aged-1")] == [6, 7, 8]
    streamed = [
        e.version
        for batch in t.query.StreamEvents(
            query_pb2.StreamEventsRequest(filter=event_pb2.EventFilter(stream_id_prefix="aged-"))
        )
        for e in batch.events
    ]
    assert streamed == [6, 7, 8]


def test_sweep_removes_hidden_payloads_from_disk_and_storage_bytes_fall(lsuite: Suite) -> None:
    t = Tenant(lsuite)
    hidden, kept = f"HIDDEN{uuid.uuid4().hex}", f"KEPT{uuid.uuid4().hex}"
    t.append("big-1", 50, marker=hidden)
    t.append("big-1", 5, marker=kept)
    ids = [e.event_id for e in t.read("big-1")[:50]]
    before = t.storage_bytes()
    assert hidden.encode() in disk_bytes(lsuite.data_dir)  # in the WAL or an SST
    t.set_meta("big-1", max_count=5)
    assert all(kept in e.payload.decode() for e in t.read("big-1"))
    wait_until(lambda: t.storage_bytes() < before * 0.3, 15, "the sweep to lower the tenant's storage bytes")
    wait_until(lambda: hidden.encode() not in disk_bytes(lsuite.data_dir), 15, "hidden payloads to leave the disk")
    assert kept.encode() in disk_bytes(lsuite.data_dir) or len(t.read("big-1")) == 5
    with pytest.raises(grpc.RpcError) as err:
        t.query.GetEvent(query_pb2.GetEventRequest(event_id=ids[0]))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_soft_delete_then_append_continues_versions(lsuite: Suite) -> None:
    t = Tenant(lsuite)
    t.append("cart-1", 4)
    t.append("cart-2", 1)
    with pytest.raises(grpc.RpcError) as err:
        t.ingest.DeleteStream(
            ingest_pb2.DeleteStreamRequest(
                stream_id="cart-1",
                expected_version=ingest_pb2.ExpectedVersion(kind=ingest_pb2.EXPECTED_VERSION_KIND_EXACT, version=3),
            )
        )
    assert reason(err.value) == "WRONG_EXPECTED_VERSION"
    reply = t.ingest.DeleteStream(
        ingest_pb2.DeleteStreamRequest(
            stream_id="cart-1",
            expected_version=ingest_pb2.ExpectedVersion(kind=ingest_pb2.EXPECTED_VERSION_KIND_EXACT, version=4),
        )
    )
    assert reply.stream_version == 4 and reply.events_deleted == 4
    with pytest.raises(grpc.RpcError) as err:
        t.read("cart-1")
    assert reason(err.value) == "STREAM_NOT_FOUND"
    names = [s.stream_id for s in t.query.ListStreams(query_pb2.ListStreamsRequest()).streams]
    assert names == ["cart-2"]
    appended = t.append(
        "cart-1", 2, expected_version=ingest_pb2.ExpectedVersion(kind=ingest_pb2.EXPECTED_VERSION_KIND_NO_STREAM)
    )
    assert appended.first_version == 5  # type: ignore[attr-defined]
    assert [e.version for e in t.read("cart-1")] == [5, 6]
    names = [s.stream_id for s in t.query.ListStreams(query_pb2.ListStreamsRequest()).streams]
    assert names == ["cart-1", "cart-2"]


def test_hard_delete_refuses_writes(lsuite: Suite) -> None:
    t = Tenant(lsuite)
    t.append("user-1", 3)
    t.ingest.DeleteStream(ingest_pb2.DeleteStreamRequest(stream_id="user-1", hard=True))
    for kind in (ingest_pb2.EXPECTED_VERSION_KIND_ANY, ingest_pb2.EXPECTED_VERSION_KIND_NO_STREAM):
        with pytest.raises(grpc.RpcError) as err:
            t.append("user-1", 1, expected_version=ingest_pb2.ExpectedVersion(kind=kind))
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason(err.value) == "STREAM_DELETED"
    with pytest.raises(grpc.RpcError) as err:
        t.set_meta("user-1", max_count=1)
    assert reason(err.value) == "STREAM_DELETED"
    meta = t.query.GetStreamMetadata(lifecycle_pb2.GetStreamMetadataRequest(stream_id="user-1"))
    assert meta.tombstoned


def test_delete_events_dry_run_count_equals_real_count(lsuite: Suite) -> None:
    t = Tenant(lsuite)
    marker = f"ERASE{uuid.uuid4().hex}"
    for i in range(6):
        t.append(f"person-{i % 3}", 4, marker=marker, event_type="Pii" if i % 2 else "Other")
    t.append("other-1", 3, event_type="Pii")
    with pytest.raises(grpc.RpcError) as err:
        t.ingest.DeleteEvents(lifecycle_pb2.DeleteEventsRequest(dry_run=True))
    assert reason(err.value) == "INVALID_DELETE_CRITERIA"
    request = lifecycle_pb2.DeleteEventsRequest(stream_id_prefix="person-", event_types=["Pii"], dry_run=True)
    dry = t.ingest.DeleteEvents(request)
    assert dry.events_deleted == 12 and dry.dry_run
    assert len(t.read("person-1")) == 8  # nothing erased by the dry run
    request.dry_run = False
    real = t.ingest.DeleteEvents(request)
    assert real.events_deleted == dry.events_deleted and real.bytes_freed == dry.bytes_freed
    left = t.query.ListEvents(query_pb2.ListEventsRequest(page_size=1000)).events
    assert sorted((e.stream_id, e.event_type) for e in left).count(("other-1", "Pii")) == 3
    assert not [e for e in left if e.stream_id.startswith("person-") and e.event_type == "Pii"]
    assert len(left) == 27 - 12
    again = t.ingest.DeleteEvents(request)
    assert again.events_deleted == 0


def test_subscription_skips_removed_positions_with_checkpoints(lsuite: Suite) -> None:
    t = Tenant(lsuite)
    t.append("gone-1", 30)
    t.append("kept-1", 2)
    t.ingest.DeleteStream(ingest_pb2.DeleteStreamRequest(stream_id="gone-1"))
    got: list[int] = []
    checkpoints: list[int] = []
    call = t.query.Subscribe(query_pb2.SubscribeRequest(checkpoint_every_events=10))
    for message in call:
        kind = message.WhichOneof("content")
        if kind == "events":
            got += [e.position for e in message.events.events]
        elif kind == "checkpoint":
            checkpoints.append(message.checkpoint.position)
        elif kind == "caught_up":
            assert message.caught_up.position == 32
            break
    call.cancel()
    assert got == [31, 32]
    assert checkpoints and checkpoints[0] >= 10 and all(c <= 30 for c in checkpoints)
    # resuming from a checkpoint over removed positions misses nothing that exists
    call = t.query.Subscribe(query_pb2.SubscribeRequest(after_position=checkpoints[0]))
    resumed = []
    for message in call:
        if message.WhichOneof("content") == "events":
            resumed += [e.position for e in message.events.events]
        if message.WhichOneof("content") == "caught_up":
            break
    call.cancel()
    assert resumed == [31, 32]


def test_erasure_by_time_and_a_hard_delete_at_a_version_leave_no_payload_of_theirs_on_disk(lsuite: Suite) -> None:
    """DeleteEvents by a time range (dry run first) and DeleteStream hard at an expected version really remove
    what they name: an offline scan of the SST and WAL files no longer finds their payloads, and what they
    did not name stays readable."""
    t = Tenant(lsuite)
    early, late, gone = (f"{name}{uuid.uuid4().hex}" for name in ("EARLY", "LATE", "TOMBSTONED"))
    t.append("gdpr-1", 20, marker=early)
    t.append("gdpr-1", 20, marker=late)
    t.append("secret-1", 10, marker=gone)
    boundary = t.read("gdpr-1")[20].recorded_at  # the first late event's
    on_disk = disk_bytes(lsuite.data_dir)
    assert early.encode() in on_disk and gone.encode() in on_disk
    request = lifecycle_pb2.DeleteEventsRequest(stream_id_prefix="gdpr-", end_time=boundary, dry_run=True)
    assert t.ingest.DeleteEvents(request).events_deleted == 20
    request.dry_run = False
    assert t.ingest.DeleteEvents(request).events_deleted == 20
    assert [late in e.payload.decode() for e in t.read("gdpr-1")] == [True] * 20
    with pytest.raises(grpc.RpcError) as err:
        t.ingest.DeleteStream(
            ingest_pb2.DeleteStreamRequest(
                stream_id="secret-1",
                hard=True,
                expected_version=ingest_pb2.ExpectedVersion(kind=ingest_pb2.EXPECTED_VERSION_KIND_EXACT, version=9),
            )
        )
    assert reason(err.value) == "WRONG_EXPECTED_VERSION"
    t.ingest.DeleteStream(
        ingest_pb2.DeleteStreamRequest(
            stream_id="secret-1",
            hard=True,
            expected_version=ingest_pb2.ExpectedVersion(kind=ingest_pb2.EXPECTED_VERSION_KIND_EXACT, version=10),
        )
    )
    wait_until(
        lambda: not _markers(disk_bytes(lsuite.data_dir), early, gone),
        20,
        "erased and tombstoned payloads to leave the disk",
    )
    assert len(t.read("gdpr-1")) == 20


def _markers(data: bytes, *markers: str) -> list[str]:
    """The markers found in the bytes."""
    return [m for m in markers if m.encode() in data]


def test_a_subscription_honours_max_count_truncate_before_and_max_age(lsuite: Suite) -> None:
    """What stream metadata hides is not delivered by Subscribe's catch-up either."""
    t = Tenant(lsuite)
    t.append("count-1", 20)  # positions 1..20
    t.append("trunc-1", 10)  # 21..30
    t.append("aged-1", 3)  # 31..33
    t.set_meta("count-1", max_count=5)
    t.set_meta("trunc-1", truncate_before=8)
    time.sleep(2.5)
    t.append("aged-1", 2)  # 34..35, newer than the max age set next
    appended = time.monotonic()
    t.set_meta("aged-1", max_age=Duration(seconds=2))
    got: list[int] = []
    call = t.query.Subscribe(query_pb2.SubscribeRequest())
    for message in call:
        kind = message.WhichOneof("content")
        if kind == "events":
            got += [e.position for e in message.events.events]
        elif kind == "caught_up":
            break
    call.cancel()
    assert [p for p in got if p < 34] == [16, 17, 18, 19, 20, 28, 29, 30]
    if time.monotonic() - appended < 2:  # still younger than the max age when read (unless the machine stalled)
        assert got[-2:] == [34, 35]
