"""Run-time control of a process: configuration reload, effective configuration, feature-flag refresh.

Every process serves allsource.control.v1.ControlService; the admin service fans AdminService calls out
to it, and SIGHUP triggers the same reload locally. A reload reads the process's configuration inputs
again (preset, file, environment, flags) and resolves secret references again. When the result fails
validation or a reference cannot be resolved, the old configuration stays in force and the reason is
reported. Otherwise reloadable changes are applied at once, and changes that need a restart are
reported (and shown as pending by GetConfig) but not applied: nothing is half-applied.
"""

from __future__ import annotations

import logging
import resource
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from allsource.control.v1 import control_pb2, control_pb2_grpc
from allsource.v1 import config_pb2, metrics_pb2
from google.protobuf import timestamp_pb2
from pydantic import ValidationError

from shared.config import loader as config
from shared.config.flags import FLAGS, FlagState
from shared.config.loader import LoadedSettings, SettingsError
from shared.config.settings import Settings
from shared.telemetry.metrics import RPC_CALLS, RPC_DURATION, RPC_IN_FLIGHT

log = logging.getLogger(__name__)

FLAG_NAMESPACE = "feature_flags"
_BUCKET_BY = {"tenant": config_pb2.BUCKET_BY_TENANT, "stream": config_pb2.BUCKET_BY_STREAM}
_BUCKET_BY_NAME = {v: k for k, v in _BUCKET_BY.items()}

Apply = Callable[[Settings, set[str]], Awaitable[None]]


class ConfigManager:
    """The configuration in force in this process, and how to reload it."""

    def __init__(self, service: str, loaded: LoadedSettings) -> None:
        self.service = service
        self.loaded = loaded
        self.pending: dict[str, Any] = {}

    @property
    def settings(self) -> Settings:
        return self.loaded.settings

    async def reload(self, apply: Apply) -> config_pb2.ReloadResult:
        """Re-read the inputs; apply what can be applied, report the rest."""
        result = config_pb2.ReloadResult(service=self.service)
        try:
            fresh = config.load(self.loaded.inputs)
        except SettingsError as exc:
            log.error("configuration reload failed; the configuration in force is kept", extra={"error": str(exc)})
            result.status = config_pb2.RELOAD_STATUS_FAILED
            result.error = str(exc)
            return result
        current = self.loaded.settings
        changed = config.changed_keys(current, fresh.settings)
        reloadable = {k for k in changed if config.is_reloadable(k)}
        restart = changed - reloadable
        try:
            effective = config.with_values_of(current, fresh.settings, reloadable) if reloadable else current
        except ValidationError as exc:
            result.status = config_pb2.RELOAD_STATUS_FAILED
            result.error = f"the reloadable changes alone are inconsistent: {exc.errors()[0]['msg']}"
            return result
        if reloadable:
            await apply(effective, reloadable)
        sources = dict(self.loaded.sources)
        for key in reloadable:
            if key in fresh.sources:
                sources[key] = fresh.sources[key]
            else:
                sources.pop(key, None)
        new_values = config.flatten(fresh.settings.model_dump())
        self.pending = {key: new_values.get(key) for key in restart}
        self.loaded = LoadedSettings(effective, sources, self.loaded.preset, self.loaded.inputs)
        result.applied_keys.extend(sorted(reloadable))
        result.restart_required_keys.extend(sorted(restart))
        result.status = config_pb2.RELOAD_STATUS_APPLIED if changed else config_pb2.RELOAD_STATUS_UNCHANGED
        if changed:
            log.info(
                "configuration reloaded",
                extra={"applied": sorted(reloadable), "restart_required": sorted(restart)},
            )
        return result

    def snapshot(self, address: str = "") -> config_pb2.ServiceConfig:
        """The effective configuration, secrets redacted."""
        out = config_pb2.ServiceConfig(service=self.service, address=address, preset=self.loaded.preset)
        for key, value, source, reloadable, secret, pending in config.entries(self.loaded, self.pending):
            out.entries.add(
                key=key, value=value, source=source, reloadable=reloadable, secret=secret, pending_restart_value=pending
            )
        return out


# -- feature flags as records -------------------------------------------------------------------------


def flag_to_proto(state: FlagState, description: str = "") -> config_pb2.FeatureFlag:
    """A flag state as the API shows it."""
    flag = config_pb2.FeatureFlag(
        name=state.name,
        description=description,
        enabled=state.enabled,
        percentage=state.percentage,
        bucket_by=_BUCKET_BY[state.bucket_by],
        source=state.source,
        updated_by=state.updated_by,
    )
    if state.updated_at_ns:
        flag.updated_at.CopyFrom(
            timestamp_pb2.Timestamp(seconds=state.updated_at_ns // 10**9, nanos=state.updated_at_ns % 10**9)
        )
    return flag


def flag_from_record(value: bytes) -> FlagState:
    """An override as stored by AdminService.SetFeatureFlag."""
    flag = config_pb2.FeatureFlag.FromString(value)
    return FlagState(
        name=flag.name,
        enabled=flag.enabled,
        percentage=flag.percentage,
        bucket_by=_BUCKET_BY_NAME.get(flag.bucket_by, "tenant"),  # type: ignore[arg-type]
        source="override",
        updated_at_ns=flag.updated_at.ToNanoseconds() if flag.HasField("updated_at") else 0,
        updated_by=flag.updated_by,
    )


def flags_response() -> list[config_pb2.FeatureFlag]:
    """Every flag as this process sees it."""
    from shared.config.flag_registry import DEFINITIONS

    return [flag_to_proto(s, DEFINITIONS[s.name].description) for s in FLAGS.states()]


# -- metrics ----------------------------------------------------------------------------------------

# Histogram buckets of one method (or of all): upper bound -> cumulative count, as Prometheus keeps them.
Buckets = dict[float, float]


def quantile_ms(q: float, buckets: Buckets) -> float:
    """The q-quantile of a cumulative histogram in milliseconds, estimated as Prometheus's
    histogram_quantile does: linear within the bucket that holds it; the highest finite bound past it."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return 0.0
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower * 1000
            share = (rank - below) / (count - below) if count > below else 1.0
            return (lower + (bound - lower) * share) * 1000
        lower, below = bound, count
    return lower * 1000


def metrics_summary(service: str, max_methods: int, enabled: bool = True) -> metrics_pb2.ServiceMetrics:
    """This process's RPC figures from the counters and histograms /metrics serves, with its CPU and memory."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out = metrics_pb2.ServiceMetrics(
        service=service, cpu_seconds=usage.ru_utime + usage.ru_stime, max_rss_bytes=usage.ru_maxrss * 1024
    )
    if not enabled:
        out.error = "metrics.enabled is false in this process: its RPCs are not counted"
        return out
    calls: dict[str, list[float]] = {}  # method -> [calls, errors]
    for family in RPC_CALLS.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                entry = calls.setdefault(sample.labels["method"], [0.0, 0.0])
                entry[0] += sample.value
                if sample.labels["code"] != "OK":
                    entry[1] += sample.value
    per_method: dict[str, Buckets] = {}
    overall: Buckets = {}
    for family in RPC_DURATION.collect():
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                bound = float(sample.labels["le"])
                own = per_method.setdefault(sample.labels["method"], {})
                own[bound] = own.get(bound, 0.0) + sample.value
                overall[bound] = overall.get(bound, 0.0) + sample.value
    out.calls = int(sum(c for c, _ in calls.values()))
    out.errors = int(sum(e for _, e in calls.values()))
    out.in_flight = int(sum(s.value for f in RPC_IN_FLIGHT.collect() for s in f.samples))
    out.p50_ms = quantile_ms(0.5, overall)
    out.p99_ms = quantile_ms(0.99, overall)
    busiest = sorted(calls.items(), key=lambda item: (-item[1][0], item[0]))[:max_methods]
    for method, (count, errors) in busiest:
        buckets = per_method.get(method, {})
        out.methods.add(
            method=method,
            calls=int(count),
            errors=int(errors),
            p50_ms=quantile_ms(0.5, buckets),
            p99_ms=quantile_ms(0.99, buckets),
        )
    return out


# -- the service --------------------------------------------------------------------------------------


class ControlServicer(control_pb2_grpc.ControlServiceServicer):
    """ControlService for one process."""

    def __init__(
        self,
        reload: Callable[[], Awaitable[config_pb2.ReloadResult]],
        snapshot: Callable[[], config_pb2.ServiceConfig],
        refresh_flags: Callable[[], Awaitable[None]],
        metrics: Callable[[int], metrics_pb2.ServiceMetrics],
    ) -> None:
        self._metrics = metrics
        self._reload = reload
        self._snapshot = snapshot
        self._refresh_flags = refresh_flags

    async def ReloadConfig(
        self, request: control_pb2.ReloadConfigRequest, context: grpc.aio.ServicerContext
    ) -> control_pb2.ReloadConfigResponse:
        return control_pb2.ReloadConfigResponse(result=await self._reload())

    async def GetConfig(
        self, request: control_pb2.GetConfigRequest, context: grpc.aio.ServicerContext
    ) -> control_pb2.GetConfigResponse:
        return control_pb2.GetConfigResponse(config=self._snapshot())

    async def RefreshFeatureFlags(
        self, request: control_pb2.RefreshFeatureFlagsRequest, context: grpc.aio.ServicerContext
    ) -> control_pb2.RefreshFeatureFlagsResponse:
        await self._refresh_flags()
        return control_pb2.RefreshFeatureFlagsResponse(flags=flags_response())

    async def GetMetrics(
        self, request: control_pb2.GetMetricsRequest, context: grpc.aio.ServicerContext
    ) -> control_pb2.GetMetricsResponse:
        return control_pb2.GetMetricsResponse(metrics=self._metrics(max(0, min(request.max_methods, 50))))


CONTROL_SERVICE = control_pb2.DESCRIPTOR.services_by_name["ControlService"].full_name
