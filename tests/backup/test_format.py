"""The backup format read without the suite, cron expressions, and retention rules."""

from __future__ import annotations

import calendar
import json
import time

import pytest
from allsource.v1 import backup_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from services.admin.backups import retained
from services.admin.cron import Cron, CronError
from services.storage.backup import format as fmt
from services.storage.backup.destinations import open_destination


def manifest() -> fmt.Manifest:
    return fmt.Manifest(
        backup_id="20261128T000000000Z-abcdef",
        kind="full",
        parent_backup_id="",
        created_ns=1,
        suite_version="1.0.0",
        tenants=[fmt.TenantPart("acme", "", 1, 0, 10, 10, 5, 9)],
        chunks=[fmt.ChunkInfo("t00000-events-000000.zst", "acme", "events", "00", 3, 9, 10, 1, 10, 5, 9)],
    )


def test_a_manifest_round_trips_and_a_newer_format_is_refused_by_name() -> None:
    written = manifest()
    read = fmt.Manifest.from_json(written.to_json())
    assert read == written and read.events == 10
    raw = json.loads(written.to_json())
    raw["format_version"] = fmt.FORMAT_VERSION + 1
    with pytest.raises(fmt.FormatError, match=f"format version {fmt.FORMAT_VERSION + 1}") as newer:
        fmt.Manifest.from_json(json.dumps(raw).encode())
    assert newer.value.kind == "format"
    for damaged in (
        b"{",
        b"[]",
        json.dumps({"format": "other"}).encode(),
        json.dumps({**raw, "format_version": 1, "tenants": [{}]}).encode(),
    ):
        with pytest.raises(fmt.FormatError):
            fmt.Manifest.from_json(damaged)


def test_a_format_1_manifest_is_still_read_and_its_tenants_continue_their_chain() -> None:
    raw = json.loads(manifest().to_json())
    raw["format_version"] = 1
    for part in raw["tenants"]:
        del part["restart"]  # format 1 had no such field
    read = fmt.Manifest.from_json(json.dumps(raw).encode())
    assert read.format_version == 1 and read.tenants[0].restart is False


def test_an_incremental_continues_a_tenant_only_with_the_same_number_and_a_log_not_gone_back() -> None:
    parent = fmt.TenantPart("acme", "", 1, 0, 10, 10, number=7)
    assert fmt.continues(parent, 7, 10) and fmt.continues(parent, 7, 25)
    assert not fmt.continues(parent, 8, 25)  # deleted and made again, or restored: a new number
    assert not fmt.continues(parent, 7, 9)  # the log went back
    assert not fmt.continues(None, 7, 25)  # the parent did not hold the tenant
    assert fmt.continues(fmt.TenantPart("acme", "", 1, 0, 10, 10), 8, 10)  # no number kept: by position
    # The event the parent ended with, still there (by its recording time), or not.
    ended = fmt.TenantPart("acme", "", 1, 0, 10, 10, number=7, to_recorded_ns=1234)
    assert fmt.continues(ended, 7, 25, 1234) and fmt.continues(ended, 7, 25)  # (None: not looked up)
    assert not fmt.continues(ended, 7, 25, 999)  # another event at position 10: the log went back and grew
    assert not fmt.continues(ended, 7, 25, -1)  # no event there any more
    assert fmt.continues(parent, 7, 25, 999)  # a part without to_recorded_ns (format 1): not checked

    def link(backup_id: str, restart: bool) -> fmt.Manifest:
        part = fmt.TenantPart("acme", "", 1, 0, 10, 10, number=7, restart=restart)
        return fmt.Manifest(backup_id, "incremental", "", 1, "1.0.0", tenants=[part])

    chain = [link("a", False), link("b", False), link("c", True), link("d", False)]
    assert [m.backup_id for m in fmt.since_restart(chain, "acme")] == ["c", "d"]
    assert [m.backup_id for m in fmt.since_restart(chain, "other")] == ["a", "b", "c", "d"]
    assert [m.backup_id for m in fmt.since_restart(chain[:2], "acme")] == ["a", "b"]


def test_chunks_frame_records_and_any_damage_is_caught() -> None:
    records = [(b"k%d" % i, b"v" * i) for i in range(100)] + [(b"", b"")]
    data = fmt.compress(fmt.encode_records(records), 3)
    assert list(fmt.decode_records(fmt.decompress(data, "c"), "c")) == records
    info = fmt.ChunkInfo("c", "t", "events", fmt.sha256(data), len(data), 0, len(records))
    assert fmt.check_chunk(info, data, "b") == ""
    assert "missing" in fmt.check_chunk(info, None, "b")
    flipped = bytes([data[0] ^ 1]) + data[1:]
    assert "SHA-256" in fmt.check_chunk(info, flipped, "b")
    with pytest.raises(fmt.FormatError):
        fmt.decompress(b"not zstd at all", "c")
    with pytest.raises(fmt.FormatError, match="runs past its end"):
        list(fmt.decode_records(fmt.encode_records(records)[:-3] + b"\x00\x00\x00\xff", "c"))


def _at(text: str) -> float:
    """Epoch seconds of a UTC "YYYY-MM-DD HH:MM:SS"."""
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%d %H:%M:%S")))


def test_cron_expressions_find_their_next_minute_and_refuse_what_is_not_cron() -> None:
    assert Cron("*/15 * * * *").next_after(_at("2026-11-28 10:07:30")) == _at("2026-11-28 10:15:00")
    assert Cron("0 3 * * *").next_after(_at("2026-11-28 03:00:00")) == _at("2026-11-29 03:00:00")
    assert Cron("30 2 1 * *").next_after(_at("2026-11-28 00:00:00")) == _at("2026-12-01 02:30:00")
    # 2026-11-28 is a Saturday: the next Monday (1) at 09:00.
    assert Cron("0 9 * * 1").next_after(_at("2026-11-28 12:00:00")) == _at("2026-11-30 09:00:00")
    assert Cron("0 9 * * 7").next_after(_at("2026-11-28 12:00:00")) == _at("2026-11-29 09:00:00")  # 7 = Sunday
    # An expression that never matches is refused (its search for a next run took a second of the loop).
    for bad in ("* * * *", "60 * * * *", "* 24 * * *", "a * * * *", "*/0 * * * *", "5-1 * * * *", "0 0 31 2 *"):
        with pytest.raises(CronError):
            Cron(bad)


def _backup(backup_id: str, day: str, parent: str = "") -> backup_pb2.Backup:
    return backup_pb2.Backup(backup_id=backup_id, parent_backup_id=parent, created_at=Timestamp(seconds=int(_at(day))))


def test_retention_keeps_the_newest_per_rule_and_every_ancestor_a_kept_incremental_needs() -> None:
    made = [
        _backup("a", "2026-11-01 01:00:00"),
        _backup("b", "2026-11-01 05:00:00", "a"),
        _backup("c", "2026-11-02 01:00:00"),
        _backup("d", "2026-11-09 01:00:00"),
        _backup("e", "2026-11-10 01:00:00", "d"),
    ]
    assert retained(made, backup_pb2.Retention(keep_last=1)) == {"e", "d"}
    assert retained(made, backup_pb2.Retention(keep_daily=2)) == {"e", "d"}
    assert retained(made, backup_pb2.Retention(keep_daily=5)) == {"e", "d", "c", "b", "a"}
    assert retained(made, backup_pb2.Retention(keep_weekly=2)) == {"e", "d", "c"}
    assert retained(made, backup_pb2.Retention(keep_monthly=1)) == {"e", "d"}
    assert retained(made, backup_pb2.Retention()) == {"a", "b", "c", "d", "e"}  # no rule: keep all


def test_a_destination_is_opened_once_per_configuration() -> None:
    """Every backup, listing and restore opened its destination anew (an S3 client costs ~7 ms to make,
    0.4 s the first time); the same configuration now gives the same object, a changed one (rotated
    credentials) a new one."""
    s3 = {
        "kind": "s3",
        "name": "s3",
        "bucket": "b",
        "endpoint_url": "http://127.0.0.1:9",
        "access_key_id": "k",
        "secret_access_key": "s",
    }
    first = open_destination(dict(s3))
    assert open_destination(dict(reversed(list(s3.items())))) is first  # the same, in any key order
    assert open_destination({**s3, "access_key_id": "rotated"}) is not first
    local = open_destination({"kind": "local", "name": "local", "dir": "/tmp/backups-a"})
    assert open_destination({"kind": "local", "name": "local", "dir": "/tmp/backups-a"}) is local
    assert open_destination({"kind": "local", "name": "local", "dir": "/tmp/backups-b"}) is not local
