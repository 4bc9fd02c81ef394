"""Configuration reload and feature flags across the four running processes."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import grpc
import pytest
from allsource.v1 import admin_pb2, admin_pb2_grpc, config_pb2, event_pb2, query_pb2, query_pb2_grpc
from allsource_client import InvalidRequest, event

from shared.config.flags import BUCKETS, bucket
from tests.harness import Suite

SERVICES = {"storage", "ingest", "query", "admin"}


def config_of(admin: admin_pb2_grpc.AdminServiceStub) -> dict[str, dict[str, config_pb2.ConfigEntry]]:
    reply = admin.GetConfig(admin_pb2.GetConfigRequest(), timeout=10)
    assert {s.service for s in reply.services} == SERVICES
    assert all(not s.error for s in reply.services), [s.error for s in reply.services]
    return {s.service: {e.key: e for e in s.entries} for s in reply.services}


def page_size_seen(suite: Suite, stream: str) -> int:
    query = query_pb2_grpc.QueryServiceStub(suite.channel("query"))
    return len(query.ReadStream(query_pb2.ReadStreamRequest(stream_id=stream)).events)


def test_reload_reaches_every_service_applies_reloadable_keys_and_reports_the_rest(
    fresh_suite: Suite, tmp_path: Path
) -> None:
    cfg = tmp_path / "allsource.toml"
    cfg.write_text('[query]\ndefault_page_size = 5\n[log]\nlevel = "INFO"\n')
    suite = fresh_suite
    suite.extra_env = {"ALLSOURCE_CONFIG": str(cfg)}
    suite.start_all()
    admin = admin_pb2_grpc.AdminServiceStub(suite.channel("admin"))
    with suite.client() as client:
        client.append("s", [event("E", {"i": i}) for i in range(20)])
    assert page_size_seen(suite, "s") == 5
    before = config_of(admin)
    for service in SERVICES:
        entry = before[service]["query.default_page_size"]
        assert (entry.value, entry.source, entry.reloadable) == ("5", f"file {cfg}", True)
        assert before[service]["storage.port"].reloadable is False

    cfg.write_text('[query]\ndefault_page_size = 7\n[log]\nlevel = "DEBUG"\n[grpc]\nmax_message_bytes = 8388608\n')
    reply = admin.ReloadConfig(admin_pb2.ReloadConfigRequest(), timeout=30)
    assert {r.service for r in reply.results} == SERVICES
    for result in reply.results:
        assert result.status == config_pb2.RELOAD_STATUS_APPLIED, result
        assert {"query.default_page_size", "log.level"} <= set(result.applied_keys)
        assert list(result.restart_required_keys) == ["grpc.max_message_bytes"]
    assert page_size_seen(suite, "s") == 7  # applied without a restart
    after = config_of(admin)
    for service in SERVICES:
        assert after[service]["log.level"].value == '"DEBUG"'
        limit = after[service]["grpc.max_message_bytes"]
        assert (limit.value, limit.pending_restart_value) == (str(16 * 1024 * 1024), "8388608")  # not half-applied
    assert '"msg":"configuration reloaded"' in suite.log("storage")


def test_a_reload_that_fails_validation_keeps_the_configuration_in_force(fresh_suite: Suite, tmp_path: Path) -> None:
    cfg = tmp_path / "allsource.toml"
    cfg.write_text("[query]\ndefault_page_size = 5\n")
    suite = fresh_suite
    suite.extra_env = {"ALLSOURCE_CONFIG": str(cfg)}
    suite.start_all()
    admin = admin_pb2_grpc.AdminServiceStub(suite.channel("admin"))
    with suite.client() as client:
        client.append("s", [event("E") for _ in range(10)])
    cfg.write_text("[query]\ndefault_page_size = 9\nnonsense = 1\n")
    reply = admin.ReloadConfig(admin_pb2.ReloadConfigRequest(), timeout=30)
    for result in reply.results:
        assert result.status == config_pb2.RELOAD_STATUS_FAILED
        assert f"query.nonsense: unknown key (from file {cfg})" in result.error
        assert not result.applied_keys
    cfg.write_text("[query]\ndefault_page_size = 2000\n")  # above max_page_size: a cross-field failure
    for result in admin.ReloadConfig(admin_pb2.ReloadConfigRequest(), timeout=30).results:
        assert result.status == config_pb2.RELOAD_STATUS_FAILED and "default_page_size" in result.error
    assert page_size_seen(suite, "s") == 5
    assert all(c["query.default_page_size"].value == "5" for c in config_of(admin).values())
    assert "configuration reload failed" in suite.log("query")


def test_sighup_reloads_one_process(fresh_suite: Suite, tmp_path: Path) -> None:
    cfg = tmp_path / "allsource.toml"
    cfg.write_text("[query]\ndefault_page_size = 4\n")
    suite = fresh_suite
    suite.extra_env = {"ALLSOURCE_CONFIG": str(cfg)}
    suite.start_all()
    with suite.client() as client:
        client.append("s", [event("E") for _ in range(10)])
    cfg.write_text("[query]\ndefault_page_size = 3\n")
    suite.signal("query", signal.SIGHUP)
    suite.wait_until(lambda: page_size_seen(suite, "s") == 3)
    config = config_of(admin_pb2_grpc.AdminServiceStub(suite.channel("admin")))
    assert config["query"]["query.default_page_size"].value == "3"
    assert config["ingest"]["query.default_page_size"].value == "4"  # only the signalled process reloaded


def test_feature_flag_overrides_reach_every_service_and_survive_restarts(fresh_suite: Suite) -> None:
    suite = fresh_suite.start_all()
    admin = admin_pb2_grpc.AdminServiceStub(suite.channel("admin"))
    client = suite.client()
    not_json = [event_pb2.EventData(event_type="E", payload=b"{not json")]
    with pytest.raises(InvalidRequest):
        client.append("s", not_json)

    flags = {f.name: f for f in admin.ListFeatureFlags(admin_pb2.ListFeatureFlagsRequest()).flags}
    assert flags["json_payload_validation"].source == "default" and flags["json_payload_validation"].enabled
    assert flags["json_payload_validation"].bucket_by == config_pb2.BUCKET_BY_TENANT

    reply = admin.SetFeatureFlag(admin_pb2.SetFeatureFlagRequest(name="json_payload_validation", enabled=False))
    assert list(reply.unreached_services) == []
    assert (reply.flag.source, reply.flag.enabled) == ("override", False) and reply.flag.updated_by
    assert client.append("s", not_json).first_version == 1  # ingest applied it at once

    suite.stop("ingest")
    suite.start("ingest")
    restarted = suite.client()
    assert restarted.append("s", not_json).first_version == 2  # the override is kept by storage

    # A percentage rollout by tenant: the default tenant is in or out by its bucket, the same every time.
    admin.SetFeatureFlag(
        admin_pb2.SetFeatureFlagRequest(
            name="json_payload_validation", enabled=True, percentage=50, bucket_by=config_pb2.BUCKET_BY_TENANT
        )
    )
    validated = bucket("json_payload_validation", "default") < BUCKETS // 2
    for _ in range(3):
        if validated:
            with pytest.raises(InvalidRequest):
                restarted.append("s", not_json)
        else:
            restarted.append("s", not_json)

    cleared = admin.SetFeatureFlag(admin_pb2.SetFeatureFlagRequest(name="json_payload_validation", clear=True))
    assert cleared.flag.source == "default"
    with pytest.raises(InvalidRequest):
        restarted.append("s", not_json)
    assert '"msg":"feature flag set"' in suite.log("admin")
    assert '"msg":"feature flag changed"' in suite.log("ingest")

    with pytest.raises(grpc.RpcError) as err:
        admin.SetFeatureFlag(admin_pb2.SetFeatureFlagRequest(name="no_such_flag", enabled=True))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    client.close()
    restarted.close()


def test_snapshot_flag_controls_entity_state_snapshots(fresh_suite: Suite) -> None:
    suite = fresh_suite.start_all()
    admin = admin_pb2_grpc.AdminServiceStub(suite.channel("admin"))
    query = query_pb2_grpc.QueryServiceStub(suite.channel("query"))
    with suite.client() as client:
        client.append("off", [event("Counted", {"n": i}) for i in range(150)])
        client.append("on", [event("Counted", {"n": i}) for i in range(150)])
    admin.SetFeatureFlag(admin_pb2.SetFeatureFlagRequest(name="entity_state_snapshots", enabled=False))
    for _ in range(2):
        reply = query.GetEntityState(query_pb2.GetEntityStateRequest(stream_id="off"))
        assert (reply.snapshot_version, reply.events_folded) == (0, 150)
    admin.SetFeatureFlag(admin_pb2.SetFeatureFlagRequest(name="entity_state_snapshots", clear=True))
    query.GetEntityState(query_pb2.GetEntityStateRequest(stream_id="on"))
    warm = query.GetEntityState(query_pb2.GetEntityStateRequest(stream_id="on"))
    assert (warm.snapshot_version, warm.events_folded) == (150, 0)
    assert json.loads(warm.state) == {"n": 149}
