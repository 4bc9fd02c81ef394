"""The typed settings model shared by every service, and its layered loader.

Layers, lowest first: model defaults < configuration file (TOML, YAML or JSON by extension) < `ALLSOURCE_*`
environment variables (nested keys joined by `__`, e.g. `ALLSOURCE_STORAGE__DATA_DIR`). Unknown keys and
bad values stop start-up with a message naming the key and the layer it came from.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ENV_PREFIX = "ALLSOURCE_"
MiB = 1024 * 1024


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Endpoint(_Section):
    """Where a service listens, and the address other services use to reach it."""

    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    # Address other services dial; empty means host:port (with 0.0.0.0 / :: dialled as loopback).
    address: str = ""

    def bind(self) -> str:
        """The address to listen on."""
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{host}:{self.port}"

    def dial(self) -> str:
        """The address to connect to."""
        if self.address:
            return self.address
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "[::]": "::1"}.get(self.host, self.host)
        host = f"[{host}]" if ":" in host and not host.startswith("[") else host
        return f"{host}:{self.port}"


class StorageSettings(Endpoint):
    """The storage service: the only process that opens the database."""

    port: int = Field(default=50054, ge=0, le=65535)
    data_dir: str = "./data"
    # fsync the WAL on every group commit. Off trades the last moments of acknowledged writes on a
    # machine crash (not a process crash) for throughput.
    sync_writes: bool = True
    # A write batch closes once it holds this many key writes (events x 4 + heads); one append is never split.
    group_commit_max_entries: int = Field(default=4000, ge=1)
    # Stream heads kept in memory by the writer.
    stream_cache_size: int = Field(default=100_000, ge=0)
    # Keep request-id results (idempotent retries) this long.
    request_id_ttl_s: int = Field(default=7 * 24 * 3600, ge=60)
    # Largest read response, in bytes; reads return fewer events rather than exceed it.
    max_read_bytes: int = Field(default=4 * MiB, ge=64 * 1024)


class IngestSettings(Endpoint):
    """The ingest service."""

    port: int = Field(default=50051, ge=0, le=65535)
    # Concurrent appends are coalesced into one storage call; a second one (up to this many) starts only
    # when coalesce_parallel_bytes are waiting (bulk ingest).
    storage_calls_in_flight: int = Field(default=2, ge=1, le=64)
    coalesce_parallel_bytes: int = Field(default=1024 * 1024, ge=0)
    # Commit delay: under load (the previous storage call carried several appends), wait up to this long
    # for coalesce_linger_until appends to queue before the next call. 0 turns it off.
    coalesce_linger_ms: float = Field(default=1.0, ge=0, le=50)
    coalesce_linger_until: int = Field(default=16, ge=1)
    # One storage call carries at most this many appends and bytes.
    coalesce_max_appends: int = Field(default=1024, ge=1)
    coalesce_max_bytes: int = Field(default=8 * MiB, ge=64 * 1024)
    # BatchAppend stops reading a client's stream while this many of its requests are unanswered.
    batch_append_window: int = Field(default=8, ge=1, le=1024)


class QuerySettings(Endpoint):
    """The query service."""

    port: int = Field(default=50052, ge=0, le=65535)
    default_page_size: int = Field(default=100, ge=1)
    max_page_size: int = Field(default=1000, ge=1)
    # GetEntityState stores a snapshot when it had to fold at least this many events.
    snapshot_after_events: int = Field(default=100, ge=1)
    # Subscribe defaults.
    checkpoint_every_events: int = Field(default=1000, ge=1)
    checkpoint_interval_s: float = Field(default=5.0, gt=0)

    @model_validator(mode="after")
    def _page_sizes(self) -> QuerySettings:
        if self.default_page_size > self.max_page_size:
            raise ValueError("default_page_size must not exceed max_page_size")
        return self


class AdminSettings(Endpoint):
    """The admin service."""

    port: int = Field(default=50053, ge=0, le=65535)


class GrpcSettings(_Section):
    """Transport settings applied to every server and channel."""

    max_message_bytes: int = Field(default=16 * MiB, ge=64 * 1024)
    keepalive_time_s: float = Field(default=30.0, gt=0)
    keepalive_timeout_s: float = Field(default=10.0, gt=0)
    # Pings from clients closer together than this (without data) are refused by servers.
    min_ping_interval_s: float = Field(default=10.0, gt=0)
    max_concurrent_streams: int = Field(default=1000, ge=1)
    # SIGTERM: stop accepting calls, let in-flight calls finish for this long, then cancel.
    shutdown_grace_s: float = Field(default=10.0, ge=0)
    # Deadline for one internal call to storage.
    storage_timeout_s: float = Field(default=30.0, gt=0)
    # The asyncio event loop implementation. uvloop costs ~15% less CPU per call here.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"


class LimitsSettings(_Section):
    """Validation limits for appended data."""

    max_event_bytes: int = Field(default=MiB, ge=1)
    max_batch_events: int = Field(default=10_000, ge=1)
    max_batch_bytes: int = Field(default=8 * MiB, ge=1)
    max_stream_id_bytes: int = Field(default=256, ge=1, le=4096)
    max_event_type_bytes: int = Field(default=256, ge=1, le=4096)
    max_metadata_entries: int = Field(default=64, ge=0)
    max_metadata_bytes: int = Field(default=16 * 1024, ge=0)
    max_request_id_bytes: int = Field(default=128, ge=1)


class LogSettings(_Section):
    """Logging: JSON lines on stderr."""

    level: str = "INFO"
    # One line per RPC with method, status code, duration, peer and request id.
    access_log: bool = True

    @field_validator("level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return value.upper()


class TracingSettings(_Section):
    """OpenTelemetry tracing.

    When enabled, trace context (W3C traceparent) passes through every service call and trace ids appear
    in the logs; spans are recorded and exported only when an exporter is set.
    """

    enabled: bool = True
    # Fraction of new traces sampled (child spans follow their parent's decision).
    sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    exporter: Literal["none", "console", "otlp"] = "none"
    otlp_endpoint: str = "127.0.0.1:4317"


class Settings(_Section):
    """Every setting of the suite. Each service reads the sections it needs."""

    storage: StorageSettings = StorageSettings()
    ingest: IngestSettings = IngestSettings()
    query: QuerySettings = QuerySettings()
    admin: AdminSettings = AdminSettings()
    grpc: GrpcSettings = GrpcSettings()
    limits: LimitsSettings = LimitsSettings()
    log: LogSettings = LogSettings()
    tracing: TracingSettings = TracingSettings()

    @model_validator(mode="after")
    def _limits_fit_transport(self) -> Settings:
        if self.limits.max_batch_bytes > self.grpc.max_message_bytes:
            raise ValueError("limits.max_batch_bytes must not exceed grpc.max_message_bytes")
        if self.limits.max_event_bytes > self.limits.max_batch_bytes:
            raise ValueError("limits.max_event_bytes must not exceed limits.max_batch_bytes")
        return self


class SettingsError(Exception):
    """Settings could not be loaded; the message names the key and the layer."""


@dataclass
class LoadedSettings:
    """The validated settings and, for each dotted key that was set, the layer it came from."""

    settings: Settings
    sources: dict[str, str] = field(default_factory=dict)


def read_file(path: str | Path) -> dict[str, Any]:
    """Parse a configuration file, choosing the format by its extension."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise SettingsError(f"cannot read configuration file {p}: {exc.strerror}") from exc
    suffix = p.suffix.lower()
    try:
        if suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            raise SettingsError(f"configuration file {p}: unknown extension {suffix!r} (use .toml, .yaml or .json)")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise SettingsError(f"configuration file {p} is not valid {suffix[1:].upper()}: {exc}") from exc
    except Exception as exc:  # yaml.YAMLError without importing yaml at module load
        if exc.__class__.__module__.startswith("yaml"):
            raise SettingsError(f"configuration file {p} is not valid YAML: {exc}") from exc
        raise
    if not isinstance(data, dict):
        raise SettingsError(f"configuration file {p} must hold a table/object at the top level")
    return data


def env_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    """The nested settings given by `ALLSOURCE_*` variables (sections and keys joined by `__`)."""
    out: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in _NON_SETTING_VARS:
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX) :].split("__")]
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SettingsError(f"environment variable {name} conflicts with another ALLSOURCE_ variable")
        node[parts[-1]] = value
    return out


_NON_SETTING_VARS = {"ALLSOURCE_CONFIG", "ALLSOURCE_PRESET", "ALLSOURCE_SOAK"}


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(
    config_path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> LoadedSettings:
    """Load and validate settings from the file (if any) and the environment."""
    environ = os.environ if environ is None else environ
    config_path = config_path or environ.get("ALLSOURCE_CONFIG") or None
    layers: list[tuple[str, dict[str, Any]]] = []
    if config_path:
        layers.append((f"file {config_path}", read_file(config_path)))
    layers.append(("environment", env_layer(environ)))
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, data in layers:
        merged = _merge(merged, data)
        for key in _flatten(data):
            sources[key] = name
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        raise SettingsError(_describe(exc, sources)) from None
    return LoadedSettings(settings, sources)


def _describe(exc: ValidationError, sources: Mapping[str, str]) -> str:
    lines = ["invalid settings:"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        layer = sources.get(key)
        if layer is None:
            # A cross-field check reports the section; name the layers that set keys in it.
            layers = sorted({v for k, v in sources.items() if k.startswith(key + ".") or not key})
            layer = ", ".join(layers) if layers else "defaults"
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"  {key or '(top level)'}: {message} (from {layer})")
    return "\n".join(lines)
