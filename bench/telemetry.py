"""What tracing and metrics cost: single appends with 32 clients, side by side in one run.

    .venv/bin/python bench/telemetry.py [--rounds 5] [--calls 6000] [--quick]

Three suites run at once on this machine, rounds interleaved so that the machine's load affects all
alike:
- "off": tracing.enabled = false and metrics.enabled = false (the baseline);
- "production": the production preset's tracing (OTLP export at its sample_ratio, read from
  config/production.toml) and metrics on;
- "all sampled": every trace recorded and exported (ratio 1.0, development's default), metrics on.
Spans go to an OTLP sink in a process of its own that answers every export without decoding it (a
collector's cost is the collector's machine's, not the suite's). Every client call starts a new trace
(no traceparent), so the ratio decides, as for clients that do not trace.

Then the per-call cost of the telemetry stage itself in this process (enter + exit of one call, p50 and
p99): metrics only, metrics and an unsampled span, metrics and a recorded span (with a child span, as
the chain's custom spans add).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import run as bench  # noqa: E402

from shared.config.settings import TracingSettings  # noqa: E402
from shared.rpc.chain import OK, Call, MethodInfo  # noqa: E402
from shared.stages.telemetry import Telemetry  # noqa: E402
from shared.telemetry import tracing  # noqa: E402
from tests.harness import Suite, free_port  # noqa: E402

APPEND = "/allsource.v1.IngestService/AppendEvents"


def sink(port: int) -> None:
    """An OTLP/gRPC trace endpoint that accepts every export without decoding it."""
    from concurrent import futures

    import grpc

    def export(request: bytes, context: object) -> bytes:
        return b""  # an empty ExportTraceServiceResponse

    handler = grpc.method_handlers_generic_handler(
        "opentelemetry.proto.collector.trace.v1.TraceService",
        {"Export": grpc.unary_unary_rpc_method_handler(export)},
    )
    server = grpc.server(futures.ThreadPoolExecutor(4), handlers=(handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stage_cost(calls: int) -> dict[str, tuple[float, float]]:
    """The telemetry stage's own cost per call (enter + exit), microseconds, p50 and p99."""
    from opentelemetry import context as otel_context

    from shared.telemetry.spans import Exporter

    class Null(Exporter):
        def send(self, spans: list) -> None:  # type: ignore[type-arg]
            pass

    method = MethodInfo(APPEND, None)

    def measure(stage: Telemetry, metadata: tuple[tuple[str, str], ...], child: bool) -> tuple[float, float]:
        stage.applies(method)
        samples = []
        for _ in range(calls):
            token = otel_context.attach(otel_context.Context())
            c = Call(method, SimpleNamespace(), None, metadata, "", time.perf_counter())  # type: ignore[arg-type]
            started = time.perf_counter()
            stage.enter(c)
            if child:
                with tracing.span("validation"):
                    pass
            stage.exit(c, OK)
            samples.append((time.perf_counter() - started) * 1e6)
            otel_context.detach(token)
        samples.sort()
        return samples[len(samples) // 2], samples[int(len(samples) * 0.99)]

    unsampled = (("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"),)
    out = {"metrics only": measure(Telemetry("bench", propagate=False, metrics=True), (), False)}
    tracing.install(Null(resource={}, scope=("bench", "0"), timeout_s=1.0), TracingSettings())
    tracing.configure(TracingSettings())
    out["+ span, not sampled"] = measure(Telemetry("bench", propagate=True, metrics=True), unsampled, False)
    out["+ span, recorded (+1 child)"] = measure(Telemetry("bench", propagate=True, metrics=True), (), True)
    tracing.uninstall()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=6000)
    parser.add_argument("--quick", action="store_true", help="small sizes (checks the script, not speed)")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="two more suites: metrics alone (tracing off), and tracing with nothing sampled (metrics off)",
    )
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        sink(args.sink)
        return
    if args.quick:
        args.rounds, args.calls = 1, 300
    ratio = tomllib.loads((ROOT / "config" / "production.toml").read_text())["tracing"]["sample_ratio"]
    print(f"production preset: tracing.sample_ratio = {ratio}")
    workdir = Path(tempfile.mkdtemp(prefix="allsource-telemetry-"))
    port = free_port()
    collector = subprocess.Popen([sys.executable, __file__, "--sink", str(port)])
    exporting = {"ALLSOURCE_TRACING__EXPORTER": "otlp", "ALLSOURCE_TRACING__OTLP_ENDPOINT": f"127.0.0.1:{port}"}
    suites = {
        "off": Suite(
            workdir / "off",
            extra_env={"ALLSOURCE_TRACING__ENABLED": "false", "ALLSOURCE_METRICS__ENABLED": "false"},
        ),
        "production": Suite(workdir / "prod", extra_env={**exporting, "ALLSOURCE_TRACING__SAMPLE_RATIO": str(ratio)}),
        "all sampled": Suite(workdir / "all", extra_env={**exporting, "ALLSOURCE_TRACING__SAMPLE_RATIO": "1.0"}),
    }
    if args.breakdown:
        suites["metrics only"] = Suite(workdir / "metrics", extra_env={"ALLSOURCE_TRACING__ENABLED": "false"})
        suites["unsampled"] = Suite(
            workdir / "unsampled",
            extra_env={**exporting, "ALLSOURCE_TRACING__SAMPLE_RATIO": "0", "ALLSOURCE_METRICS__ENABLED": "false"},
        )
    figures: dict[str, list[float]] = {name: [] for name in suites}
    # CPU per append (microseconds) of ingest + storage, and of the sink, per round
    cpu: dict[str, list[tuple[float, float]]] = {name: [] for name in suites}
    try:
        for suite in suites.values():
            suite.start_all()
        names = list(suites)
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                bench.CREDENTIALS = suites[name].auth_metadata()
                pids = [suites[name].procs[p].pid for p in ("ingest", "storage")]
                before = sum(cpu_seconds(p) for p in pids), cpu_seconds(collector.pid)
                figures[name].append(asyncio.run(bench.single_appends(suites[name].address("ingest"), args.calls)))
                after = sum(cpu_seconds(p) for p in pids), cpu_seconds(collector.pid)
                cpu[name].append(((after[0] - before[0]) / args.calls * 1e6, (after[1] - before[1]) / args.calls * 1e6))
            print(
                f"round {r + 1}/{args.rounds}: " + "; ".join(f"{n} {figures[n][-1]:,.0f}/s" for n in names), flush=True
            )
    finally:
        for suite in suites.values():
            suite.stop_all()
        collector.terminate()
        collector.wait()
    base = statistics.median(figures["off"])
    print(f"\nAppendEvents calls/s, 32 clients, median of {args.rounds} interleaved rounds")
    for name in suites:
        value = statistics.median(figures[name])
        ratios = [a / b for a, b in zip(figures[name], figures["off"], strict=True)]
        print(
            f"  {name:<12} {value:>8,.0f}/s  ratio to off {value / base:.2f} "
            f"(per round {', '.join(f'{x:.2f}' for x in ratios)})"
        )
    print("\nCPU per append (/proc, microseconds, median of the rounds): ingest + storage, and the OTLP sink")
    off_cpu = statistics.median(c[0] for c in cpu["off"])
    for name in suites:
        suite_cpu = statistics.median(c[0] for c in cpu[name])
        sink_cpu = statistics.median(c[1] for c in cpu[name])
        print(f"  {name:<12} {suite_cpu:7.0f} us (+{suite_cpu - off_cpu:.0f} us over off)  sink {sink_cpu:5.0f} us")
    print("\nthe telemetry stage's own cost per call (this process), microseconds")
    for name, (p50, p99) in stage_cost(2000 if args.quick else 50_000).items():
        print(f"  {name:<28} p50 {p50:6.1f}  p99 {p99:6.1f}")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
