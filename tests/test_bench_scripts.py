"""The benchmark scripts still run against the current suite (small sizes: this checks the scripts, not speed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(script: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_the_suite_benchmark_runs_and_reports_every_figure_beside_its_baseline() -> None:
    out = run("run.py")
    for line in ("raw rocksdict WriteBatch", "bare gRPC unary echo", "x raw", "x echo", "ReadStream(100)", "Subscribe"):
        assert line in out, out
    results = json.loads((ROOT / "bench" / "results" / "quick.json").read_text())
    assert results["bulk_events_per_s"]["median"] > 0 and results["single_appends_per_s"]["median"] > 0
    assert results["stream_events_count"] > 0


def test_the_authentication_cost_benchmark_runs() -> None:
    out = run("auth_cost.py")
    assert "JWT" in out and "API key" in out, out


def test_the_rate_limit_benchmark_runs_and_reports_each_backend_beside_limits_off() -> None:
    out = run("limits.py")
    for line in ("limits off", "in memory", "redis", "ratio to limits off", "admission stage's own cost"):
        assert line in out, out


def test_the_telemetry_benchmark_runs_and_reports_each_setting_beside_off() -> None:
    out = run("telemetry.py")
    for line in ("production preset: tracing.sample_ratio", "production", "all sampled", "ratio to off", "own cost"):
        assert line in out, out


def test_the_consumer_group_benchmark_runs_and_reports_its_ratio_to_subscribe() -> None:
    out = run("groups.py")
    for line in ("Subscribe", "consumer group", "ratio to Subscribe", "append-to-ack latency"):
        assert line in out, out


def test_the_backup_benchmark_runs_and_reports_its_ratio_to_zstd() -> None:
    out = run("backup.py")
    for line in ("full backup", "zstd -T0 baseline", "ratio to zstd -T0", "incremental (10K)", "restore"):
        assert line in out, out


def test_the_read_path_benchmark_runs_and_reports_warm_and_cold_beside_the_echo() -> None:
    out = run("reads.py")
    for line in ("echo returning the same", "warm (read cache on)", "cold (cache off)", "x echo", "replica caches"):
        assert line in out, out
    results = json.loads((ROOT / "bench" / "results" / "reads-quick.json").read_text())
    assert results["warm"]["p50_ms"] > 0 and results["cold_vs_echo"]["rate"] > 0
    # The PostgreSQL baseline (pyeventsourcing) in the same run; --quick skips it with a note when the
    # machine has no PostgreSQL to reach.
    assert "pyeventsourcing on PostgreSQL" in out, out
    if "PostgreSQL baseline skipped" not in out:
        assert results["postgres"]["p50_ms"] > 0 and results["warm_vs_postgres_p50"] > 0


def test_the_list_events_benchmark_runs_and_reports_both_plans_on_the_same_data() -> None:
    out = run("list_events.py")
    for line in ("before: event_type (every entry's time checked)", "after: event_type+time", "explain"):
        assert line in out, out
    results = json.loads((ROOT / "bench" / "results" / "list-events-quick.json").read_text())
    assert results["matching_events"] > 0 and results["suite_after"]["events"] == results["matching_events"]
    # The time narrowing examines fewer keys than the whole event-type index (every fifth event).
    assert results["after"]["keys_examined"] < results["before"]["keys_examined"] == results["events"] // 5
    assert results["after"]["p50_ms"] > 0 and results["before"]["p50_ms"] > 0


def test_the_s3_backup_benchmark_runs_and_reports_each_figure() -> None:
    out = run("backup_s3.py")
    for line in ("full backup", "incremental (1K)", "ListBackups", "restore (whole chain)", "VerifyBackup"):
        assert line in out, out


def test_the_many_streams_backup_benchmark_runs_and_reports_each_incremental_beside_the_full() -> None:
    out = run("backup_streams.py")
    for line in ("full backup of the suite", "incremental 1 (10K events", "nothing new", "at storage", "% of the full"):
        assert line in out, out
