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
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from allsource.control.v1 import control_pb2, control_pb2_grpc
from allsource.v1 import config_pb2
from google.protobuf import timestamp_pb2
from pydantic import ValidationError

from shared.config import loader as config
from shared.config.flags import FLAGS, FlagState
from shared.config.loader import LoadedSettings, SettingsError
from shared.config.settings import Settings

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


# -- the service --------------------------------------------------------------------------------------


class ControlServicer(control_pb2_grpc.ControlServiceServicer):
    """ControlService for one process."""

    def __init__(
        self,
        reload: Callable[[], Awaitable[config_pb2.ReloadResult]],
        snapshot: Callable[[], config_pb2.ServiceConfig],
        refresh_flags: Callable[[], Awaitable[None]],
    ) -> None:
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


CONTROL_SERVICE = control_pb2.DESCRIPTOR.services_by_name["ControlService"].full_name
