"""Every command group of allsource-cli end to end, run as a subprocess against the real suite, with
`--output json` parsed and checked; refusals exit 3 with the server's reason, usage errors 2,
unavailability 4, never with a traceback."""

from __future__ import annotations

import base64
import json
import stat
import subprocess
import time
import uuid

import grpc
import pytest
import yaml
from allsource.v1 import auth_pb2, auth_pb2_grpc

from shared.core.version import VERSION
from tests.cli.conftest import Cli, exit_reason, suite_profile
from tests.harness import ROOT, Suite, free_port

PASSWORD = "correct-horse-battery-1"


def test_tenants_lifecycle(cli: Cli) -> None:
    name = f"cli-{uuid.uuid4().hex[:10]}"
    created = cli.json("tenants", "create", name, "--name", "Acme", "--preset", "free", "--metadata", "team=ops")
    assert created["tenant_id"] == name and created["display_name"] == "Acme"
    assert created["quota_preset"] == "QUOTA_PRESET_FREE" and created["metadata"] == {"team": "ops"}
    assert name in [t["tenant_id"] for t in cli.json("tenants", "list")]
    exit_reason(cli.run("tenants", "create", name), 3, "ALREADY_EXISTS", "TENANT_ALREADY_EXISTS")

    updated = cli.json(
        "tenants", "update", name, "--name", "Acme Inc", "--quota", "events_per_day=5000", "--metadata", "tier=gold"
    )
    assert updated["display_name"] == "Acme Inc" and updated["metadata"] == {"tier": "gold"}
    assert updated["quotas"]["max_events_per_day"] == "5000"
    assert cli.json("tenants", "get", name)["display_name"] == "Acme Inc"
    assert "Acme Inc" in cli.ok("tenants", "get", name)  # the table for people

    cli.ok("--tenant", name, "events", "append", "s-1", "--type", "Created")
    stats = cli.json("tenants", "stats", name)
    assert stats["tenant_id"] == name and stats["events"] == "1" and stats["streams"] == "1"
    assert {q["quota"] for q in stats["quotas"]} >= {"max_events_per_day"}

    assert cli.json("tenants", "deactivate", name)["status"] == "TENANT_STATUS_INACTIVE"
    exit_reason(cli.run("--tenant", name, "events", "read", "s-1"), 3, "FAILED_PRECONDITION", "TENANT_INACTIVE")
    assert cli.json("tenants", "activate", name)["status"] == "TENANT_STATUS_ACTIVE"

    # Without a terminal to confirm on, deletion wants --yes; nothing is deleted meanwhile.
    exit_reason(cli.run("tenants", "delete", name), 2, "--yes")
    assert cli.json("tenants", "get", name)["tenant_id"] == name
    deleted = cli.json("tenants", "delete", name, "--yes")
    assert deleted["events_deleted"] == "1"
    exit_reason(cli.run("tenants", "get", name), 3, "NOT_FOUND", "TENANT_NOT_FOUND")


def test_users_and_login_with_refresh(cli: Cli, tenant: str, suite: Suite) -> None:
    acting = ("--tenant", tenant)
    alice = cli.json(*acting, "users", "create", "alice", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    assert alice["username"] == "alice" and alice["role"] == "ROLE_ADMIN" and alice["tenant_id"] == tenant
    assert [u["username"] for u in cli.json(*acting, "users", "list")] == ["alice"]
    assert cli.json(*acting, "users", "get", "alice")["user_id"] == alice["user_id"]
    assert cli.json(*acting, "users", "set-role", "alice", "developer")["role"] == "ROLE_DEVELOPER"
    assert cli.json(*acting, "users", "disable", alice["user_id"])["disabled"] is True
    assert cli.json(*acting, "users", "enable", "alice")["disabled"] is False
    cli.ok(*acting, "users", "reset-password", "alice", "--password-stdin", stdin=PASSWORD + "-new\n")

    # A profile of alice's own: login keeps tokens with mode 0600, and whoami uses them.
    cli.write_profiles(
        {"test": suite_profile(suite), "alice": suite_profile(suite, tenant=tenant, username="alice")}, default="test"
    )
    as_alice = {"ALLSOURCE_API_KEY": ""}
    cli.ok("--profile", "alice", "login", "--password-stdin", stdin=PASSWORD + "-new\n", env=as_alice)
    tokens_file = cli.config_dir / "credentials" / "alice.json"
    assert stat.S_IMODE(tokens_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(tokens_file.parent.stat().st_mode) == 0o700
    me = cli.json("--profile", "alice", "whoami", env=as_alice)
    assert me["kind"] == "user" and me["name"] == "alice" and me["tenant_id"] == tenant

    # An access token about to expire is refreshed before the call, and the new pair is kept.
    before = json.loads(tokens_file.read_text())
    tokens_file.write_text(json.dumps({**before, "access_expires_at": time.time() + 5}))
    assert cli.json("--profile", "alice", "whoami", env=as_alice)["name"] == "alice"
    after = json.loads(tokens_file.read_text())
    assert after["refresh_token"] != before["refresh_token"] and after["access_expires_at"] > time.time() + 60
    assert stat.S_IMODE(tokens_file.stat().st_mode) == 0o600

    # A developer may not manage users: refused with the server's reason.
    exit_reason(cli.run("--profile", "alice", "users", "list", env=as_alice), 3, "PERMISSION_DENIED")
    # Logout ends the session on the server even while an API key (here the operator's, in the environment)
    # is what the profile's other calls present: its refresh token is refused afterwards. Before, only the
    # local file went, and the session stayed alive.
    refresh = json.loads(tokens_file.read_text())["refresh_token"]
    cli.ok("--profile", "alice", "logout")
    assert not tokens_file.exists()
    with grpc.insecure_channel(suite.address("admin")) as channel:
        with pytest.raises(grpc.RpcError) as ended:
            auth_pb2_grpc.AuthServiceStub(channel).RefreshToken(
                auth_pb2.RefreshTokenRequest(refresh_token=refresh), timeout=10
            )
    assert ended.value.code() == grpc.StatusCode.UNAUTHENTICATED
    exit_reason(cli.run("--profile", "alice", "whoami", env=as_alice), 3, "UNAUTHENTICATED", "allsource-cli login")

    cli.ok(*acting, "users", "delete", "alice")
    assert cli.json(*acting, "users", "list") == []


def test_keys_secret_once_rotate_revoke(cli: Cli, tenant: str) -> None:
    acting = ("--tenant", tenant)
    created = cli.json(*acting, "keys", "create", "reader", "--role", "read-only", "--ttl", "1d")
    key_id, secret = created["api_key"]["key_id"], created["secret"]
    assert secret.startswith(f"as_{key_id}_") and created["api_key"]["expires_at"]
    listing = cli.ok(*acting, "--output", "json", "keys", "list")
    assert key_id in listing and secret not in listing
    assert cli.json("whoami", key=secret)["role"] == "ROLE_READ_ONLY"

    rotated = cli.json(*acting, "keys", "rotate", key_id, "--grace", "60s")
    assert rotated["secret"] != secret and rotated["api_key"]["previous_secret_valid_until"]
    assert cli.json("whoami", key=rotated["secret"])["subject"] == key_id

    table = cli.ok(*acting, "keys", "create", "app", "--role", "developer")
    assert "secret: as_" in table  # whole, on a line of its own

    assert cli.json(*acting, "keys", "revoke", key_id)["revoked"] is True
    deadline = time.monotonic() + 10
    while (done := cli.run("whoami", key=rotated["secret"])).returncode == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    exit_reason(done, 3, "UNAUTHENTICATED", "API_KEY_REVOKED")


def test_events_and_streams(cli: Cli, tenant: str) -> None:
    acting = ("--tenant", tenant)
    first = cli.json(
        *acting, "events", "append", "order-1", "--type", "OrderPlaced", "--data", '{"total": 42}', "--expected",
        "no-stream", "--metadata", "corr=c1",
    )  # fmt: skip
    assert first["first_version"] == "1" and first["deduplicated"] is False
    cli.ok(
        *acting, "events", "append", "order-1", "--type", "OrderPaid", "--data", '{"status": "paid"}', "--expected", "1"
    )
    conflict = cli.run(*acting, "events", "append", "order-1", "--type", "X", "--expected", "no-stream")
    exit_reason(conflict, 3, "ABORTED", "WRONG_EXPECTED_VERSION", "actual_version=2")

    events = cli.json(*acting, "events", "read", "order-1")
    assert [e["event_type"] for e in events] == ["OrderPlaced", "OrderPaid"]
    assert [e["version"] for e in events] == ["1", "2"] and events[0]["metadata"] == {"corr": "c1"}
    assert json.loads(base64.b64decode(events[0]["payload"])) == {"total": 42}
    assert cli.json(*acting, "events", "read", "order-1", "--backward", "--limit", "1")[0]["event_type"] == "OrderPaid"
    assert cli.json(*acting, "events", "get", first["event_ids"][0])["stream_id"] == "order-1"
    assert cli.json(*acting, "events", "state", "order-1")["state"] == {"total": 42, "status": "paid"}
    exit_reason(cli.run(*acting, "events", "read", "nope"), 3, "NOT_FOUND", "STREAM_NOT_FOUND")

    streams = cli.json(*acting, "streams", "list", "--prefix", "order-")
    assert [(s["stream_id"], s["version"]) for s in streams] == [("order-1", "2")]

    # tail: --output json is one event per line; it stops after --count events.
    tailed = cli.ok(*acting, "--output", "json", "events", "tail", "--count", "2")
    assert [json.loads(line)["event_type"] for line in tailed.splitlines()] == ["OrderPlaced", "OrderPaid"]
    quiet = cli.run(*acting, "events", "tail", "--from-end", "--timeout", "1")
    assert quiet.returncode == 0 and quiet.stdout == "" and "last position seen" in quiet.stderr


def test_config_diag_and_audit(cli: Cli, tenant: str) -> None:
    services = cli.json("config", "get", "--key", "log.level")
    assert {s["service"] for s in services} == {"storage", "ingest", "query", "admin"}
    assert all(e["key"] == "log.level" for s in services for e in s["entries"])
    reloaded = cli.json("config", "reload")
    assert {r["service"] for r in reloaded} >= {"ingest", "query", "admin"}
    flags = cli.json("config", "flags")
    flag = flags[0]["name"]
    assert cli.json("config", "set-flag", flag, "--on", "--percentage", "25")["source"] == "override"
    assert cli.json("config", "set-flag", flag, "--clear")["source"] != "override"
    exit_reason(cli.run("config", "set-flag", "no-such-flag", "--on"), 3, "INVALID_ARGUMENT")

    overview = cli.json("diag")
    health = {row["service"]: row for row in overview["health"]}
    assert [health[n]["probe"] for n in ("ingest", "query", "admin")] == ["serving"] * 3
    assert health["storage"]["admin_view"] == "serving" and health["storage"]["probe"] == "not probed (internal)"
    assert overview["system"]["version"] and overview["system"]["storage"]["backend"] == "rocksdb"
    latency = cli.json("diag", "latency", "--count", "20")
    assert {r["probe"] for r in latency} == {"ingest health", "query health", "admin health", "admin WhoAmI"}
    assert all(0 < r["p50_ms"] <= r["p99_ms"] <= r["max_ms"] for r in latency)
    assert yaml.safe_load(cli.ok("--output", "yaml", "diag", "info"))["version"] == overview["system"]["version"]

    audit = cli.json("audit", "list", "--tenant-id", tenant, "--since", "1h")
    assert any(a["action"].endswith("/CreateTenant") and a["outcome"] == "OK" for a in audit), audit


def test_refusals_print_the_reason_and_violations(cli: Cli, tenant: str, suite: Suite) -> None:
    weak = cli.run("--tenant", tenant, "users", "create", "bob", "--password-stdin", stdin="short\n")
    exit_reason(weak, 3, "error: ", "(INVALID_ARGUMENT ", "  password: ")
    # A wrong role: a read-only key may not create tenants.
    reader = cli.json("--tenant", tenant, "keys", "create", "reader", "--role", "read-only")["secret"]
    exit_reason(cli.run("tenants", "create", "nope-x1", key=reader), 3, "PERMISSION_DENIED")
    exit_reason(
        cli.run("whoami", env={"ALLSOURCE_API_KEY": ""}),
        3,
        "UNAUTHENTICATED MISSING_CREDENTIALS",
        "hint: no credentials",
    )


def test_usage_errors_and_unavailability(cli: Cli, suite: Suite) -> None:
    exit_reason(cli.run("tenants", "create"), 2, "Missing argument")
    exit_reason(cli.run("--output", "xml", "diag"), 2, "Invalid value")
    exit_reason(cli.run("--profile", "nowhere", "diag"), 2, "no profile 'nowhere'")
    exit_reason(cli.run("keys", "create", "k", "--ttl", "soon"), 2, "not a duration")
    (cli.home / "empty.key").write_text("")
    exit_reason(cli.run("--api-key-file", str(cli.home / "empty.key"), "whoami"), 2, "is empty")
    # Every delete that asks first: without a terminal to ask on, a usage error naming --yes, nothing sent.
    for command in (
        ("backups", "delete", "20261129T000000000Z-abcdef"),
        ("tenants", "delete", "acme"),
        ("streams", "delete", "s-1", "--hard"),
    ):
        exit_reason(cli.run(*command), 2, "needs --yes")

    closed = f"127.0.0.1:{free_port()}"
    cli.write_profiles({"down": {"ingest": closed, "query": closed, "admin": closed, "timeout": 2}})
    exit_reason(cli.run("--profile", "down", "tenants", "list"), 4, "(UNAVAILABLE", "hint: is the suite running?")
    down = cli.run("--profile", "down", "--output", "json", "diag", "health")
    exit_reason(down, 4, "not serving: ingest, query, admin")
    assert {row["probe"] for row in json.loads(down.stdout)} == {"unreachable", "not probed (internal)"}


def test_help_lists_exit_statuses_and_version(cli: Cli) -> None:
    shown = cli.ok("--help")
    for status in ("0 done", "2 usage error", "3 refused by the server", "4 unavailable"):
        assert status in " ".join(shown.split()), status
    for group in "tenants quotas users keys events streams groups config diag audit shell login".split():
        assert f"  {group} " in shown, group
    assert cli.ok("--version") == f"allsource-cli {VERSION}\n"
    # The console script `make run` installs.
    script = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "allsource-cli"), "--version"], capture_output=True, text=True
    )
    assert script.returncode == 0 and script.stdout == f"allsource-cli {VERSION}\n", script


def test_shell_completion_of_commands_and_stream_ids(cli: Cli, tenant: str) -> None:
    cli.ok("--tenant", tenant, "events", "append", "invoice-77", "--type", "Issued")

    def complete(words: str) -> list[str]:
        env = {
            "_ALLSOURCE_CLI_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - 1),
        }
        done = cli.run(env=env)
        assert done.returncode == 0, done.stderr
        return [line.split(",", 1)[1] for line in done.stdout.splitlines()]

    assert complete("allsource-cli ten") == ["tenants"]
    assert "deactivate" in complete("allsource-cli tenants d")
    assert complete(f"allsource-cli --tenant {tenant} events read invoice-") == ["invoice-77"]
    assert cli.ok(env={"_ALLSOURCE_CLI_COMPLETE": "bash_source"}).startswith("_allsource_cli_completion()")


def test_an_api_key_from_a_file_or_the_profile_authenticates(cli: Cli, suite: Suite) -> None:
    """Without ALLSOURCE_API_KEY: the key read from --api-key-file, or from the profile's api_key_file."""
    bare = Cli(cli.home, env={})  # the same profiles, no key in the environment
    exit_reason(bare.run("whoami"), 3, "MISSING_CREDENTIALS", "hint: no credentials")  # none: refused
    key_file = cli.home / "operator.key"
    key_file.write_text(suite.admin_key + "\n")
    shown = bare.json("--api-key-file", str(key_file), "whoami")
    assert shown["kind"] and shown["name"], shown
    bare.write_profiles({"test": suite_profile(suite, api_key_file=str(key_file))}, default="test")
    assert bare.json("whoami") == shown
