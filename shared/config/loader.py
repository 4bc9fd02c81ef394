"""Layered configuration: loading, validation, secret resolution and the production guard.

Layers, lowest first:
    defaults (the model) < preset (config/<preset>.toml) < configuration file (TOML, YAML or JSON, by
    extension) < `ALLSOURCE_*` environment (sections and keys joined by `__`) < `--set KEY=VALUE` flags.
The preset is chosen by `--preset NAME` or `ALLSOURCE_PRESET` (default `development`); the file by
`--config PATH` or `ALLSOURCE_CONFIG`. Every problem stops start-up (or fails a reload, keeping the old
configuration) with a message naming the key and the layer it came from. Secret values never appear in
messages, sources or dumps.
"""

from __future__ import annotations

import ipaddress
import json
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, SecretStr, ValidationError

from shared.config.secrets import Resolver, SecretError, is_reference, kind
from shared.config.settings import Settings

ENV_PREFIX = "ALLSOURCE_"
PRESETS = ("development", "staging", "production")
DEFAULT_PRESET = "development"
# ALLSOURCE_* variables that choose sources rather than set values, or belong to allsource-cli (its API
# key and profile may be exported in the shell that starts a service).
NON_SETTING_VARS = {
    "ALLSOURCE_CONFIG",
    "ALLSOURCE_PRESET",
    "ALLSOURCE_PRESET_DIR",
    "ALLSOURCE_SOAK",
    "ALLSOURCE_API_KEY",
    "ALLSOURCE_PROFILE",
    "ALLSOURCE_LAUNCHER_PID",
}
REDACTED = "**redacted**"
_ROOT = Path(__file__).resolve().parents[2]


class SettingsError(Exception):
    """Settings could not be loaded; the message names the key and the layer."""


@dataclass(frozen=True)
class ConfigInputs:
    """Where a process's configuration comes from; a reload reads the same inputs again."""

    preset: str = ""
    config_path: str | None = None
    overrides: tuple[str, ...] = ()
    environ: Mapping[str, str] = field(default_factory=dict)


@dataclass
class LoadedSettings:
    """Validated settings, the layer each set key came from, and the inputs they were read from."""

    settings: Settings
    sources: dict[str, str]
    preset: str
    inputs: ConfigInputs


# -- reading the layers -------------------------------------------------------------------------------


def read_file(path: str | Path) -> dict[str, Any]:
    """Parse a configuration file, choosing the format by its extension."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise SettingsError(f"cannot read configuration file {p}: {exc.strerror}") from None
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
        raise SettingsError(f"configuration file {p} is not valid {suffix[1:].upper()}: {exc}") from None
    except SettingsError:
        raise
    except Exception as exc:  # yaml.YAMLError, without importing yaml for every process
        if exc.__class__.__module__.startswith("yaml"):
            raise SettingsError(f"configuration file {p} is not valid YAML: {exc}") from None
        raise
    if not isinstance(data, dict):
        raise SettingsError(f"configuration file {p} must hold a table/object at the top level")
    return data


def env_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    """The nested settings given by `ALLSOURCE_*` variables."""
    return _nest(
        ((name[len(ENV_PREFIX) :].lower().split("__"), value, f"environment variable {name}"))
        for name, value in environ.items()
        if name.startswith(ENV_PREFIX) and name not in NON_SETTING_VARS
    )


def flags_layer(overrides: Iterable[str]) -> dict[str, Any]:
    """The nested settings given by `--set section.key=value` flags.

    Values are text, converted by the model exactly as environment values are; a value starting with
    `[` or `{` is read as JSON (lists, tables).
    """
    items = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SettingsError(f"--set {item!r}: expected KEY=VALUE, for example --set storage.port=6000")
        value: Any = raw
        if raw[:1] in "[{":
            try:
                value = json.loads(raw)
            except ValueError:
                raise SettingsError(f"--set {key}: the value starts like JSON but is not valid JSON") from None
        items.append((key.lower().split("."), value, f"--set {key}"))
    return _nest(items)


def _nest(items: Iterable[tuple[list[str], Any, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for parts, value, origin in items:
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SettingsError(f"{origin} conflicts with another setting of the same key")
        node[parts[-1]] = value
    return out


def preset_dir(environ: Mapping[str, str]) -> Path:
    """Where the preset files live: ALLSOURCE_PRESET_DIR, else config/ beside the source tree."""
    return Path(environ.get("ALLSOURCE_PRESET_DIR") or _ROOT / "config")


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as {dotted.key: value}."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, dotted + "."))
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


# -- the model's shape --------------------------------------------------------------------------------


def _walk(model: type[BaseModel], prefix: str = "") -> Iterable[tuple[str, Any, bool]]:
    """(dotted key, annotation, reloadable) for every field, descending into sections."""
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        reloadable = bool(extra.get("reloadable"))
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for sub in _walk(annotation, key + "."):
                yield sub[0], sub[1], sub[2] or reloadable
        else:
            yield key, annotation, reloadable


_FIELDS = {key: (annotation, reloadable) for key, annotation, reloadable in _walk(Settings)}
SECRET_KEYS = frozenset(k for k, (ann, _) in _FIELDS.items() if ann is SecretStr or SecretStr in get_args(ann))
# Provider credentials (secrets.vault_token) are resolved by the resolver when a reference needs them.
_RESOLVED_SECRETS = frozenset(k for k in SECRET_KEYS if not k.startswith("secrets."))


def is_reloadable(key: str) -> bool:
    """Whether a change of this dotted key is applied by a reload (a key inside a reloadable map counts)."""
    parts = key.split(".")
    for n in range(len(parts), 0, -1):
        entry = _FIELDS.get(".".join(parts[:n]))
        if entry is not None:
            return entry[1]
    return False


# -- loading ------------------------------------------------------------------------------------------


def load_settings(
    config_path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    preset: str | None = None,
    overrides: Sequence[str] = (),
) -> LoadedSettings:
    """Read every layer, resolve secret references, validate, and apply the production guard."""
    environ = dict(os.environ if environ is None else environ)
    inputs = ConfigInputs(
        preset=preset or environ.get("ALLSOURCE_PRESET") or DEFAULT_PRESET,
        config_path=str(config_path or environ.get("ALLSOURCE_CONFIG") or "") or None,
        overrides=tuple(overrides),
        environ=environ,
    )
    return load(inputs)


def load(inputs: ConfigInputs) -> LoadedSettings:
    """Load settings from the given inputs (start-up and reload)."""
    if inputs.preset not in PRESETS:
        raise SettingsError(f"unknown preset {inputs.preset!r}; choose one of {', '.join(PRESETS)}")
    preset_file = preset_dir(inputs.environ) / f"{inputs.preset}.toml"
    layers: list[tuple[str, dict[str, Any]]] = [(f"preset {inputs.preset}", read_file(preset_file))]
    if inputs.config_path:
        layers.append((f"file {inputs.config_path}", read_file(inputs.config_path)))
    layers.append(("environment", env_layer(inputs.environ)))
    if inputs.overrides:
        layers.append(("flag --set", flags_layer(inputs.overrides)))
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, data in layers:
        merged = _merge(merged, data)
        for key in flatten(data):
            sources[key] = name
    _resolve_secrets(merged, sources, inputs.environ)
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        raise SettingsError(_describe(exc, sources)) from None
    missing = required_secrets_missing(settings)
    if missing:
        raise SettingsError("invalid settings:\n" + "\n".join(f"  {m}" for m in missing))
    if inputs.preset == "development" and not _loopback(settings.storage.host):
        raise SettingsError(
            f"storage.host: the development preset serves storage on loopback only (it runs with published "
            f"development secrets); use the staging or production preset to serve it on {settings.storage.host!r} "
            f"(from {sources.get('storage.host', 'default')})"
        )
    if inputs.preset == "production":
        problems = production_problems(settings, sources)
        if problems:
            raise SettingsError(
                "the production preset refuses insecure settings:\n" + "\n".join(f"  {p}" for p in problems)
            )
    return LoadedSettings(settings, sources, inputs.preset, inputs)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _resolve_secrets(merged: dict[str, Any], sources: dict[str, str], environ: Mapping[str, str]) -> None:
    flat = flatten(merged)
    resolver = Resolver(merged.get("secrets") or {}, environ)
    for key in sorted(_RESOLVED_SECRETS & flat.keys()):
        value = flat[key]
        if not isinstance(value, str):
            continue
        layer = sources.get(key, "default")
        try:
            secret = resolver.resolve(value)
        except SecretError as exc:
            raise SettingsError(
                f"invalid settings:\n  {key}: cannot resolve {kind(value)}: {exc} (from {layer})"
            ) from None
        node = merged
        parts = key.split(".")
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = secret
        sources[key] = f"{layer} ({kind(value)})"
    for key in SECRET_KEYS - _RESOLVED_SECRETS:
        if key in sources and key in flat and isinstance(flat[key], str):
            sources[key] = f"{sources[key]} ({kind(flat[key])})"


def _describe(exc: ValidationError, sources: Mapping[str, str]) -> str:
    lines = ["invalid settings:"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        layer = sources.get(key)
        if layer is None:
            # A cross-field check reports a section; name the layers that set keys in it.
            layers = sorted({v for k, v in sources.items() if k.startswith(key + ".") or not key})
            layer = ", ".join(layers) if layers else "defaults"
        message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"  {key or '(top level)'}: {message} (from {layer})")
    return "\n".join(lines)


def required_secrets_missing(settings: Settings) -> list[str]:
    """Secrets every running service needs (presets other than development must provide them)."""
    missing = []
    if settings.internal.service_secret is None:
        missing.append("internal.service_secret: required: it signs the calls between the suite's services (not set)")
    if settings.auth.enabled and settings.auth.api_key_pepper is None:
        missing.append("auth.api_key_pepper: required while auth.enabled: it keys the API-key hashes (not set)")
    return missing


# -- the production guard -----------------------------------------------------------------------------

ProductionCheck = Callable[[Settings, Mapping[str, str]], list[str]]
PRODUCTION_CHECKS: list[ProductionCheck] = []


def production_check(check: ProductionCheck) -> ProductionCheck:
    """Register a check the production preset must pass (each names the key and the layer)."""
    PRODUCTION_CHECKS.append(check)
    return check


def production_problems(settings: Settings, sources: Mapping[str, str]) -> list[str]:
    """Everything that makes these settings unfit for production."""
    return [problem for check in PRODUCTION_CHECKS for problem in check(settings, sources)]


@production_check
def _transport_is_protected(settings: Settings, sources: Mapping[str, str]) -> list[str]:
    if settings.tls.enabled or settings.tls.mesh_sidecar:
        return []
    return [
        "tls.enabled: plaintext is refused in production; enable TLS, or set tls.mesh_sidecar = true when a "
        f"service-mesh sidecar terminates TLS (from {sources.get('tls.enabled', 'default')})"
    ]


@production_check
def _secrets_are_references(settings: Settings, sources: Mapping[str, str]) -> list[str]:
    problems = []
    for key in sorted(SECRET_KEYS):
        source = sources.get(key, "")
        if source.endswith("(inline)") and source.startswith(("preset", "file")):
            problems.append(
                f"{key}: a secret written into a configuration file; use a reference "
                f"(env:, file:, vault:, aws-sm:) (from {source.removesuffix(' (inline)')})"
            )
    return problems


DEVELOPMENT_SECRETS = {
    "auth.api_key_pepper": "development-only-api-key-pepper",
    "internal.service_secret": "development-only-service-secret",
}


@production_check
def _no_development_secrets(settings: Settings, sources: Mapping[str, str]) -> list[str]:
    problems = []
    values = {
        "auth.api_key_pepper": settings.auth.api_key_pepper,
        "internal.service_secret": settings.internal.service_secret,
    }
    for key, secret in values.items():
        if secret is not None and secret.get_secret_value() == DEVELOPMENT_SECRETS[key]:
            problems.append(
                f"{key}: the development value is refused in production (from {sources.get(key, 'default')})"
            )
        elif secret is not None and len(secret.get_secret_value()) < 32:
            problems.append(f"{key}: must be at least 32 characters (from {sources.get(key, 'default')})")
    return problems


@production_check
def _authentication_is_on(settings: Settings, sources: Mapping[str, str]) -> list[str]:
    problems = []
    if not settings.auth.enabled:
        problems.append(
            f"auth.enabled: authentication cannot be turned off in production (from {sources.get('auth.enabled')})"
        )
    if settings.auth.bootstrap_api_key:
        problems.append(
            f"auth.bootstrap_api_key: production does not write an operator key to disk; log in as the bootstrap "
            f"administrator instead (from {sources.get('auth.bootstrap_api_key', 'default')})"
        )
    if settings.auth.enabled and settings.auth.bootstrap_admin_password is None:
        problems.append(
            "auth.bootstrap_admin_password: production needs the bootstrap administrator's password from "
            "configuration (a reference: env:, file:, vault:, aws-sm:)"
        )
    return problems


# -- comparing and showing ----------------------------------------------------------------------------


def _plain(settings: Settings) -> dict[str, Any]:
    def unwrap(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return ("secret", value.get_secret_value())
        if isinstance(value, dict):
            return {k: unwrap(v) for k, v in value.items()}
        return value

    return flatten(unwrap(settings.model_dump()))


def changed_keys(old: Settings, new: Settings) -> set[str]:
    """Dotted keys whose values differ (secrets compared by value)."""
    a, b = _plain(old), _plain(new)
    return {k for k in a.keys() | b.keys() if k not in a or k not in b or a[k] != b[k]}


def with_values_of(base: Settings, other: Settings, keys: set[str]) -> Settings:
    """`base` with the values of `keys` taken from `other` (a key absent from `other` is removed); validated."""
    merged = flatten(base.model_dump())
    source = flatten(other.model_dump())
    for key in keys:
        if key in source:
            merged[key] = source[key]
        else:
            merged.pop(key, None)
    return Settings.model_validate(_unflatten(merged))


def _unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def json_value(value: Any) -> str:
    """A setting's value as JSON text (secrets redacted)."""
    if isinstance(value, SecretStr):
        return json.dumps(REDACTED)
    return json.dumps(value, default=str)


def entries(loaded: LoadedSettings, pending: Mapping[str, Any]) -> list[tuple[str, str, str, bool, bool, str]]:
    """(key, value JSON, source, reloadable, secret, pending-restart JSON) for every setting, by key."""

    def leaves(value: Any, prefix: str) -> Iterable[tuple[str, Any]]:
        if isinstance(value, BaseModel):
            for name in type(value).model_fields:
                yield from leaves(getattr(value, name), f"{prefix}{name}.")
        elif isinstance(value, dict) and value:
            for k, v in value.items():
                yield from leaves(v, f"{prefix}{k}.")
        else:
            yield prefix[:-1], value

    out = []
    for key, value in sorted(leaves(loaded.settings, "")):
        secret = key in SECRET_KEYS
        pending_value = json_value(pending[key]) if key in pending else ""
        if secret and key in pending:
            pending_value = json.dumps(REDACTED)
        out.append(
            (key, json_value(value), loaded.sources.get(key, "default"), is_reloadable(key), secret, pending_value)
        )
    return out


__all__ = [
    "PRESETS",
    "SECRET_KEYS",
    "ConfigInputs",
    "LoadedSettings",
    "SettingsError",
    "changed_keys",
    "entries",
    "is_reference",
    "is_reloadable",
    "load",
    "load_settings",
    "production_check",
    "with_values_of",
]
