"""Export 100K events of one tenant to NDJSON with allsource-cli, import them into another, compare the
two tenants' events field by field, and import again to see that nothing more is written; resume an
interrupted export; refuse to import a file whose versions have gaps unless asked to renumber."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from allsource.v1 import event_pb2, ingest_pb2, ingest_pb2_grpc, query_pb2, query_pb2_grpc, tenant_pb2
from google.protobuf import timestamp_pb2

from tests.cli.conftest import Cli, exit_reason
from tests.harness import Suite

EVENTS = 100_000
STREAMS = 200
PER_APPEND = 100


def new_tenant(suite: Suite) -> str:
    name = f"cli-{uuid.uuid4().hex[:10]}"
    suite.create_tenant(name, quota_preset=tenant_pb2.QUOTA_PRESET_UNLIMITED)
    return name


def acting(suite: Suite, tenant: str) -> tuple[tuple[str, str], ...]:
    return (*suite.auth_metadata(), ("x-allsource-tenant", tenant))


def fill(suite: Suite, tenant: str, count: int) -> None:
    """`count` events over STREAMS streams, interleaved in the log; some binary, some with occurred_at."""

    def requests() -> Iterator[ingest_pb2.BatchAppendRequest]:
        for n in range(count // PER_APPEND):
            events = []
            for i in range(PER_APPEND):
                seq = n * PER_APPEND + i
                if seq % 10 == 0:
                    events.append(
                        event_pb2.EventData(
                            event_type="Blob",
                            payload=bytes([seq % 256, 0, 255]) * 3,
                            content_type="application/octet-stream",
                            occurred_at=timestamp_pb2.Timestamp(seconds=1_700_000_000 + seq, nanos=seq),
                        )
                    )
                else:
                    payload = json.dumps({"seq": seq, "note": "é" * (seq % 7)}).encode()
                    events.append(
                        event_pb2.EventData(event_type=f"T{seq % 3}", payload=payload, metadata={"n": str(n)})
                    )
            append = ingest_pb2.AppendEventsRequest(stream_id=f"acct-{n % STREAMS}", events=events)
            yield ingest_pb2.BatchAppendRequest(append=append)

    stub = ingest_pb2_grpc.IngestServiceStub(suite.channel("ingest", acting(suite, tenant)))
    for reply in stub.BatchAppend(requests(), timeout=300):
        assert reply.HasField("success"), reply


def stored(suite: Suite, tenant: str) -> list[tuple[object, ...]]:
    """Every event of the tenant as (stream, version, id, type, payload, content type, metadata, occurred_at)."""
    stub = query_pb2_grpc.QueryServiceStub(suite.channel("query", acting(suite, tenant)))
    rows = [
        (
            e.stream_id,
            e.version,
            e.event_id,
            e.event_type,
            e.payload,
            e.content_type,
            dict(e.metadata),
            e.occurred_at.SerializeToString(),
        )
        for message in stub.StreamEvents(query_pb2.StreamEventsRequest(batch_size=2000), timeout=300)
        for e in message.events
    ]
    return sorted(rows, key=lambda r: (str(r[0]), int(str(r[1]))))


def test_export_100k_import_into_another_tenant_twice(cli: Cli, suite: Suite, tmp_path: Path) -> None:
    source, target = new_tenant(suite), new_tenant(suite)
    fill(suite, source, EVENTS)
    dump = tmp_path / "events.ndjson"

    started = time.monotonic()
    exported = cli.json("--tenant", source, "events", "export", str(dump))
    export_s = time.monotonic() - started
    assert exported == {"file": str(dump), "events": EVENTS, "last_position": EVENTS}
    lines = dump.read_bytes().splitlines()
    assert len(lines) == EVENTS and json.loads(lines[0])["position"] == "1"

    started = time.monotonic()
    first = cli.json("--tenant", target, "events", "import", str(dump))
    import_s = time.monotonic() - started
    assert (first["events"], first["appended"], first["deduplicated"], first["streams"]) == (EVENTS, EVENTS, 0, STREAMS)
    original = stored(suite, source)
    assert len(original) == EVENTS and stored(suite, target) == original

    again = cli.json("--tenant", target, "events", "import", str(dump))
    assert (again["appended"], again["deduplicated"]) == (0, EVENTS)
    assert cli.json("tenants", "stats", target)["events"] == str(EVENTS)
    print(f"\n100K events: export {export_s:.1f} s, import {import_s:.1f} s, import again {again['seconds']:.1f} s")
    assert import_s < 60 and export_s < 60

    # An export cut off in the middle of a line resumes from the last whole line and ends identical.
    cut = tmp_path / "cut.ndjson"
    whole = dump.read_bytes()
    cut.write_bytes(whole[: whole.index(b"\n", len(whole) // 3) + 40])
    resumed = cli.run("--output", "json", "--tenant", source, "events", "export", str(cut), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["last_position"] == EVENTS
    assert "resuming after position" in resumed.stderr and "last position written: 100000" in resumed.stderr
    assert cut.read_bytes() == whole


def test_import_keeps_versions_or_renumbers(cli: Cli, suite: Suite, tmp_path: Path) -> None:
    source, target = new_tenant(suite), new_tenant(suite)
    for version in range(1, 5):
        cli.ok("--tenant", source, "events", "append", "s-1", "--type", "Even" if version % 2 == 0 else "Odd")
    dump = tmp_path / "even.ndjson"
    cli.ok("--tenant", source, "events", "export", str(dump), "--type", "Even")
    assert [json.loads(line)["version"] for line in dump.read_text().splitlines()] == ["2", "4"]

    # Versions 2 and 4 cannot be kept in a new stream: refused, nothing written, and the way out named.
    refused = cli.run("--tenant", target, "events", "import", str(dump))
    exit_reason(refused, 3, "ABORTED WRONG_EXPECTED_VERSION", "--renumber")
    assert cli.json("tenants", "stats", target)["events"] == "0"
    renumbered = cli.json("--tenant", target, "events", "import", str(dump), "--renumber")
    assert renumbered["appended"] == 2
    assert [e["version"] for e in cli.json("--tenant", target, "events", "read", "s-1")] == ["1", "2"]

    (tmp_path / "bad.ndjson").write_text('{"event_type": "X"}\nnot json\n')
    exit_reason(cli.run("--tenant", target, "events", "import", str(tmp_path / "bad.ndjson")), 2, "line 2")
