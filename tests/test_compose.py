"""Static checks of the container definitions: docker-compose.yml, Dockerfile, .dockerignore and the
health probe they rely on. No Docker engine is needed.

- docker-compose.yml validates against the Compose Specification schema (vendored in check-jsonschema),
  and a deliberately misspelled copy does not, so the schema check cannot pass vacuously;
- the AllSource services are wired the way the code expects: every ALLSOURCE_* key is a real setting,
  each service binds 0.0.0.0, dials storage (and admin its peers) by compose service name, is health
  checked over grpc.health.v1 on its own port, and only publishes ports on 127.0.0.1;
- the Dockerfile runs console scripts that pyproject defines, as a non-root user, and copies files that
  exist and are not dockerignored;
- tools/health_probe.py exits 0 only on SERVING, and fails fast when nothing answers.
"""

from __future__ import annotations

import copy
import fnmatch
import importlib.resources
import json
import re
import shlex
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator, Mapping
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import jsonschema
import pytest
import yaml
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from services.suite import ORDER, SERVICE_NAMES
from shared.config.loader import DEVELOPMENT_SECRETS, SettingsError, load_settings
from shared.config.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PROBE = ROOT / "tools" / "health_probe.py"
PUBLIC = ("ingest", "query", "admin")


# --- loading ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    # safe_load resolves the file's anchors and `<<` merge keys the way Compose does.
    doc = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="module")
def compose_validator() -> jsonschema.Draft202012Validator:
    text = (importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text()
    schema = json.loads(text)
    # The schema relies on draft 2020-12 keywords (unevaluatedProperties rejects unknown service keys);
    # an older draft's validator would silently ignore them.
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def _errors(validator: jsonschema.Draft202012Validator, doc: Any) -> list[str]:
    return [
        f"{'/'.join(str(p) for p in err.absolute_path) or '(root)'}: {err.message}"
        for err in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    ]


def _environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A compose service's environment (dict or KEY=VALUE list form) as strings."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {
        key: "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        for key, value in env.items()
    }


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        keyword, _, args = pending.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        pending = ""
    assert not pending, "Dockerfile ends inside a continued line"
    return instructions


def _final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert starts, "Dockerfile has no FROM"
    return instructions[starts[-1] :]


def _image_env(instructions: list[tuple[str, str]]) -> dict[str, str]:
    """ENV of the runtime stage (KEY=VALUE form)."""
    env: dict[str, str] = {}
    for keyword, args in _final_stage(instructions):
        if keyword == "ENV":
            for item in shlex.split(args):
                key, sep, value = item.partition("=")
                assert sep, f"use ENV KEY=VALUE form: {args}"
                env[key] = value
    return env


def _effective_env(compose: Mapping[str, Any], name: str, instructions: list[tuple[str, str]]) -> dict[str, str]:
    """What the service's process sees: the image's ENV overlaid by the compose environment."""
    env = {k: v for k, v in _image_env(instructions).items() if k.startswith("ALLSOURCE_")}
    env.update(_environment(compose["services"][name]))
    return env


SECRETS_MOUNT = "/run/allsource/secrets"


@pytest.fixture(scope="module")
def secrets_dir(compose: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The secrets volume as the one-shot `secrets` service fills it (its own command, run here)."""
    folder = tmp_path_factory.mktemp("secrets")
    command = compose["services"]["secrets"]["command"]
    assert command[:2] == ["python", "-c"]
    exec(command[2].replace(SECRETS_MOUNT, str(folder)), {})
    return folder


@pytest.fixture(scope="module")
def settings(compose: dict[str, Any], dockerfile: list[tuple[str, str]], secrets_dir: Path) -> dict[str, Settings]:
    """Each AllSource service's settings, built from its container environment the way it starts."""
    out = {}
    for name in ORDER:
        env = {
            k: v.replace(SECRETS_MOUNT, str(secrets_dir)) for k, v in _effective_env(compose, name, dockerfile).items()
        }
        try:
            out[name] = load_settings(environ=env).settings
        except SettingsError as exc:
            pytest.fail(f"service {name!r}: {exc}")
    return out


def test_secrets_are_generated_per_deployment_and_never_the_development_ones(
    compose: dict[str, Any], settings: dict[str, Settings], secrets_dir: Path
) -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for development_value in DEVELOPMENT_SECRETS.values():
        assert development_value not in text
    generated = {p.name: p.read_text() for p in secrets_dir.iterdir()}
    assert set(generated) == {"service_secret", "api_key_pepper"} and all(len(v) == 64 for v in generated.values())
    for name in ORDER:
        s = settings[name]
        assert s.internal.service_secret is not None and s.auth.api_key_pepper is not None
        assert s.internal.service_secret.get_secret_value() == generated["service_secret"]
        assert s.auth.api_key_pepper.get_secret_value() == generated["api_key_pepper"]
        assert _environment(compose["services"][name]).get("ALLSOURCE_PRESET") == "staging"
        depends = compose["services"][name].get("depends_on", {})
        if name == "storage":
            assert depends["secrets"]["condition"] == "service_completed_successfully"
    assert settings["admin"].auth.bootstrap_api_key is True
    admin_mounts = {v["target"]: v for v in compose["services"]["admin"]["volumes"]}
    assert admin_mounts[settings["admin"].storage.data_dir]["type"] == "volume"


def _exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), f"not exec form: {args}"
    return value


def _probe_path(instructions: list[tuple[str, str]]) -> str:
    """Where the Dockerfile puts tools/health_probe.py in the image."""
    for keyword, args in _final_stage(instructions):
        if keyword == "COPY" and not args.startswith("--from"):
            parts = args.split()
            if "tools/health_probe.py" in parts[:-1]:
                dest = parts[-1]
                return dest + "health_probe.py" if dest.endswith("/") else dest
    pytest.fail("the runtime stage does not COPY tools/health_probe.py")


def _duration_s(value: str) -> float:
    """A Compose duration ("1m30s", "20s", "500ms") in seconds."""
    units = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)", value)
    assert parts and "".join(n + u for n, u in parts) == value, f"not a compose duration: {value!r}"
    return sum(float(n) * units[u] for n, u in parts)


def _published(port: Any) -> tuple[str, str, str]:
    """(host_ip, published, target) of one `ports` entry, short or long syntax."""
    if isinstance(port, Mapping):
        return str(port.get("host_ip", "")), str(port.get("published", "")), str(port["target"])
    text = str(port).split("/", 1)[0]
    match = re.fullmatch(r"(?:(\[[^\]]+\]|[^:]+):)?(?:([^:]*):)?([^:]+)", text)
    assert match, f"unparseable port {port!r}"
    ip, published, target = match.groups()
    if published is None and ip is not None:  # "HOST:CONTAINER"
        ip, published = None, ip
    return ip or "", published or "", target


# --- (a, b) the Compose Specification ------------------------------------------------------------------


def test_compose_file_matches_the_compose_spec(compose: dict[str, Any], compose_validator: Any) -> None:
    errors = _errors(compose_validator, compose)
    assert not errors, "docker-compose.yml does not match the Compose Specification:\n" + "\n".join(errors)


@pytest.mark.parametrize(
    ("where", "good", "bad"),
    [
        (("services", "storage"), "volumes", "volumez"),  # a misspelled service key
        (("services", "ingest", "healthcheck"), "interval", "intervall"),  # a misspelled nested key
        ((), "services", "servicez"),  # a misspelled top-level key
    ],
)
def test_misspelled_keys_fail_the_schema(
    compose: dict[str, Any], compose_validator: Any, where: tuple[str, ...], good: str, bad: str
) -> None:
    """Negative control: the schema check must be able to fail, or the test above proves nothing."""
    broken = copy.deepcopy(compose)
    node = broken
    for key in where:
        node = node[key]
    node[bad] = node.pop(good)
    errors = _errors(compose_validator, broken)
    assert any(bad in e for e in errors), f"misspelled key {bad!r} was accepted; errors: {errors}"


# --- (c) how the AllSource services are wired -------------------------------------------------------------


def test_the_four_services_exist_and_run_from_one_image(compose: dict[str, Any]) -> None:
    services = compose["services"]
    missing = [name for name in ORDER if name not in services]
    assert not missing, f"missing services: {missing}"
    images = {services[name].get("image") for name in ORDER}
    assert len(images) == 1 and None not in images, f"expected one image name for all four, got {images}"
    for name in ORDER:
        build = services[name].get("build")
        context = build if isinstance(build, str) else (build or {}).get("context")
        assert context in (".", "./"), f"{name}: build the image from the repository root"


def test_every_allsource_variable_is_a_real_setting(compose: dict[str, Any], settings: dict[str, Settings]) -> None:
    """Building Settings from each service's environment raises SettingsError on an unknown key."""
    for name, service in compose["services"].items():
        if name in ORDER:
            continue  # validated by the `settings` fixture
        stray = [k for k in _environment(service) if k.startswith("ALLSOURCE_")]
        assert not stray, f"{name} is not an AllSource service but sets {stray}"
    # A typo must be caught the same way, or this test proves nothing.
    with pytest.raises(SettingsError, match="unknown key"):
        load_settings(environ={"ALLSOURCE_STORAGE__DATADIR": "/x"})


def test_services_bind_all_interfaces_and_dial_by_service_name(
    compose: dict[str, Any], settings: dict[str, Settings]
) -> None:
    for name in ORDER:
        assert getattr(settings[name], name).host == "0.0.0.0", f"{name} must bind 0.0.0.0 inside its container"
    storage_port = settings["storage"].storage.port
    for name in PUBLIC:
        assert settings[name].storage.dial() == f"storage:{storage_port}", f"{name} dials storage elsewhere"
    for peer in PUBLIC:  # admin's GetSystemInfo checks each public service
        peer_port = getattr(settings[peer], peer).port
        assert getattr(settings["admin"], peer).dial() == f"{peer}:{peer_port}", f"admin dials {peer} elsewhere"


def test_command_runs_the_matching_console_script(compose: dict[str, Any]) -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for name in ORDER:
        command = compose["services"][name].get("command")
        argv = shlex.split(command) if isinstance(command, str) else command
        assert argv and argv[0] == f"allsource-{name}", f"{name}: command should be allsource-{name}, got {command!r}"
        assert scripts.get(argv[0]) == f"services.{name}.main:main"


def test_healthchecks_use_the_grpc_probe_on_the_service_port(
    compose: dict[str, Any], settings: dict[str, Settings], dockerfile: list[tuple[str, str]]
) -> None:
    probe = _probe_path(dockerfile)
    for name in ORDER:
        check = compose["services"][name].get("healthcheck") or {}
        test = check.get("test")
        assert isinstance(test, list) and test[:1] == ["CMD"], f"{name}: healthcheck test should be exec form"
        assert probe in test, f"{name}: healthcheck does not run the probe at {probe}: {test}"
        assert not check.get("disable"), f"{name}: healthcheck disabled"
        args = test[test.index(probe) + 1 :]
        positional, skip = [], False
        for arg in args:
            if skip:
                skip = False
            elif arg.startswith("--"):
                skip = "=" not in arg
            else:
                positional.append(arg)
        port = getattr(settings[name], name).port
        assert positional == [str(port), SERVICE_NAMES[name]], f"{name}: probe arguments {args}"
        # The probe's own deadline (default 2s) has to fit in the check's timeout.
        assert _duration_s(check.get("timeout", "30s")) > 2.0


def test_storage_keeps_its_data_in_the_named_volume(
    compose: dict[str, Any], settings: dict[str, Settings], dockerfile: list[tuple[str, str]]
) -> None:
    data_dir = settings["storage"].storage.data_dir
    assert data_dir.startswith("/"), f"storage data_dir must be absolute in the container, got {data_dir!r}"
    mounts = []
    for volume in compose["services"]["storage"].get("volumes", []):
        if isinstance(volume, str):
            source, _, rest = volume.partition(":")
            mounts.append(("volume" if not source.startswith((".", "/", "~")) else "bind", source, rest.split(":")[0]))
        else:
            mounts.append((volume.get("type", "volume"), volume.get("source"), volume.get("target")))
    named = [(src, target) for kind, src, target in mounts if kind == "volume" and target == data_dir]
    assert named, f"storage: no named volume mounted at {data_dir}; mounts: {mounts}"
    assert named[0][0] in (compose.get("volumes") or {}), f"volume {named[0][0]!r} is not declared at the top level"
    declared = [
        path
        for keyword, args in _final_stage(dockerfile)
        if keyword == "VOLUME"
        for path in (_exec_form(args) if args.startswith("[") else args.split())
    ]
    assert data_dir in declared, f"the Dockerfile does not declare VOLUME {data_dir}"


def test_public_services_wait_for_healthy_storage(compose: dict[str, Any]) -> None:
    for name in PUBLIC:
        depends = compose["services"][name].get("depends_on")
        assert isinstance(depends, Mapping), f"{name}: depends_on must use the long form with a condition"
        assert (depends.get("storage") or {}).get("condition") == "service_healthy", f"{name}: not gated on storage"


def test_ports_are_published_on_loopback_only(compose: dict[str, Any], settings: dict[str, Settings]) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            host_ip, published, _ = _published(port)
            assert host_ip == "127.0.0.1", f"{name}: port {port!r} is not bound to 127.0.0.1"
            assert published, f"{name}: port {port!r} needs an explicit host port"
    for name in PUBLIC:
        targets = {_published(p)[2] for p in compose["services"][name].get("ports", [])}
        assert str(getattr(settings[name], name).port) in targets, f"{name}: its port is not published"


def test_stop_grace_period_outlasts_the_drain(compose: dict[str, Any], settings: dict[str, Settings]) -> None:
    for name in ORDER:
        grace = settings[name].grpc.shutdown_grace_s
        period = compose["services"][name].get("stop_grace_period", "10s")  # Docker's default is 10s
        assert _duration_s(period) > grace, f"{name}: stop_grace_period {period} <= shutdown grace {grace}s"


def test_traces_go_to_the_collector(compose: dict[str, Any], settings: dict[str, Settings]) -> None:
    services = compose["services"]
    collectors = [n for n, s in services.items() if "opentelemetry-collector" in str(s.get("image", ""))]
    assert collectors, "no OpenTelemetry collector service"
    assert "redis" in services and "redis" in str(services["redis"].get("image", ""))
    for name in ORDER:
        tracing = settings[name].tracing
        host, _, port = tracing.otlp_endpoint.rpartition(":")
        assert tracing.enabled and tracing.exporter == "otlp", f"{name}: traces are not exported"
        assert host in collectors and port == "4317", f"{name}: otlp_endpoint {tracing.otlp_endpoint}"
    # The collector's config is mounted from the repository and receives OTLP/gRPC on every interface.
    collector = services[collectors[0]]
    mounts = [m for m in collector.get("volumes", []) if isinstance(m, Mapping) and m.get("type") == "bind"]
    assert mounts, "collector config is not bind-mounted"
    config_file = (ROOT / mounts[0]["source"]).resolve()
    assert config_file.is_file(), f"{config_file} does not exist"
    assert f"--config={mounts[0]['target']}" in collector.get("command", [])
    config = yaml.safe_load(config_file.read_text())
    assert config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] == "0.0.0.0:4317"
    pipeline = config["service"]["pipelines"]["traces"]
    assert "otlp" in pipeline["receivers"] and "debug" in pipeline["exporters"]
    assert set(pipeline["exporters"]) <= set(config["exporters"])


# --- (d) the Dockerfile -------------------------------------------------------------------------------


def test_dockerfile_runs_defined_console_scripts(dockerfile: list[tuple[str, str]]) -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    final = _final_stage(dockerfile)
    commands = {keyword: _exec_form(args) for keyword, args in final if keyword in ("CMD", "ENTRYPOINT")}
    assert "CMD" in commands or "ENTRYPOINT" in commands, "the image has no CMD or ENTRYPOINT"
    argv = commands.get("ENTRYPOINT") or commands["CMD"]
    assert argv[0] in scripts, f"{argv[0]!r} is not a console script in pyproject [project.scripts]"


def test_dockerfile_builds_a_non_root_image_of_the_package(dockerfile: list[tuple[str, str]]) -> None:
    args = dict(a.partition("=")[::2] for k, a in dockerfile if k == "ARG")
    stages: set[str] = set()
    bases = []
    for keyword, line in dockerfile:
        if keyword == "FROM":
            words = line.split()
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), words[0])
            if image not in stages:  # FROM <earlier stage> is not a base image
                bases.append(image)
            if len(words) == 3 and words[1].upper() == "AS":
                stages.add(words[2])
    assert bases and all(b == "python:3.11-slim" for b in bases), f"base images: {bases}"
    runs = " ".join(a for k, a in dockerfile if k == "RUN")
    assert re.search(r"pip install (--\S+ )*\.(\s|$)", runs), "the package is not installed with `pip install .`"
    assert "-e " not in runs and "--editable" not in runs
    users = [a for k, a in _final_stage(dockerfile) if k == "USER"]
    assert users, "the image runs as root (no USER)"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"USER {users[-1]} is root"
    exposed = " ".join(a for k, a in _final_stage(dockerfile) if k == "EXPOSE")
    ports: set[int] = set()
    for item in exposed.split():
        low, _, high = item.split("/")[0].partition("-")
        ports.update(range(int(low), int(high or low) + 1))
    assert {50051, 50052, 50053, 50054} <= ports, f"EXPOSE {exposed}"
    # Every ALLSOURCE_* default baked into the image must be a real setting too.
    load_settings(environ={k: v for k, v in _image_env(dockerfile).items() if k.startswith("ALLSOURCE_")})


def _dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore excludes path (or a parent). Approximates Docker's matcher; no `!` support."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        pattern = pattern.strip("/")
        if pattern.startswith("**/"):
            names = [c.split("/")[-1] for c in candidates] + candidates
            if any(fnmatch.fnmatchcase(n, pattern[3:]) for n in names):
                return True
        elif any(fnmatch.fnmatchcase(c, pattern) for c in candidates):
            return True
    return False


def test_dockerfile_copies_files_that_exist_and_are_not_ignored(dockerfile: list[tuple[str, str]]) -> None:
    patterns = [p.strip() for p in DOCKERIGNORE.read_text().splitlines() if p.strip() and not p.startswith("#")]
    assert not any(p.startswith("!") for p in patterns), "extend _dockerignored for `!` exceptions"
    for ignored in (".venv", "node_modules", "data", ".git", "tests", "bench/results"):
        assert _dockerignored(ignored, patterns), f".dockerignore does not exclude {ignored}"
    for keyword, args in dockerfile:
        if keyword not in ("COPY", "ADD") or "--from" in args:
            continue
        sources = [s for s in args.split()[:-1] if not s.startswith("--")]
        for source in sources:
            source = source.rstrip("/")
            if any(ch in source for ch in "*?["):
                continue  # optional files (README.m[d])
            assert (ROOT / source).exists(), f"{keyword} {source}: no such file"
            assert not _dockerignored(source, patterns), f"{keyword} {source}: excluded by .dockerignore"


# --- the health probe ---------------------------------------------------------------------------------


def _run_probe(*args: str) -> tuple[int, float]:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, str(PROBE), *args], capture_output=True, timeout=30)
    return proc.returncode, time.monotonic() - started


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def health_server() -> Iterator[int]:
    """A gRPC server with only grpc.health.v1: "" and Ingest SERVING, Query NOT_SERVING."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    servicer.set(SERVICE_NAMES["ingest"], health_pb2.HealthCheckResponse.SERVING)
    servicer.set(SERVICE_NAMES["query"], health_pb2.HealthCheckResponse.NOT_SERVING)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port
    finally:
        server.stop(0)


@pytest.mark.parametrize(
    ("service", "status"),
    [("", 0), (SERVICE_NAMES["ingest"], 0), (SERVICE_NAMES["query"], 1), ("no.such.Service", 1)],
)
def test_probe_is_healthy_only_on_serving(health_server: int, service: str, status: int) -> None:
    assert _run_probe(str(health_server), service)[0] == status


def test_probe_fails_fast_when_nothing_listens() -> None:
    code, took = _run_probe(str(_free_port()), SERVICE_NAMES["storage"], "--timeout", "5")
    assert code == 1
    assert took < 4, f"a refused connection took {took:.1f}s (should not wait out the deadline)"


def test_probe_gives_up_at_its_deadline() -> None:
    with socket.socket() as silent:  # accepts TCP connections but never speaks HTTP/2
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        code, took = _run_probe(str(silent.getsockname()[1]), "--timeout", "0.5")
    assert code == 1
    assert took < 10


def test_probe_usage_error_is_unhealthy_not_reserved() -> None:
    # Docker reserves health-check exit status 2; argparse would use it.
    assert _run_probe()[0] == 1
    assert _run_probe("not-a-port")[0] == 1


def test_the_systemd_unit_supervises_each_service(settings: dict[str, Settings]) -> None:
    import configparser

    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(ROOT / "deploy" / "systemd" / "allsource@.service")
    service = unit["Service"]
    assert service["Restart"] == "on-failure" and float(service["RestartSec"]) <= 5
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    command = service["ExecStart"].split()
    assert command[0].endswith("allsource-%i") and "--preset" in command
    for name in ("storage", "ingest", "query", "admin"):
        assert f"allsource-{name}" in scripts
    production = load_settings(
        environ={
            "ALLSOURCE_INTERNAL__SERVICE_SECRET": "env:X",
            "ALLSOURCE_AUTH__API_KEY_PEPPER": "env:Y",
            "ALLSOURCE_AUTH__BOOTSTRAP_ADMIN_PASSWORD": "env:Z",
            "ALLSOURCE_TLS__MESH_SIDECAR": "true",
            "X": "x" * 40,
            "Y": "y" * 40,
            "Z": "z" * 40,
        },
        preset="production",
    ).settings
    assert int(service["TimeoutStopSec"]) > production.grpc.shutdown_grace_s
    assert int(unit["Unit"]["StartLimitBurst"]) > 1
