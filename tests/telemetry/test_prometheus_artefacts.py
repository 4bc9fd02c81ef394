"""The shipped operations artefacts: deploy/prometheus (scrape config, recording and alerting rules, rule
unit tests), deploy/grafana (provisioning and the dashboard) and their wiring in docker-compose.yml.

- promtool accepts the scrape config and the rules, and `promtool test rules` passes; mutating a rule's
  threshold or its exclusions makes those unit tests fail, so they cannot pass vacuously;
- every metric name in a rule or a dashboard query is one the services export (METRICS below is the
  contract with the services' instrumentation), and every exported metric is on the dashboard or in a
  rule; label names used in queries are ones those metrics carry;
- every alert has a severity and a summary and description, and the required alerts exist;
- on a real Prometheus (Debian's `prometheus`, when installed) scraping stand-in exporters that serve the
  contract's metrics: the shipped config and rules load, every dashboard query runs and returns series,
  and the alerts whose conditions the stand-ins meet go pending;
- the scrape targets are the compose services on their metrics ports, and Grafana and Prometheus mount
  the files their provisioning refers to.

Skipped only where promtool (or, for the live test, prometheus) is not installed.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.config.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULES = PROMETHEUS_DIR / "rules.yml"
RULES_TEST = PROMETHEUS_DIR / "rules_test.yml"
GRAFANA_DIR = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA_DIR / "dashboards" / "allsource.json"
COMPOSE_FILE = ROOT / "docker-compose.yml"

# --- the contract: what the services export on /metrics ------------------------------------------------
# name -> (type, label names). Histograms are exposed as <name>_bucket{le}, <name>_sum and <name>_count.
METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "allsource_rpc_server_calls_total": ("counter", ("service", "method", "code")),
    "allsource_rpc_server_duration_seconds": ("histogram", ("service", "method", "code")),
    "allsource_rpc_server_in_flight": ("gauge", ("service",)),
    "allsource_storage_group_commit_appends": ("histogram", ()),
    "allsource_storage_group_commit_events": ("histogram", ()),
    "allsource_storage_wal_write_seconds": ("histogram", ()),
    "allsource_storage_written_bytes_total": ("counter", ()),
    "allsource_storage_read_bytes_total": ("counter", ()),
    "allsource_rocksdb_live_sst_bytes": ("gauge", ()),
    "allsource_rocksdb_memtable_bytes": ("gauge", ()),
    "allsource_rocksdb_pending_compaction_bytes": ("gauge", ()),
    "allsource_rocksdb_block_cache_usage_bytes": ("gauge", ()),
    "allsource_rocksdb_block_cache_capacity_bytes": ("gauge", ()),
    "allsource_storage_volume_free_bytes": ("gauge", ()),
    "allsource_storage_volume_size_bytes": ("gauge", ()),
    "allsource_tenant_events": ("gauge", ("tenant",)),
    "allsource_tenant_streams": ("gauge", ("tenant",)),
    "allsource_tenant_storage_bytes": ("gauge", ("tenant",)),
    "allsource_tenant_quota_used_ratio": ("gauge", ("tenant", "quota")),
    "allsource_subscriptions_active": ("gauge", ("service",)),
    "allsource_subscription_lag_events": ("gauge", ("service",)),
    "allsource_ingest_coalesced_appends": ("histogram", ()),
    "allsource_auth_failures_total": ("counter", ("service", "reason")),
    "allsource_limit_refusals_total": ("counter", ("service", "reason", "limit")),
    "allsource_quota_warnings_total": ("counter", ("service", "limit")),
    "allsource_limiter_redis_round_trips_total": ("counter", ("service",)),
    "allsource_limiter_redis_failures_total": ("counter", ("service",)),
    "allsource_limiter_degraded_calls_total": ("counter", ("service",)),
    "allsource_trace_spans_exported_total": ("counter", ("service",)),
    "allsource_trace_spans_dropped_total": ("counter", ("service",)),
}
# Prometheus job -> (compose service, metrics port: settings metrics.<service>_port).
JOBS = {
    "allsource-storage": ("storage", 9654),
    "allsource-ingest": ("ingest", 9651),
    "allsource-query": ("query", 9652),
    "allsource-admin": ("admin", 9653),
}
REQUIRED_ALERTS = {
    "AllSourceStorageDown",
    "AllSourceHighErrorRatio",
    "AllSourceHighLatencyP99",
    "AllSourceWalSyncSlow",
    "AllSourceDiskAlmostFull",
    "AllSourceDiskFillingUp",
    "AllSourceSubscriptionLag",
    "AllSourceTenantQuotaNearLimit",
}
STREAMING_METHODS = ("Subscribe", "WatchRecords", "Watch", "BatchAppend", "StreamEvents")


def _series_names() -> set[str]:
    names = {"up"}
    for name, (kind, _) in METRICS.items():
        if kind == "histogram":
            names.update(f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(name)
    return names


SERIES = _series_names()
# Labels a query may group or match on: the metrics' own, the target labels and histogram buckets.
LABELS = {label for _, labels in METRICS.values() for label in labels} | {"job", "instance", "le", "__name__"}


# --- PromQL scanning ------------------------------------------------------------------------------------

_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "by", "without", "on", "ignoring"}
_GROUPING = r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)"


def _strip_strings(expr: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (a scanner, not a parser: enough for the shipped queries)."""
    # Grafana's label_values(metric{...}, label) selects only `metric`.
    expr = re.sub(r"label_values\(\s*([^,()]+?)\s*,\s*\w+\s*\)", r"\1", expr)
    expr = re.sub(r"label_values\(\s*\w+\s*\)", "", expr)
    text = _strip_strings(expr)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery windows ($__rate_interval too)
    text = re.sub(_GROUPING, " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.:$])[A-Za-z_:][\w:]*", text):
        token = match.group(0)
        if token in _KEYWORDS or text[match.end() :].lstrip().startswith("("):
            continue  # an operator keyword, or a function / aggregation call
        names.add(token)
    return names


def label_names(expr: str) -> set[str]:
    """Label names an expression matches on or groups by."""
    text = _strip_strings(expr)
    names: set[str] = set()
    for group in re.findall(_GROUPING, text):
        names.update(n.strip() for n in group.split(",") if n.strip())
    for matchers in re.findall(r"\{([^}]*)\}", text):
        names.update(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
    return names


def test_the_scanner_finds_names_and_skips_functions_labels_and_keywords() -> None:
    expr = (
        'sum by (service, le) (rate(foo_bucket{code=~"A|B", method!~".*/Watch"}[$__rate_interval])) '
        "/ on(job) group_left(instance) bar_total offset 5m > bool 1e3 and ignoring(x) rec:ord:rate5m "
        "unless predict_linear(baz[1h], 4 * 3600) < 0"
    )
    assert metric_names(expr) == {"foo_bucket", "bar_total", "rec:ord:rate5m", "baz"}
    assert label_names(expr) == {"service", "le", "code", "method", "job", "instance", "x"}
    assert metric_names('label_values(qux_total{service=~"$service"}, method)') == {"qux_total"}
    assert metric_names("label_values(service)") == set()


# --- promtool -------------------------------------------------------------------------------------------


def _promtool(*args: str, cwd: Path = PROMETHEUS_DIR) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def _ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, f"{' '.join(map(str, proc.args))} failed:\n{proc.stdout}\n{proc.stderr}"


def test_promtool_accepts_the_scrape_config() -> None:
    # Also loads rules.yml through the config's relative rule_files entry.
    proc = _promtool("check", "config", str(PROMETHEUS_CONFIG))
    _ok(proc)
    assert "1 rule files found" in proc.stdout + proc.stderr


def test_promtool_accepts_the_rules() -> None:
    _ok(_promtool("check", "rules", str(RULES)))


def test_promtool_rule_unit_tests_pass() -> None:
    _ok(_promtool("test", "rules", str(RULES_TEST)))


@pytest.mark.parametrize(
    ("old", "new", "caught"),
    [
        # A change that keeps the behaviour (one more excluded method) passes: the copy itself is sound.
        pytest.param("|StreamEvents)", "|StreamEvents|Nothing)", False, id="control-no-op"),
        pytest.param(
            '"allsource-storage"} == 0\n        for: 1m',
            '"allsource-storage"} == 0\n        for: 9m',
            True,
            id="storage-down",
        ),
        pytest.param(
            "calls_total[5m]))\n          > 0.05", "calls_total[5m]))\n          > 0.5", True, id="error-ratio"
        ),
        pytest.param(
            "seconds_bucket[5m])))\n          > 0.05", "seconds_bucket[5m])))\n          > 0.2", True, id="wal-sync"
        ),
        pytest.param(
            'code=~"UNKNOWN|INTERNAL|UNAVAILABLE|DATA_LOSS|DEADLINE_EXCEEDED"', 'code!="OK"', True, id="error-codes"
        ),
        pytest.param('method!~".*/(Subscribe|', 'method!~".*/(NotSubscribe|', True, id="latency-streams"),
        pytest.param("          > 0.5\n", "          > 1\n", True, id="latency-threshold"),
        pytest.param(
            "allsource_tenant_quota_used_ratio) > 0.9", "allsource_tenant_quota_used_ratio) > 0.96", True, id="quota"
        ),
        pytest.param("4 * 3600) < 0", "3600) < 0", True, id="disk-prediction"),
        pytest.param("_size_bytes < 0.10", "_size_bytes < 0.01", True, id="disk-free"),
        pytest.param("> 10000", "> 30000", True, id="subscription-lag"),
    ],
)
def test_the_rule_unit_tests_catch_a_changed_rule(tmp_path: Path, old: str, new: str, caught: bool) -> None:
    """Negative control: rules_test.yml fails when an alert's threshold, window or exclusions change."""
    head, group, alerts = RULES.read_text().partition("  - name: allsource-alerts\n")
    assert alerts.count(old) == 1, f"mutation target {old!r} is not in exactly one alert"
    (tmp_path / "rules.yml").write_text(head + group + alerts.replace(old, new))
    shutil.copy(RULES_TEST, tmp_path / "rules_test.yml")
    proc = _promtool("test", "rules", "rules_test.yml", cwd=tmp_path)
    if caught:
        assert proc.returncode != 0, f"rules_test.yml still passes with {old!r} -> {new!r}"
    else:
        _ok(proc)


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """Every dashboard query, Grafana variables filled in, parses as a rule expression."""
    rules = [{"record": f"dashboard:query_{i}:check", "expr": _fill(expr)} for i, expr in enumerate(_dashboard_exprs())]
    (tmp_path / "dashboard.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    _ok(_promtool("check", "rules", "dashboard.yml", cwd=tmp_path))


# --- rules ----------------------------------------------------------------------------------------------


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_every_alert_has_severity_summary_and_description() -> None:
    alerts = [r for r in _rules() if "alert" in r]
    assert REQUIRED_ALERTS <= {a["alert"] for a in alerts}, REQUIRED_ALERTS - {a["alert"] for a in alerts}
    for alert in alerts:
        assert alert.get("labels", {}).get("severity") in {"critical", "warning", "info"}, alert["alert"]
        annotations = alert.get("annotations", {})
        assert annotations.get("summary") and annotations.get("description"), alert["alert"]
    tested = set(re.findall(r"alertname: (\w+)", RULES_TEST.read_text()))
    assert {a["alert"] for a in alerts} <= tested, "alerts without a unit test in rules_test.yml"


def test_the_alert_thresholds_are_the_documented_ones() -> None:
    alerts = {r["alert"]: r for r in _rules() if "alert" in r}
    flat = {name: " ".join(rule["expr"].split()) for name, rule in alerts.items()}
    assert (
        flat["AllSourceStorageDown"] == 'up{job="allsource-storage"} == 0'
        and alerts["AllSourceStorageDown"]["for"] == "1m"
    )
    assert flat["AllSourceHighErrorRatio"].endswith("> 0.05") and alerts["AllSourceHighErrorRatio"]["for"] == "5m"
    for code in ("UNKNOWN", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "DEADLINE_EXCEEDED"):
        assert code in flat["AllSourceHighErrorRatio"]
    latency = flat["AllSourceHighLatencyP99"]
    assert latency.startswith("histogram_quantile(0.99,") and latency.endswith("> 0.5")
    excluded = re.search(r'method!~"\.\*/\(([^)]*)\)"', latency)
    assert excluded and set(excluded.group(1).split("|")) == set(STREAMING_METHODS)
    assert alerts["AllSourceHighLatencyP99"]["for"] == "10m"
    assert flat["AllSourceWalSyncSlow"].endswith("> 0.05")
    assert "predict_linear(allsource_storage_volume_free_bytes[1h], 4 * 3600) < 0" in flat["AllSourceDiskFillingUp"]
    assert flat["AllSourceDiskAlmostFull"].endswith("< 0.10")
    assert flat["AllSourceSubscriptionLag"].endswith("> 10000") and alerts["AllSourceSubscriptionLag"]["for"] == "10m"
    assert flat["AllSourceTenantQuotaNearLimit"].endswith("allsource_tenant_quota_used_ratio) > 0.9")


def test_rules_use_only_exported_metrics_and_labels() -> None:
    rules = _rules()
    recorded = {r["record"] for r in rules if "record" in r}
    for rule in rules:
        unknown = metric_names(rule["expr"]) - SERIES - recorded
        assert not unknown, f"{rule.get('alert') or rule.get('record')}: not exported: {sorted(unknown)}"
        labels = label_names(rule["expr"]) - LABELS
        assert not labels, f"{rule.get('alert') or rule.get('record')}: unknown labels {sorted(labels)}"
    for record in recorded:  # the level:metric:operations convention
        assert re.fullmatch(r"[a-z_]+:allsource_[a-z0-9_]+:[a-z0-9_]+", record), record


# --- the dashboard --------------------------------------------------------------------------------------


def _dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def _panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # collapsed rows


def _dashboard_exprs() -> list[str]:
    return [t["expr"] for p in _panels(_dashboard()) for t in p.get("targets", [])]


def _variable_queries() -> list[str]:
    out = []
    for variable in _dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            out.append(query["query"] if isinstance(query, Mapping) else query)
    return out


GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
    "$service": ".*",
    "$method": ".*",
}


def _fill(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unfilled Grafana variable in {expr}"
    return expr


def test_dashboard_has_red_and_storage_panels_on_exported_metrics_only() -> None:
    dashboard = _dashboard()
    panels = list(_panels(dashboard))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for panel in panels:
        x, w = panel["gridPos"]["x"], panel["gridPos"]["w"]
        assert 0 <= x and x + w <= 24, f"{panel['title']}: outside the 24-column grid"
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}", f"{panel['title']}: fixed data source"
            assert target["expr"].strip(), f"{panel['title']}: empty query"
    exprs = _dashboard_exprs() + _variable_queries()
    used: set[str] = set()
    for expr in exprs:
        names = metric_names(expr)
        assert names, f"no metric in {expr}"
        assert not names - SERIES, f"not exported: {sorted(names - SERIES)} in {expr}"
        assert not label_names(expr) - LABELS, f"unknown labels {sorted(label_names(expr) - LABELS)} in {expr}"
        used |= names
    legends = [t.get("legendFormat", "") for p in panels for t in p.get("targets", [])]
    for legend in legends:
        assert set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend)) <= LABELS, legend

    # RED: rate, errors and p50/p99 duration per service and method.
    flat = [" ".join(e.split()) for e in exprs]
    assert any("sum by (service, method) (rate(allsource_rpc_server_calls_total" in e for e in flat)
    assert any("DEADLINE_EXCEEDED" in e and "/" in e for e in flat), "no error ratio panel"
    for q in ("0.50", "0.99"):
        assert any(e.startswith(f"histogram_quantile({q}, sum by (service, method, le)") for e in flat), q
    # Every exported metric is on the dashboard or in a rule.
    rule_names = {n for r in _rules() for n in metric_names(r["expr"])}
    covered = {n.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count") for n in used | rule_names}
    assert set(METRICS) <= covered, f"exported but shown nowhere: {sorted(set(METRICS) - covered)}"


def test_an_unknown_metric_on_the_dashboard_would_be_caught() -> None:
    assert metric_names('sum(rate(allsource_rpc_calls_total{service=~"$service"}[$__rate_interval]))') - SERIES
    assert metric_names("allsource_rpc_server_duration_seconds") - SERIES  # a histogram's bare name


# --- wiring: compose, scrape targets, Grafana provisioning -----------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(doc, dict)
    return doc


def _bind_mounts(service: Mapping[str, Any]) -> dict[str, Path]:
    """target -> source (resolved against the repository) of a service's bind mounts."""
    out = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, Mapping) and volume.get("type") == "bind":
            out[volume["target"]] = (ROOT / volume["source"]).resolve()
        elif isinstance(volume, str) and volume.startswith((".", "/")):
            source, target = volume.split(":")[:2]
            out[target] = (ROOT / source).resolve()
    return out


def _container_path(mounts: Mapping[str, Path], path: str) -> Path:
    """The repository file that appears at `path` inside the container."""
    for target, source in mounts.items():
        if path == target or path.startswith(target.rstrip("/") + "/"):
            return source / path[len(target) :].lstrip("/")
    raise AssertionError(f"{path} is not mounted from the repository; mounts: {dict(mounts)}")


def test_prometheus_scrapes_each_service_on_its_metrics_port(compose: dict[str, Any]) -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    assert config["global"]["scrape_interval"] == "15s"
    assert config["rule_files"] == ["rules.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    services = compose["services"]
    for job, (service, port) in JOBS.items():
        targets = [t for sc in jobs[job]["static_configs"] for t in sc["targets"]]
        assert targets == [f"{service}:{port}"], f"{job}: {targets}"
        assert jobs[job].get("metrics_path", "/metrics") == "/metrics"
        assert str(port) in [str(p) for p in services[service].get("expose", [])], f"{service}: {port} not exposed"
        env = services[service]["environment"]
        assert env.get("ALLSOURCE_METRICS__HOST") == "0.0.0.0", f"{service}: metrics bound to loopback"
        assert env.get("ALLSOURCE_TRACING__EXPORTER") == "otlp" and env.get("ALLSOURCE_TRACING__OTLP_ENDPOINT")
    # Once the settings model has the metrics ports, they must be the ones scraped.
    metrics = getattr(Settings(), "metrics", None)
    if metrics is not None and hasattr(metrics, "storage_port"):
        for service, port in JOBS.values():
            assert getattr(metrics, f"{service}_port") == port, f"metrics.{service}_port is not {port}"


def test_compose_runs_prometheus_grafana_and_jaeger_on_the_shipped_files(compose: dict[str, Any]) -> None:
    services = compose["services"]
    prometheus = services["prometheus"]
    assert str(prometheus["image"]).startswith("prom/prometheus:")
    flags = dict(arg.split("=", 1) for arg in prometheus["command"] if "=" in arg)
    mounts = _bind_mounts(prometheus)
    assert _container_path(mounts, flags["--config.file"]) == PROMETHEUS_CONFIG
    assert _container_path(mounts, str(Path(flags["--config.file"]).parent / "rules.yml")) == RULES

    grafana = services["grafana"]
    assert str(grafana["image"]).startswith("grafana/grafana:")
    gmounts = _bind_mounts(grafana)
    provisioning = _container_path(gmounts, "/etc/grafana/provisioning")
    sources = [
        ds
        for f in sorted((provisioning / "datasources").glob("*.y*ml"))
        for ds in yaml.safe_load(f.read_text())["datasources"]
    ]
    prom_sources = [ds for ds in sources if ds["type"] == "prometheus"]
    assert [ds["url"] for ds in prom_sources] == ["http://prometheus:9090"] and prom_sources[0].get("isDefault")
    providers = [
        p
        for f in sorted((provisioning / "dashboards").glob("*.y*ml"))
        for p in yaml.safe_load(f.read_text())["providers"]
    ]
    assert providers, "no dashboard provider"
    for provider in providers:
        folder = _container_path(gmounts, provider["options"]["path"])
        assert (folder / DASHBOARD.name).resolve() == DASHBOARD
    env = grafana.get("environment", {})
    assert env.get("GF_AUTH_ANONYMOUS_ENABLED") == "true" and env.get("GF_AUTH_ANONYMOUS_ORG_ROLE") == "Viewer"
    home = env.get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    assert home is None or _container_path(gmounts, home) == DASHBOARD

    jaeger = services["jaeger"]
    assert str(jaeger["image"]).startswith("jaegertracing/all-in-one:")
    assert str(jaeger.get("environment", {}).get("COLLECTOR_OTLP_ENABLED")).lower() == "true"
    assert any(str(p).endswith(":16686") for p in jaeger.get("ports", []))
    jaeger_sources = [ds for ds in sources if ds["type"] == "jaeger"]
    assert all(ds["url"] == "http://jaeger:16686" for ds in jaeger_sources)
    for name in ("prometheus", "grafana", "jaeger"):
        for port in services[name].get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port} is not loopback-only"


# --- a real Prometheus ----------------------------------------------------------------------------------

# Label values the stand-in exporters use; chosen so most alert conditions hold (see the live test).
_VALUES = {
    "method": ("/allsource.v1.{Svc}Service/Append", "/allsource.v1.{Svc}Service/Subscribe"),
    "code": ("OK", "INTERNAL"),  # half the calls fail with a server error
    "tenant": ("acme",),
    "quota": ("max_storage_bytes",),
    "reason": ("test",),
    "limit": ("requests_per_second",),
}
_GAUGES = {
    "allsource_tenant_quota_used_ratio": 0.95,
    "allsource_subscription_lag_events": 20000,
    "allsource_storage_volume_free_bytes": 5e9,
    "allsource_storage_volume_size_bytes": 100e9,
}
_BUCKETS = (0.0001, 0.001, 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 100)
_OBSERVED = {  # every observation of the histogram falls at this value
    "allsource_rpc_server_duration_seconds": 0.8,
    "allsource_storage_wal_write_seconds": 0.08,
}


def exposition(service: str, scrape: int) -> str:
    """What a stand-in for `service` serves at its scrape number `scrape`: every contract metric."""
    lines = []
    for name, (kind, labels) in METRICS.items():
        lines.append(f"# TYPE {name} {kind}")
        choices = [
            (service,) if label == "service" else tuple(v.format(Svc=service.title()) for v in _VALUES[label])
            for label in labels
        ]
        for combo in itertools.product(*choices):
            pairs = [f'{label}="{value}"' for label, value in zip(labels, combo, strict=True)]

            def sample(series: str, value: float, *extra: str, pairs: list[str] = pairs) -> str:
                labelset = ",".join([*pairs, *extra])
                return f"{series}{{{labelset}}} {value}" if labelset else f"{series} {value}"

            if kind == "counter":
                lines.append(sample(name, scrape * 10))
            elif kind == "gauge":
                lines.append(sample(name, _GAUGES.get(name, 1000)))
            else:
                count, at = scrape * 10, _OBSERVED.get(name, 5)
                for le in _BUCKETS:
                    lines.append(sample(f"{name}_bucket", count if le >= at else 0, f'le="{le}"'))
                lines.append(sample(f"{name}_bucket", count, 'le="+Inf"'))
                lines.append(sample(f"{name}_sum", count * at))
                lines.append(sample(f"{name}_count", count))
    return "\n".join(lines) + "\n"


class _MetricsHandler(BaseHTTPRequestHandler):
    server: _StandIn

    def do_GET(self) -> None:
        if self.path != "/metrics":
            self.send_error(404)
            return
        body = self.server.scrape().encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _StandIn(ThreadingHTTPServer):
    """Serves exposition(service, n) on /metrics, n counting the scrapes."""

    daemon_threads = True

    def __init__(self, service: str) -> None:
        self.service, self._scrapes, self._lock = service, 0, threading.Lock()
        super().__init__(("127.0.0.1", 0), _MetricsHandler)

    def scrape(self) -> str:
        with self._lock:
            self._scrapes += 1
            return exposition(self.service, self._scrapes)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=10) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.get("/api/v1/query", query=expr)
        return list(data["result"])


@pytest.fixture(scope="module")
def live_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Prometheus]:
    """The shipped config and rules on a real Prometheus, scraping one stand-in exporter per job."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (Debian: apt-get install prometheus)")
    folder = tmp_path_factory.mktemp("prometheus")
    stand_ins = {job: _StandIn(service) for job, (service, _) in JOBS.items()}
    for server in stand_ins.values():
        threading.Thread(target=server.serve_forever, daemon=True).start()
    port = _free_port()
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    for job in config["scrape_configs"]:
        target = (
            f"127.0.0.1:{stand_ins[job['job_name']].server_address[1]}"
            if job["job_name"] in stand_ins
            else f"127.0.0.1:{port}"
        )
        job["static_configs"] = [{"targets": [target]}]
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    shutil.copy(RULES, folder / "rules.yml")  # the config's relative rule_files entry, as shipped
    log = (folder / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    prometheus = _Prometheus(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"prometheus exited:\n{(folder / 'prometheus.log').read_text()}"
            try:
                # Every stand-in up, and scraped often enough for rates over the dashboard's window.
                scraped = prometheus.query('min by (job) (count_over_time(up{job=~"allsource-.*"}[1m])) >= 3')
                up = prometheus.query('min by (job) (up{job=~"allsource-.*"}) == 1')
                if len(scraped) == len(up) == len(JOBS):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"no scrapes in 30s:\n{(folder / 'prometheus.log').read_text()}"
            time.sleep(0.25)
        yield prometheus
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        for server in stand_ins.values():
            server.shutdown()
            server.server_close()


def test_real_prometheus_loads_the_rules_and_runs_every_dashboard_query(live_prometheus: _Prometheus) -> None:
    groups = live_prometheus.get("/api/v1/rules")["groups"]
    loaded = {rule["name"]: rule for group in groups for rule in group["rules"]}
    expected = {r.get("alert") or r["record"] for r in _rules()}
    assert set(loaded) == expected
    for name, rule in loaded.items():
        assert rule["health"] != "err", f"{name}: {rule.get('lastError')}"

    empty = []
    for expr in _dashboard_exprs():
        if not live_prometheus.query(_fill(expr)):
            empty.append(expr)
    assert not empty, "dashboard queries with no series:\n" + "\n".join(empty)
    for query in _variable_queries():
        metric = re.sub(r"label_values\(\s*([^,]+?)\s*,\s*(\w+)\s*\)", r"\1", _fill(query))
        assert live_prometheus.query(metric), query

    assert live_prometheus.query('service:allsource_rpc_server_error_ratio:rate5m{service="ingest"} == 0.5')


def test_real_prometheus_raises_the_alerts_whose_conditions_hold(live_prometheus: _Prometheus) -> None:
    # The stand-ins serve: half the calls INTERNAL, every call 0.8s, WAL syncs of 80ms, 5% of the volume
    # free (and steady), a subscription 20000 events behind, a tenant at 95% of a quota, degraded limiter
    # calls and dropped spans, and every target up.
    expected = {
        "AllSourceHighErrorRatio",
        "AllSourceHighLatencyP99",
        "AllSourceWalSyncSlow",
        "AllSourceDiskAlmostFull",
        "AllSourceSubscriptionLag",
        "AllSourceTenantQuotaNearLimit",
        "AllSourceRateLimiterDegraded",
        "AllSourceTraceSpansDropped",
    }
    deadline = time.monotonic() + 20
    while True:
        alerts = live_prometheus.get("/api/v1/alerts")["alerts"]
        raised = {a["labels"]["alertname"] for a in alerts if a["state"] in ("pending", "firing")}
        if expected <= raised or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert raised == expected, f"missing {sorted(expected - raised)}, unexpected {sorted(raised - expected)}"
    latency = {a["labels"]["method"] for a in alerts if a["labels"]["alertname"] == "AllSourceHighLatencyP99"}
    assert latency and all(m.endswith("/Append") for m in latency), f"streaming methods alerted: {latency}"
