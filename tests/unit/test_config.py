"""Layered configuration (shared.config.loader): precedence, presets, errors, the production guard, reloads, dumps.

Every test passes `environ=` explicitly, so the process environment never leaks in, and tests that need a
preset of their own point ALLSOURCE_PRESET_DIR at a temporary directory.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from shared.config import loader as config
from shared.config.loader import (
    REDACTED,
    SECRET_KEYS,
    SettingsError,
    changed_keys,
    entries,
    is_reloadable,
    load_settings,
    with_values_of,
)
from shared.config.settings import Settings

REPO_CONFIG = config.preset_dir({})

# A private key as an operator might paste it into a file. The refusal must never echo it.
SECRET_MARKER = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC-not-really-a-key"
INLINE_PEM = f"-----BEGIN PRIVATE KEY-----\n{SECRET_MARKER}\n-----END PRIVATE KEY-----"


# -- helpers ------------------------------------------------------------------------------------------


# Every running service needs the service secret and the API-key pepper, and production the bootstrap
# password; a real deployment supplies them by reference. Each load in this module gets them the same way
# (explicit values in a test's own environ win), so that each test sees only the problem it is about.
REQUIRED_SECRETS = {
    "ALLSOURCE_INTERNAL__SERVICE_SECRET": "env:TEST_SERVICE_SECRET",
    "TEST_SERVICE_SECRET": "s" * 40,
    "ALLSOURCE_AUTH__API_KEY_PEPPER": "env:TEST_PEPPER",
    "TEST_PEPPER": "p" * 40,
    "ALLSOURCE_AUTH__BOOTSTRAP_ADMIN_PASSWORD": "env:TEST_BOOTSTRAP",
    "TEST_BOOTSTRAP": "b" * 20,
}


@pytest.fixture(autouse=True)
def _required_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    real = config.load_settings

    def with_secrets(config_path: Any = None, environ: Mapping[str, str] | None = None, **kw: Any) -> Any:
        return real(config_path, {**REQUIRED_SECRETS, **(os.environ if environ is None else environ)}, **kw)

    monkeypatch.setattr(sys.modules[__name__], "load_settings", with_secrets)


def test_missing_required_secrets_stop_start_up() -> None:
    with pytest.raises(SettingsError) as err:
        config.load_settings(environ={}, preset="staging")
    assert "internal.service_secret: required" in str(err.value)
    assert "auth.api_key_pepper: required" in str(err.value)
    with pytest.raises(SettingsError) as err:
        config.load_settings(
            environ={k: v for k, v in REQUIRED_SECRETS.items() if "BOOTSTRAP" not in k},
            preset="production",
            overrides=["tls.mesh_sidecar=true"],
        )
    assert "auth.bootstrap_admin_password" in str(err.value)


def test_production_refuses_development_secrets_and_auth_off() -> None:
    with pytest.raises(SettingsError) as err:
        config.load_settings(
            environ={
                **REQUIRED_SECRETS,
                "TEST_SERVICE_SECRET": "development-only-service-secret",
                "TEST_PEPPER": "short",
                "ALLSOURCE_AUTH__ENABLED": "false",
            },
            preset="production",
            overrides=["tls.mesh_sidecar=true"],
        )
    message = str(err.value)
    assert "internal.service_secret: the development value is refused in production" in message
    assert "auth.api_key_pepper: must be at least 32 characters" in message
    assert "auth.enabled: authentication cannot be turned off in production (from environment)" in message
    assert "development-only-service-secret" not in message and "short" not in message.replace("shorter", "")


def toml_text(values: Mapping[str, Any]) -> str:
    """Dotted {key: value} as TOML (top-level keys first, then one table per section)."""
    top: list[str] = []
    tables: dict[str, list[str]] = {}
    for dotted, value in values.items():
        section, _, key = dotted.rpartition(".")
        line = f"{key} = {json.dumps(value)}"  # JSON scalars are valid TOML scalars for str/int/float/bool
        (tables.setdefault(section, []) if section else top).append(line)
    parts = ["\n".join(top)] if top else []
    parts += [f"[{section}]\n" + "\n".join(lines) for section, lines in tables.items()]
    return "\n".join(parts) + "\n"


def nested(values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dotted, value in values.items():
        *path, last = dotted.split(".")
        node = out
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value
    return out


def yaml_text(values: Mapping[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(nested(values))


def env_of(values: Mapping[str, Any]) -> dict[str, str]:
    def text(v: Any) -> str:
        return json.dumps(v) if isinstance(v, bool) else str(v)

    return {"ALLSOURCE_" + k.replace(".", "__").upper(): text(v) for k, v in values.items()}


def set_of(values: Mapping[str, Any]) -> list[str]:
    return [f"{k}={json.dumps(v) if isinstance(v, bool) else v}" for k, v in values.items()]


def preset_dir(tmp_path: Path, **presets: Mapping[str, Any]) -> Path:
    """A preset directory holding development/staging/production, each with the given values (or none)."""
    d = tmp_path / "presets"
    d.mkdir(exist_ok=True)
    for name in config.PRESETS:
        (d / f"{name}.toml").write_text(toml_text(presets.get(name, {})))
    return d


def error_line(err: pytest.ExceptionInfo[SettingsError], key: str) -> str:
    """The line of a SettingsError message that reports `key`."""
    lines = [line.strip() for line in str(err.value).splitlines() if line.strip().startswith(f"{key}:")]
    assert len(lines) == 1, f"expected one line for {key!r} in:\n{err.value}"
    return lines[0]


# -- precedence ---------------------------------------------------------------------------------------

KEY = "query.default_page_size"
DEFAULT = Settings().query.default_page_size
LAYER_VALUES = {"preset": 11, "file": 22, "environment": 33, "set": 44}
assert DEFAULT not in LAYER_VALUES.values()
ORDER = ["preset", "file", "environment", "set"]  # lowest first
SUBSETS = [combo for n in range(len(ORDER) + 1) for combo in itertools.combinations(ORDER, n)]


@pytest.mark.parametrize("present", SUBSETS, ids=lambda c: "+".join(c) or "none")
def test_highest_layer_present_wins(tmp_path: Path, present: tuple[str, ...]) -> None:
    presets = preset_dir(tmp_path, development={KEY: LAYER_VALUES["preset"]} if "preset" in present else {})
    environ = {"ALLSOURCE_PRESET_DIR": str(presets)}
    config_path = None
    if "file" in present:
        config_path = tmp_path / "service.toml"
        config_path.write_text(toml_text({KEY: LAYER_VALUES["file"]}))
    if "environment" in present:
        environ["ALLSOURCE_QUERY__DEFAULT_PAGE_SIZE"] = str(LAYER_VALUES["environment"])
    overrides = [f"{KEY}={LAYER_VALUES['set']}"] if "set" in present else []

    loaded = load_settings(config_path, environ, overrides=overrides)

    expected_source = {
        "preset": "preset development",
        "file": f"file {config_path}",
        "environment": "environment",
        "set": "flag --set",
    }
    if present:
        winner = present[-1]  # SUBSETS keep ORDER, so the last one is the highest
        assert loaded.settings.query.default_page_size == LAYER_VALUES[winner]
        assert loaded.sources[KEY] == expected_source[winner]
    else:
        assert loaded.settings.query.default_page_size == DEFAULT
        assert KEY not in loaded.sources
        assert {row[0]: row[2] for row in entries(loaded, {})}[KEY] == "default"


def test_layers_merge_key_by_key(tmp_path: Path) -> None:
    presets = preset_dir(tmp_path, development={"log.level": "WARNING", "query.max_page_size": 900})
    cfg = tmp_path / "service.toml"
    cfg.write_text(toml_text({"query.max_page_size": 500, "storage.data_dir": "/from-file"}))
    environ = {"ALLSOURCE_PRESET_DIR": str(presets), "ALLSOURCE_QUERY__DEFAULT_PAGE_SIZE": "250"}
    loaded = load_settings(cfg, environ, overrides=["storage.sync_writes=false"])
    s = loaded.settings
    assert (s.log.level, s.query.max_page_size, s.query.default_page_size) == ("WARNING", 500, 250)
    assert (s.storage.data_dir, s.storage.sync_writes, s.storage.port) == ("/from-file", False, 50054)
    assert loaded.sources["log.level"] == "preset development"
    assert loaded.sources["query.max_page_size"] == f"file {cfg}"
    assert loaded.sources["storage.data_dir"] == f"file {cfg}"
    assert loaded.sources["query.default_page_size"] == "environment"
    assert loaded.sources["storage.sync_writes"] == "flag --set"
    assert "storage.port" not in loaded.sources


def test_config_file_chosen_by_argument_or_environment(tmp_path: Path) -> None:
    by_env = tmp_path / "env.toml"
    by_env.write_text(toml_text({"log.level": "ERROR"}))
    by_arg = tmp_path / "arg.toml"
    by_arg.write_text(toml_text({"log.level": "DEBUG"}))
    loaded = load_settings(environ={"ALLSOURCE_CONFIG": str(by_env)})
    assert (loaded.settings.log.level, loaded.sources["log.level"]) == ("ERROR", f"file {by_env}")
    assert loaded.inputs.config_path == str(by_env)
    loaded = load_settings(by_arg, {"ALLSOURCE_CONFIG": str(by_env)})
    assert (loaded.settings.log.level, loaded.sources["log.level"]) == ("DEBUG", f"file {by_arg}")


# -- presets ------------------------------------------------------------------------------------------


@pytest.fixture
def three_presets(tmp_path: Path) -> dict[str, str]:
    d = preset_dir(
        tmp_path,
        development={"storage.data_dir": "/dev"},
        staging={"storage.data_dir": "/staging"},
        production={"storage.data_dir": "/prod", "tls.mesh_sidecar": True},
    )
    return {"ALLSOURCE_PRESET_DIR": str(d)}


@pytest.mark.parametrize(
    ("argument", "env_preset", "expected"),
    [
        (None, None, "development"),
        ("staging", None, "staging"),
        (None, "staging", "staging"),
        (None, "production", "production"),
        ("staging", "production", "staging"),  # the argument (--preset) wins over ALLSOURCE_PRESET
        ("production", "staging", "production"),
    ],
)
def test_preset_selection(
    three_presets: dict[str, str], argument: str | None, env_preset: str | None, expected: str
) -> None:
    environ = dict(three_presets)
    if env_preset:
        environ["ALLSOURCE_PRESET"] = env_preset
    loaded = load_settings(environ=environ, preset=argument)
    assert loaded.preset == expected
    assert loaded.inputs.preset == expected
    assert (
        loaded.settings.storage.data_dir
        == {"development": "/dev", "staging": "/staging", "production": "/prod"}[expected]
    )
    assert loaded.sources["storage.data_dir"] == f"preset {expected}"


@pytest.mark.parametrize(("argument", "env_preset"), [("qa", None), (None, "qa"), ("Production", None)])
def test_unknown_preset_is_refused(argument: str | None, env_preset: str | None) -> None:
    environ = {"ALLSOURCE_PRESET": env_preset} if env_preset else {}
    with pytest.raises(SettingsError) as err:
        load_settings(environ=environ, preset=argument)
    name = argument or env_preset
    assert f"unknown preset {name!r}" in str(err.value)
    assert "development, staging, production" in str(err.value)


def test_missing_preset_file_is_reported(tmp_path: Path) -> None:
    empty = tmp_path / "none"
    empty.mkdir()
    with pytest.raises(SettingsError, match=r"cannot read configuration file .*development\.toml"):
        load_settings(environ={"ALLSOURCE_PRESET_DIR": str(empty)})


def test_shipped_presets_load_and_differ() -> None:
    dev = load_settings(environ={})
    staging = load_settings(environ={}, preset="staging")
    prod = load_settings(environ={}, preset="production", overrides=["tls.mesh_sidecar=true"])
    assert (dev.preset, staging.preset, prod.preset) == ("development", "staging", "production")
    assert dev.settings.storage.data_dir == "./data"
    # Spans are recorded in every preset (F8); development samples every trace.
    assert dev.settings.tracing.exporter == "otlp" and dev.settings.tracing.sample_ratio == 1.0
    for loaded, name in ((staging, "staging"), (prod, "production")):
        assert loaded.settings.storage.data_dir == "/var/lib/allsource" != dev.settings.storage.data_dir
        assert loaded.sources["storage.data_dir"] == f"preset {name}"
        assert loaded.settings.tracing.exporter == "otlp"
        assert loaded.sources["tracing.exporter"] == f"preset {name}"
        assert loaded.settings.grpc.shutdown_grace_s > dev.settings.grpc.shutdown_grace_s
    assert prod.settings.tracing.sample_ratio == 0.05
    assert staging.settings.tracing.sample_ratio == 1.0
    assert prod.settings.tls.mesh_sidecar is True
    assert prod.sources["tls.mesh_sidecar"] == "flag --set"
    # Every shipped preset file parses and only names real settings.
    for name in config.PRESETS:
        assert (REPO_CONFIG / f"{name}.toml").is_file()
        Settings.model_validate(config.read_file(REPO_CONFIG / f"{name}.toml"))


# -- validation errors name the key and the layer -----------------------------------------------------

LAYERS = ["preset", "file-toml", "file-yaml", "file-json", "environment", "set"]

PROBLEMS: dict[str, tuple[dict[str, Any], str, str]] = {
    # name: (values, the key the error line starts with, text expected on that line)
    "unknown-key": ({"storage.prot": 1}, "storage.prot", "unknown key"),
    "unknown-section": ({"storrage.port": 1}, "storrage", "unknown key"),
    "wrong-type-int": ({"ingest.port": "http"}, "ingest.port", "valid integer"),
    "wrong-type-bool": ({"storage.sync_writes": "maybe"}, "storage.sync_writes", "valid boolean"),
    "wrong-literal": (
        {"tracing.exporter": "jaeger"},
        "tracing.exporter",
        "'none', 'console', 'otlp', 'otlp_http' or 'zipkin'",
    ),
    "out-of-range-port": ({"query.port": 70000}, "query.port", "less than or equal to 65535"),
    "out-of-range-ratio": ({"tracing.sample_ratio": 1.5}, "tracing.sample_ratio", "less than or equal to 1"),
    "out-of-range-min": ({"grpc.max_message_bytes": 1024}, "grpc.max_message_bytes", "greater than or equal to"),
    "bad-log-level": ({"log.level": "chatty"}, "log.level", "unknown log level 'chatty'"),
    "page-sizes": (
        {"query.default_page_size": 500, "query.max_page_size": 100},
        "query",
        "default_page_size must not exceed max_page_size",
    ),
    "batch-over-message": (
        {"limits.max_batch_bytes": 32 * 1024 * 1024},
        "(top level)",
        "limits.max_batch_bytes must not exceed grpc.max_message_bytes",
    ),
    "long-lived-streams-over-connections": (
        # 2,500 subscriptions and 1,000 Consume streams on 4 connections: 877 a connection and the feed's
        # two, past 800 (the subscriptions alone, 625, passed before, and Consume streams waited unanswered).
        {"query.max_subscriptions": 2500, "grpc.max_concurrent_streams": 800},
        "(top level)",
        "must stay below grpc.max_concurrent_streams",
    ),
    "client-cert-without-tls": (
        {"tls.require_client_cert": True},
        "tls",
        "tls.require_client_cert needs tls.enabled and tls.ca_file",
    ),
    "unknown-flag": ({"flags.bogus_flag.enabled": False}, "flags", "unknown feature flag(s) bogus_flag"),
    "bad-flag-percentage": (
        {"flags.json_payload_validation.percentage": 150},
        "flags.json_payload_validation.percentage",
        "less than or equal to 100",
    ),
}


def load_with(tmp_path: Path, layer: str, values: Mapping[str, Any]) -> tuple[str, Any]:
    """Put `values` into one layer and load; returns (the layer's name in messages, the load thunk)."""
    environ: dict[str, str] = {}
    config_path: Path | None = None
    overrides: list[str] = []
    if layer == "preset":
        environ["ALLSOURCE_PRESET_DIR"] = str(preset_dir(tmp_path, development=values))
        name = "preset development"
    elif layer.startswith("file-"):
        fmt = layer.removeprefix("file-")
        config_path = tmp_path / f"service.{fmt}"
        text = {"toml": toml_text, "yaml": yaml_text, "json": lambda v: json.dumps(nested(v))}[fmt](values)
        config_path.write_text(text)
        name = f"file {config_path}"
    elif layer == "environment":
        environ.update(env_of(values))
        name = "environment"
    else:
        overrides = set_of(values)
        name = "flag --set"
    return name, lambda: load_settings(config_path, environ, overrides=overrides)


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize("layer", LAYERS)
def test_invalid_settings_name_key_and_layer(tmp_path: Path, layer: str, problem: str) -> None:
    values, key, text = PROBLEMS[problem]
    name, load = load_with(tmp_path, layer, values)
    with pytest.raises(SettingsError) as err:
        load()
    assert str(err.value).startswith("invalid settings:")
    line = error_line(err, key)
    assert text in line
    origin = line[line.rindex("(from ") + len("(from ") : -1]
    assert name in origin.split(", "), line


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    cfg = tmp_path / "service.toml"
    cfg.write_text(toml_text({"storage.prot": 1, "ingest.port": "http"}))
    with pytest.raises(SettingsError) as err:
        load_settings(cfg, {"ALLSOURCE_LOG__LEVEL": "chatty"})
    assert error_line(err, "storage.prot").endswith(f"(from file {cfg})")
    assert error_line(err, "ingest.port").endswith(f"(from file {cfg})")
    assert error_line(err, "log.level").endswith("(from environment)")


def test_higher_layer_that_fixes_a_key_clears_the_error(tmp_path: Path) -> None:
    cfg = tmp_path / "service.toml"
    cfg.write_text(toml_text({"query.port": 70000}))
    loaded = load_settings(cfg, {}, overrides=["query.port=7000"])
    assert loaded.settings.query.port == 7000
    assert loaded.sources["query.port"] == "flag --set"


@pytest.mark.parametrize("item", ["nonsense", "=5", "storage.port"])
def test_bad_set_syntax(item: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(environ={}, overrides=[item])
    assert f"--set {item!r}: expected KEY=VALUE" in str(err.value)


def test_set_values_parse_as_json_where_they_look_like_it() -> None:
    loaded = load_settings(
        environ={},
        overrides=[
            "storage.sync_writes=false",
            "query.max_page_size=2000",
            "tracing.sample_ratio=0.25",
            "ingest.host=0.0.0.0",
            "storage.data_dir=/srv/data",
            'flags={"json_payload_validation": {"percentage": 5}}',
        ],
    )
    s = loaded.settings
    assert (s.storage.sync_writes, s.query.max_page_size, s.tracing.sample_ratio) == (False, 2000, 0.25)
    assert (s.ingest.host, s.storage.data_dir) == ("0.0.0.0", "/srv/data")
    assert s.flags["json_payload_validation"].percentage == 5
    assert loaded.sources["flags.json_payload_validation.percentage"] == "flag --set"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "storage.internal"])
def test_the_development_preset_serves_storage_on_loopback_only(host: str) -> None:
    """The development preset runs with published secrets: its storage must not be reachable from elsewhere."""
    with pytest.raises(SettingsError) as err:
        load_settings(environ={"ALLSOURCE_STORAGE__HOST": host})
    assert "storage.host" in str(err.value) and "loopback" in str(err.value)
    for loopback in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert load_settings(environ={"ALLSOURCE_STORAGE__HOST": loopback}).settings.storage.host == loopback
    staged = load_settings(
        environ={
            "ALLSOURCE_STORAGE__HOST": host,
            "ALLSOURCE_INTERNAL__SERVICE_SECRET": "s" * 40,
            "ALLSOURCE_AUTH__API_KEY_PEPPER": "p" * 40,
        },
        preset="staging",
    )
    assert staged.settings.storage.host == host


def test_set_values_convert_like_environment_values() -> None:
    by_flag = load_settings(environ={}, overrides=["storage.data_dir=2024", "storage.port=6000"]).settings
    by_env = load_settings(environ={"ALLSOURCE_STORAGE__DATA_DIR": "2024", "ALLSOURCE_STORAGE__PORT": "6000"}).settings
    assert (
        (by_flag.storage.data_dir, by_flag.storage.port)
        == (by_env.storage.data_dir, by_env.storage.port)
        == ("2024", 6000)
    )


def test_set_key_conflicting_with_a_section_is_reported() -> None:
    with pytest.raises(SettingsError, match=r"--set storage.port conflicts with another setting"):
        load_settings(environ={}, overrides=["storage=1", "storage.port=2"])


def test_source_selecting_variables_are_not_settings(tmp_path: Path) -> None:
    presets = preset_dir(tmp_path)
    loaded = load_settings(
        environ={
            "ALLSOURCE_PRESET_DIR": str(presets),
            "ALLSOURCE_PRESET": "development",
            "ALLSOURCE_SOAK": "1",
            "ALLSOURCE_CONFIG": "",
            "NOT_ALLSOURCE_STORAGE__PORT": "1",
        }
    )
    # Only the required secrets this module supplies (see REQUIRED_SECRETS) are settings here.
    assert set(loaded.sources) == {"internal.service_secret", "auth.api_key_pepper", "auth.bootstrap_admin_password"}
    secrets = {"internal": loaded.settings.internal, "auth": loaded.settings.auth}
    assert loaded.settings == Settings(**secrets)  # everything else is the model's default


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.yaml", "storage: [unclosed\n", "is not valid YAML"),
        ("bad.json", '{"storage": ', "is not valid JSON"),
        ("list.yaml", "- 1\n- 2\n", "must hold a table/object at the top level"),
        ("list.json", "[1, 2]", "must hold a table/object at the top level"),
    ],
)
def test_malformed_yaml_and_json_files(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(SettingsError) as err:
        load_settings(path, {})
    assert f"configuration file {path}" in str(err.value)
    assert message in str(err.value)


def test_empty_yaml_file_is_no_settings(tmp_path: Path) -> None:
    path = tmp_path / "empty.yml"
    path.write_text("")
    assert load_settings(path, {}).settings == load_settings(environ={}).settings


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"cannot read configuration file .*nope\.toml"):
        load_settings(tmp_path / "nope.toml", {})


def test_unresolvable_secret_reference_names_key_and_layer(tmp_path: Path) -> None:
    cfg = tmp_path / "service.toml"
    cfg.write_text(toml_text({"tls.key": "env:NO_SUCH_VARIABLE"}))
    with pytest.raises(SettingsError) as err:
        load_settings(cfg, {})
    line = error_line(err, "tls.key")
    assert "env:NO_SUCH_VARIABLE" in line and "not set" in line and line.endswith(f"(from file {cfg})")
    with pytest.raises(SettingsError) as err:
        load_settings(environ={"ALLSOURCE_TLS__KEY": f"file:{tmp_path / 'missing.pem'}"})
    assert error_line(err, "tls.key").endswith("(from environment)")


# -- the production guard -----------------------------------------------------------------------------

REFUSED = "the production preset refuses insecure settings"


def test_production_refuses_plaintext() -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(environ={}, preset="production")
    assert str(err.value).startswith(REFUSED)
    line = error_line(err, "tls.enabled")
    assert "plaintext is refused" in line and "tls.mesh_sidecar" in line
    assert line.endswith("(from default)")


def test_production_plaintext_refusal_names_the_layer_that_disabled_tls(tmp_path: Path) -> None:
    cfg = tmp_path / "service.toml"
    cfg.write_text(toml_text({"tls.enabled": False}))
    with pytest.raises(SettingsError) as err:
        load_settings(cfg, {}, preset="production")
    assert error_line(err, "tls.enabled").endswith(f"(from file {cfg})")


@pytest.mark.parametrize(
    "how",
    ["set", "environment", "file"],
)
def test_production_accepts_mesh_sidecar(tmp_path: Path, how: str) -> None:
    cfg = None
    environ: dict[str, str] = {}
    overrides: list[str] = []
    if how == "set":
        overrides = ["tls.mesh_sidecar=true"]
    elif how == "environment":
        environ["ALLSOURCE_TLS__MESH_SIDECAR"] = "true"
    else:
        cfg = tmp_path / "service.toml"
        cfg.write_text(toml_text({"tls.mesh_sidecar": True}))
    loaded = load_settings(cfg, environ, preset="production", overrides=overrides)
    assert loaded.settings.tls.mesh_sidecar is True
    assert config.production_problems(loaded.settings, loaded.sources) == []


def write_inline_secret_file(tmp_path: Path, suffix: str = "toml") -> Path:
    cfg = tmp_path / f"service.{suffix}"
    values = {"tls.mesh_sidecar": True, "tls.key": INLINE_PEM}
    cfg.write_text(toml_text(values) if suffix == "toml" else yaml_text(values))
    return cfg


@pytest.mark.parametrize("suffix", ["toml", "yaml"])
def test_production_refuses_inline_secret_in_file_without_echoing_it(tmp_path: Path, suffix: str) -> None:
    cfg = write_inline_secret_file(tmp_path, suffix)
    with pytest.raises(SettingsError) as err:
        load_settings(cfg, {}, preset="production")
    message = str(err.value)
    assert message.startswith(REFUSED)
    line = error_line(err, "tls.key")
    assert "a secret written into a configuration file" in line
    assert line.endswith(f"(from file {cfg})")
    assert "tls.enabled" not in message  # mesh_sidecar covers transport
    assert SECRET_MARKER not in message
    assert "BEGIN PRIVATE KEY" not in message
    assert SECRET_MARKER not in repr(err.value)


def test_production_refuses_inline_secret_in_preset(tmp_path: Path) -> None:
    presets = preset_dir(tmp_path, production={"tls.mesh_sidecar": True, "tls.key": INLINE_PEM})
    with pytest.raises(SettingsError) as err:
        load_settings(environ={"ALLSOURCE_PRESET_DIR": str(presets)}, preset="production")
    assert error_line(err, "tls.key").endswith("(from preset production)")
    assert SECRET_MARKER not in str(err.value)


def test_production_refuses_inline_vault_token_in_file(tmp_path: Path) -> None:
    cfg = tmp_path / "service.toml"
    cfg.write_text(toml_text({"tls.mesh_sidecar": True, "secrets.vault_token": "hvs.not-a-real-token"}))
    with pytest.raises(SettingsError) as err:
        load_settings(cfg, {}, preset="production")
    assert error_line(err, "secrets.vault_token").endswith(f"(from file {cfg})")
    assert "hvs.not-a-real-token" not in str(err.value)


def test_production_lists_every_problem(tmp_path: Path) -> None:
    cfg = tmp_path / "service.toml"
    cfg.write_text(toml_text({"tls.key": INLINE_PEM}))
    with pytest.raises(SettingsError) as err:
        load_settings(cfg, {}, preset="production")
    error_line(err, "tls.enabled")
    error_line(err, "tls.key")
    assert SECRET_MARKER not in str(err.value)


def test_production_accepts_the_secret_as_a_file_reference(tmp_path: Path) -> None:
    pem = tmp_path / "key.pem"
    pem.write_text(INLINE_PEM + "\n")
    cfg = tmp_path / "service.toml"
    cfg.write_text(toml_text({"tls.mesh_sidecar": True, "tls.key": f"file:{pem}"}))
    loaded = load_settings(cfg, {}, preset="production")
    assert loaded.settings.tls.key is not None
    assert loaded.settings.tls.key.get_secret_value() == INLINE_PEM  # trailing newline dropped
    assert loaded.sources["tls.key"] == f"file {cfg} (file:{pem})"


def test_production_accepts_the_secret_as_an_env_reference(tmp_path: Path) -> None:
    cfg = tmp_path / "service.toml"
    cfg.write_text(toml_text({"tls.mesh_sidecar": True, "tls.key": "env:TLS_KEY_PEM"}))
    loaded = load_settings(cfg, {"TLS_KEY_PEM": INLINE_PEM}, preset="production")
    assert loaded.settings.tls.key is not None
    assert loaded.settings.tls.key.get_secret_value() == INLINE_PEM
    assert loaded.sources["tls.key"] == f"file {cfg} (env:TLS_KEY_PEM)"
    assert SECRET_MARKER not in json.dumps(loaded.sources)


def test_production_accepts_full_tls_with_a_referenced_key(tmp_path: Path) -> None:
    loaded = load_settings(
        environ={"TLS_KEY_PEM": INLINE_PEM},
        preset="production",
        overrides=["tls.enabled=true", "tls.cert_file=/etc/allsource/cert.pem", "tls.key=env:TLS_KEY_PEM"],
    )
    assert loaded.settings.tls.enabled is True


def test_production_does_not_refuse_inline_secrets_outside_files() -> None:
    # The guard is about secrets committed to configuration files; the environment and --set are not files.
    by_env = load_settings(
        environ={"ALLSOURCE_TLS__KEY": INLINE_PEM}, preset="production", overrides=["tls.mesh_sidecar=true"]
    )
    assert by_env.sources["tls.key"] == "environment (inline)"
    by_set = load_settings(environ={}, preset="production", overrides=["tls.mesh_sidecar=true", "tls.key=abc"])
    assert by_set.sources["tls.key"] == "flag --set (inline)"


@pytest.mark.parametrize("preset", ["development", "staging"])
def test_other_presets_accept_what_production_refuses(tmp_path: Path, preset: str) -> None:
    assert load_settings(environ={}, preset=preset).settings.tls.enabled is False
    cfg = tmp_path / "service.toml"
    cfg.write_text(toml_text({"tls.key": INLINE_PEM, "secrets.vault_token": "hvs.inline"}))
    loaded = load_settings(cfg, {}, preset=preset)
    assert loaded.settings.tls.key is not None
    assert loaded.settings.tls.key.get_secret_value() == INLINE_PEM
    assert loaded.sources["tls.key"] == f"file {cfg} (inline)"
    assert loaded.sources["secrets.vault_token"] == f"file {cfg} (inline)"
    assert SECRET_MARKER not in json.dumps(loaded.sources)
    # ...and the same settings are problems under the production guard.
    problems = config.production_problems(loaded.settings, loaded.sources)
    writes_key = ["auth.bootstrap_api_key"] if preset == "development" else []
    assert [p.split(":")[0] for p in problems] == ["tls.enabled", "secrets.vault_token", "tls.key", *writes_key]


# -- reloadable keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "log.level",
        "log.access_log",
        "limits.max_event_bytes",
        "query.max_page_size",
        "query.default_page_size",
        "storage.sync_writes",
        "grpc.storage_timeout_s",
        "flags",
        "flags.json_payload_validation.enabled",
        "flags.entity_state_snapshots.percentage",
        "flags_refresh_s",
    ],
)
def test_reloadable_keys(key: str) -> None:
    assert is_reloadable(key) is True


@pytest.mark.parametrize(
    "key",
    [
        "storage.port",
        "storage.host",
        "storage.data_dir",
        "grpc.max_message_bytes",
        "grpc.event_loop",
        "tls.enabled",
        "tls.key",
        "tracing.exporter",
        "tracing.enabled",
        "storage",
        "no.such.key",
    ],
)
def test_restart_only_keys(key: str) -> None:
    assert is_reloadable(key) is False


# -- reload diffs -------------------------------------------------------------------------------------


def test_changed_keys_and_with_values_of() -> None:
    old = load_settings(environ={"ALLSOURCE_TLS__KEY": "env:KEY_PEM", "KEY_PEM": "key-v1"}).settings
    new = load_settings(
        environ={
            "ALLSOURCE_TLS__KEY": "env:KEY_PEM",
            "KEY_PEM": "key-v2",  # same reference, rotated secret
            "ALLSOURCE_LOG__LEVEL": "debug",
            "ALLSOURCE_STORAGE__PORT": "6000",
            "ALLSOURCE_QUERY__MAX_PAGE_SIZE": "2000",
        }
    ).settings
    assert changed_keys(old, old) == set()
    assert changed_keys(old, new) == {"tls.key", "log.level", "storage.port", "query.max_page_size"}
    assert changed_keys(new, old) == changed_keys(old, new)

    applied = with_values_of(old, new, {"log.level", "tls.key", "query.max_page_size"})
    assert isinstance(applied, Settings)
    assert applied.log.level == "DEBUG"
    assert applied.query.max_page_size == 2000
    assert applied.tls.key is not None and applied.tls.key.get_secret_value() == "key-v2"
    assert applied.storage.port == old.storage.port == 50054  # not chosen: kept
    assert changed_keys(applied, new) == {"storage.port"}
    # The inputs are not modified.
    assert old.log.level == "INFO" and old.tls.key is not None and old.tls.key.get_secret_value() == "key-v1"
    assert with_values_of(old, new, set()) == old


def test_same_secret_behind_a_different_reference_is_unchanged() -> None:
    a = load_settings(environ={"ALLSOURCE_TLS__KEY": "env:A", "A": "same"}).settings
    b = load_settings(environ={"ALLSOURCE_TLS__KEY": "env:B", "B": "same"}).settings
    assert changed_keys(a, b) == set()


def test_secret_removed_or_added_is_a_change() -> None:
    without = load_settings(environ={}).settings
    with_key = load_settings(environ={"ALLSOURCE_TLS__KEY": "k"}).settings
    assert changed_keys(without, with_key) == {"tls.key"}
    assert with_values_of(with_key, without, {"tls.key"}).tls.key is None


def test_flag_configuration_changes_are_per_key() -> None:
    base = load_settings(environ={}).settings
    flagged = load_settings(environ={"ALLSOURCE_FLAGS__JSON_PAYLOAD_VALIDATION__PERCENTAGE": "25"}).settings
    changed = changed_keys(base, flagged)
    assert "flags.json_payload_validation.percentage" in changed
    assert all(is_reloadable(k) for k in changed)
    applied = with_values_of(base, flagged, changed)
    assert applied.flags == flagged.flags
    assert with_values_of(flagged, base, changed_keys(flagged, base)).flags == {}


def test_removing_one_flag_of_several_is_applied() -> None:
    both = load_settings(
        environ={
            "ALLSOURCE_FLAGS__JSON_PAYLOAD_VALIDATION__PERCENTAGE": "10",
            "ALLSOURCE_FLAGS__ENTITY_STATE_SNAPSHOTS__PERCENTAGE": "20",
        }
    ).settings
    one = load_settings(environ={"ALLSOURCE_FLAGS__JSON_PAYLOAD_VALIDATION__PERCENTAGE": "10"}).settings
    applied = with_values_of(both, one, changed_keys(both, one))
    assert applied.flags == one.flags


def test_with_values_of_validates_the_result() -> None:
    old = load_settings(environ={}).settings  # default_page_size 100, max_page_size 1000
    new = load_settings(
        environ={"ALLSOURCE_QUERY__DEFAULT_PAGE_SIZE": "10", "ALLSOURCE_QUERY__MAX_PAGE_SIZE": "50"}
    ).settings
    with pytest.raises(ValidationError, match="default_page_size must not exceed max_page_size"):
        with_values_of(old, new, {"query.max_page_size"})
    both = with_values_of(old, new, {"query.max_page_size", "query.default_page_size"})
    assert (both.query.default_page_size, both.query.max_page_size) == (10, 50)


# -- entries (the configuration dump) -----------------------------------------------------------------


def test_entries_cover_every_key_once_with_secrets_redacted() -> None:
    loaded = load_settings(
        environ={
            "ALLSOURCE_TLS__KEY": INLINE_PEM,
            "ALLSOURCE_LOG__LEVEL": "debug",
            "ALLSOURCE_LIMITS__REDIS_URL": "redis://:pw@127.0.0.1:6379/0",
            "ALLSOURCE_BACKUP__S3_ACCESS_KEY_ID": "AKIAEXAMPLE",
            "ALLSOURCE_BACKUP__S3_SECRET_ACCESS_KEY": "example-secret",
        }
    )
    rows = entries(loaded, {})
    keys = [row[0] for row in rows]
    assert keys == sorted(keys)
    assert len(keys) == len(set(keys))
    assert set(keys) == set(config.flatten(Settings().model_dump()))
    assert set(config._FIELDS) == set(keys)  # no flags configured: "flags" is one (empty) leaf
    assert SECRET_KEYS == {
        "tls.key",
        "limits.redis_url",
        "secrets.vault_token",
        "auth.api_key_pepper",
        "auth.bootstrap_admin_password",
        "internal.service_secret",
        "backup.s3_access_key_id",
        "backup.s3_secret_access_key",
    }
    by_key = {row[0]: row for row in rows}
    for key, value, source, reloadable, secret, pending in rows:
        assert secret is (key in SECRET_KEYS), key
        assert reloadable is is_reloadable(key), key
        assert pending == ""
        json.loads(value)
        if key not in loaded.sources:
            assert source == "default", key
        else:
            assert source == loaded.sources[key]
    for key in SECRET_KEYS:
        assert by_key[key][1] == json.dumps(REDACTED)
    assert by_key["tls.key"][2] == "environment (inline)"
    assert by_key["secrets.vault_token"][2] == "default"
    assert by_key["storage.port"][1:3] == ("50054", "default")
    assert by_key["storage.data_dir"][1:3] == ('"./data"', "preset development")
    assert by_key["log.level"][1:3] == ('"DEBUG"', "environment")
    assert by_key["flags"][1] == "{}"
    assert SECRET_MARKER not in json.dumps(rows)


def test_entries_show_configured_flags_and_redact_pending_secrets() -> None:
    loaded = load_settings(
        environ={"ALLSOURCE_FLAGS__ENTITY_STATE_SNAPSHOTS__ENABLED": "false", "ALLSOURCE_TLS__KEY": "old"}
    )
    pending = {"tls.key": "new-plain-secret", "storage.port": 6000, "secrets.vault_token": SecretStr("x")}
    rows = {row[0]: row for row in entries(loaded, pending)}
    assert "flags" not in rows
    assert rows["flags.entity_state_snapshots.enabled"][1:4] == ("false", "environment", True)
    assert rows["flags.entity_state_snapshots.percentage"][2] == "default"
    assert rows["tls.key"][5] == json.dumps(REDACTED)
    assert rows["secrets.vault_token"][5] == json.dumps(REDACTED)
    assert rows["storage.port"][5] == "6000"
    assert rows["log.level"][5] == ""
    assert "new-plain-secret" not in json.dumps(list(rows.values()))
