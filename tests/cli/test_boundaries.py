"""allsource-cli is a client of the public API only, and its environment variables do not upset a service
started from the same shell."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from services.cli.errors import UsageProblem
from services.cli.profiles import CONFIG_EXAMPLE, load_profile
from shared.config.loader import load_settings
from tests.harness import ROOT

CLI_PACKAGE = ROOT / "services" / "cli"
# The public API's stubs and the client package, the CLI's own libraries, and shared/core's helpers.
ALLOWED = (
    "allsource.v1",
    "allsource_client",
    "google.protobuf",
    "google.rpc",
    "grpc",
    "grpc_health.v1",
    "click",
    "rich",
    "prompt_toolkit",
    "yaml",
    "orjson",
    "services.cli",
    "shared.core",
)


def imported_modules(path: str) -> set[str]:
    tree = ast.parse(open(path).read())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_the_cli_imports_only_the_public_api() -> None:
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    outside = sorted(
        f"{path.relative_to(ROOT)} imports {module}"
        for path in CLI_PACKAGE.rglob("*.py")
        for module in imported_modules(str(path))
        if module.split(".")[0] not in stdlib
        and not any(module == allowed or module.startswith(f"{allowed}.") for allowed in ALLOWED)
    )
    assert not outside, "allsource-cli must use the public API only:\n" + "\n".join(outside)
    assert len(list(CLI_PACKAGE.rglob("*.py"))) > 10


def test_services_accept_the_cli_variables_in_their_environment() -> None:
    loaded = load_settings(environ={"ALLSOURCE_API_KEY": "as_x_y", "ALLSOURCE_PROFILE": "prod"})
    assert "api_key" not in loaded.sources and "profile" not in loaded.sources


def test_the_example_profile_loads_and_a_wrong_key_is_named(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG_EXAMPLE)
    local = load_profile(None, config)
    assert (local.name, local.tenant, local.address("admin")) == ("local", "acme", "localhost:50053")
    assert local.api_key_file == str(Path("~/.allsource/key").expanduser())
    config.write_text('[profiles.x]\ntls = "yes"\n')
    with pytest.raises(UsageProblem, match=r"profiles\.x\.tls .* must be a bool"):
        load_profile("x", config)
    config.write_text("[profiles.x]\nport = 1\n")
    with pytest.raises(UsageProblem, match=r"profiles\.x\.port .*: unknown key"):
        load_profile("x", config)
