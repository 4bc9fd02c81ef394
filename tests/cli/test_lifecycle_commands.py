"""The CLI's stream lifecycle and consumer-group commands end to end, as a subprocess against the real suite:
`streams metadata` and `streams delete`, `events delete` by criteria (dry run, confirmation), and `groups`."""

from __future__ import annotations

import json
import uuid

from tests.cli.conftest import Cli, exit_reason
from tests.groups.support import Consumer
from tests.harness import Suite, wait_until


def test_stream_metadata_get_and_set(cli: Cli, tenant: str) -> None:
    acting = ("--tenant", tenant)
    for i in range(5):
        cli.ok(*acting, "events", "append", "cart-1", "--type", "Added", "--data", json.dumps({"i": i}))
    never = cli.json(*acting, "streams", "metadata", "get", "cart-1")
    assert never["metadata_version"] == "0" and never["stream_version"] == "5" and never["deleted"] is False

    first = cli.json(*acting, "streams", "metadata", "set", "cart-1", "--max-count", "2", "--custom", "owner=ops")
    assert first["metadata_version"] == "1"
    assert first["metadata"]["max_count"] == "2" and first["metadata"]["custom"] == {"owner": "ops"}
    assert [e["version"] for e in cli.json(*acting, "events", "read", "cart-1")] == ["4", "5"]

    # What is not given stays: the custom entry survives a change of max_age.
    second = cli.json(*acting, "streams", "metadata", "set", "cart-1", "--max-age", "30d")
    assert second["metadata_version"] == "2" and second["metadata"]["custom"] == {"owner": "ops"}
    assert second["metadata"]["max_age"] == f"{30 * 86400}s" and second["metadata"]["max_count"] == "2"
    replaced = cli.json(*acting, "streams", "metadata", "set", "cart-1", "--replace", "--truncate-before", "5")
    assert replaced["metadata"]["custom"] == {} and replaced["metadata"]["max_count"] == "0"
    assert [e["version"] for e in cli.json(*acting, "events", "read", "cart-1")] == ["5"]

    # Someone else's change in between: refused with the server's reason, nothing written.
    stale = cli.run(*acting, "streams", "metadata", "set", "cart-1", "--max-count", "1", "--expected-version", "1")
    exit_reason(stale, 3, "ABORTED", "WRONG_METADATA_VERSION")
    assert cli.json(*acting, "streams", "metadata", "get", "cart-1")["metadata_version"] == "3"
    exit_reason(cli.run(*acting, "streams", "metadata", "set", "cart-1"), 2, "nothing to change")
    oversized = cli.run(*acting, "streams", "metadata", "set", "cart-1", "--custom", "k=" + "v" * 17_000)
    exit_reason(oversized, 3, "INVALID_ARGUMENT", "INVALID_STREAM_METADATA", "  metadata.custom: ")


def test_stream_delete_soft_then_hard(cli: Cli, tenant: str) -> None:
    acting = ("--tenant", tenant)
    for kind in ("Opened", "Closed"):
        cli.ok(*acting, "events", "append", "acct-1", "--type", kind)
    exit_reason(cli.run(*acting, "streams", "delete", "acct-1", "--expected", "1"), 3, "WRONG_EXPECTED_VERSION")
    soft = cli.json(*acting, "streams", "delete", "acct-1", "--expected", "2")
    assert soft == {"stream_id": "acct-1", "hard": False, "stream_version": "2", "events_deleted": "2"}
    assert cli.json(*acting, "streams", "list", "--prefix", "acct-") == []
    assert cli.json(*acting, "streams", "metadata", "get", "acct-1")["deleted"] is True
    exit_reason(cli.run(*acting, "events", "read", "acct-1"), 3, "NOT_FOUND", "STREAM_NOT_FOUND")
    # A soft-deleted stream takes appends again, continuing its versions.
    assert cli.json(*acting, "events", "append", "acct-1", "--type", "Reopened")["first_version"] == "3"

    # Hard: without a terminal it wants --yes, and nothing is deleted meanwhile.
    exit_reason(cli.run(*acting, "streams", "delete", "acct-1", "--hard"), 2, "--yes")
    assert cli.json(*acting, "events", "read", "acct-1")[0]["version"] == "3"
    hard = cli.json(*acting, "streams", "delete", "acct-1", "--hard", "--yes")
    assert hard["hard"] is True and hard["stream_version"] == "3"
    assert cli.json(*acting, "streams", "metadata", "get", "acct-1")["tombstoned"] is True
    refused = cli.run(*acting, "events", "append", "acct-1", "--type", "Again")
    exit_reason(refused, 3, "FAILED_PRECONDITION", "STREAM_DELETED")
    exit_reason(cli.run(*acting, "streams", "delete", "never-was"), 3, "NOT_FOUND", "STREAM_NOT_FOUND")


def test_events_delete_counts_first_then_asks(cli: Cli, tenant: str) -> None:
    acting = ("--tenant", tenant)
    for stream, kind in [("user-1", "Profile"), ("user-1", "Login"), ("user-2", "Profile"), ("order-1", "Profile")]:
        cli.ok(*acting, "events", "append", stream, "--type", kind, "--data", '{"email": "a@example.com"}')
    criteria = ("--prefix", "user-", "--type", "Profile")

    counted = cli.json(*acting, "events", "delete", *criteria, "--dry-run")
    assert counted["dry_run"] is True and counted["events_deleted"] == "2" and counted["streams_affected"] == "2"
    # Without a terminal and without --yes: the count is shown, nothing is erased.
    unconfirmed = cli.run(*acting, "events", "delete", *criteria)
    exit_reason(unconfirmed, 2, "Erase 2 events of 2 streams", "--yes")
    assert len(cli.json(*acting, "events", "read", "user-2")) == 1

    erased = cli.json(*acting, "events", "delete", *criteria, "--yes")
    assert erased["dry_run"] is False and erased["events_deleted"] == counted["events_deleted"]
    assert int(erased["bytes_freed"]) > 0
    assert [e["event_type"] for e in cli.json(*acting, "events", "read", "user-1")] == ["Login"]
    assert [e["stream_id"] for e in cli.json(*acting, "events", "read", "order-1")] == ["order-1"]
    again = cli.run(*acting, "--output", "json", "events", "delete", *criteria, "--yes")
    assert again.returncode == 0 and json.loads(again.stdout)["events_deleted"] == "0"
    assert "nothing to erase" in again.stderr

    exit_reason(
        cli.run(*acting, "events", "delete", "--yes"),
        3,
        "INVALID_ARGUMENT",
        "INVALID_DELETE_CRITERIA",
        "  stream_id_prefix:",
    )
    # Erasure is for tenant administrators: a developer's key is refused with the server's reason.
    developer = cli.json(*acting, "keys", "create", "dev", "--role", "developer")["secret"]
    exit_reason(cli.run("events", "delete", "--prefix", "order-", "--yes", key=developer), 3, "PERMISSION_DENIED")
    assert len(cli.json(*acting, "events", "read", "order-1")) == 1


def test_consumer_groups_list_info_parked_replay(cli: Cli, tenant: str, suite: Suite) -> None:
    acting = ("--tenant", tenant)
    for i in range(4):
        cli.ok(*acting, "events", "append", f"job-{i % 2}", "--type", "Queued", "--data", json.dumps({"i": i}))
    created = cli.json(*acting, "groups", "create", "workers", "--prefix", "job-", "--strategy", "by-stream")
    assert created["name"] == "workers" and created["settings"]["strategy"] == "CONSUMER_STRATEGY_BY_STREAM"
    cli.ok(*acting, "groups", "create", "audit", "--type", "Queued", "--from-end")
    exit_reason(cli.run(*acting, "groups", "create", "workers"), 3, "ALREADY_EXISTS", "CONSUMER_GROUP_EXISTS")
    assert [g["name"] for g in cli.json(*acting, "groups", "list")] == ["audit", "workers"]
    assert [g["name"] for g in cli.json(*acting, "groups", "list", "--limit", "1")] == ["audit"]

    # A consumer parks the events of job-1 and acks the others.
    metadata = (*suite.auth_metadata(), ("x-allsource-tenant", tenant))
    consumer = Consumer(
        suite, metadata, "workers", "w1", policy=lambda d: "park" if d.event.stream_id == "job-1" else "ack"
    )
    try:
        consumer.wait_joined()
        info = wait_until(
            lambda: (i := cli.json(*acting, "groups", "info", "workers"))["status"]["parked_count"] == "2" and i,
            20,
            "two events parked",
        )
        assert info["status"]["lag"] == "0" and [c["name"] for c in info["status"]["consumers"]] == ["w1"]
        assert "w1" in cli.ok(*acting, "groups", "info", "workers")  # the consumers' table for people
        parked = cli.json(*acting, "groups", "parked", "workers")
        assert [(p["event"]["stream_id"], p["reason"]) for p in parked] == [("job-1", "test park")] * 2
        assert len(cli.json(*acting, "groups", "parked", "workers", "--limit", "1")) == 1

        # Replay delivers them again; this time the consumer acks them and they leave the parked list.
        consumer.policy = lambda _: "ack"
        assert cli.json(*acting, "groups", "replay", "workers")["replayed"] == "2"
        wait_until(lambda: cli.json(*acting, "groups", "parked", "workers") == [], 20, "parked events acked")
        redelivered = [p for p, stream, _ in consumer.received if stream == "job-1"]
        assert len(redelivered) == 4  # each parked event delivered twice: before parking, after replay
    finally:
        consumer.close()

    exit_reason(cli.run(*acting, "groups", "info", "nope"), 3, "NOT_FOUND", "CONSUMER_GROUP_NOT_FOUND")
    exit_reason(cli.run(*acting, "groups", "replay", "nope"), 3, "NOT_FOUND", "CONSUMER_GROUP_NOT_FOUND")
    assert cli.json(*acting, "groups", "delete", "audit") == {"group": "audit", "deleted": True}
    assert [g["name"] for g in cli.json(*acting, "groups", "list")] == ["workers"]


def test_a_command_past_the_tenants_quota_exits_3_with_the_reason(cli: Cli, suite: Suite) -> None:
    """The FREE plan holds two consumer groups: the third is refused by the server, and the CLI says why."""
    from allsource.v1 import tenant_pb2

    name = f"cli-free-{uuid.uuid4().hex[:8]}"
    suite.create_tenant(name, quota_preset=tenant_pb2.QUOTA_PRESET_FREE)
    for group in ("one", "two"):
        cli.ok("--tenant", name, "groups", "create", group)
    exit_reason(cli.run("--tenant", name, "groups", "create", "three"), 3, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED")
