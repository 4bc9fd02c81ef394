"""Fixtures for allsource-cli tests: the CLI run as a subprocess against the real suite, in a home of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.harness import ROOT, Suite

CLI = [sys.executable, "-m", "services.cli"]


@dataclass
class Cli:
    """allsource-cli with its own HOME and XDG directories, and a config file naming the suite."""

    home: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def config_dir(self) -> Path:
        return self.home / ".config" / "allsource"

    def write_profiles(self, profiles: Mapping[str, Mapping[str, object]], default: str = "") -> None:
        lines = [f'default_profile = "{default}"'] if default else []
        for name, values in profiles.items():
            lines.append(f"[profiles.{name}]")
            lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
        self.config_dir.mkdir(parents=True, exist_ok=True)
        (self.config_dir / "config.toml").write_text("\n".join(lines) + "\n")

    def environment(self, key: str | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALLSOURCE_") and not k.startswith("XDG_")}
        env.update(
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.home / ".config"),
            XDG_STATE_HOME=str(self.home / ".state"),
            # This tree's generated code and client package first, whichever tree the venv's install names.
            PYTHONPATH=os.pathsep.join(str(ROOT / p) for p in (".", "gen", "clients/python/src")),
        )
        env.update(self.env)
        if key:
            env["ALLSOURCE_API_KEY"] = key
        env.update(extra or {})
        return env

    def run(
        self,
        *args: str,
        key: str | None = None,
        stdin: str = "",
        env: Mapping[str, str] | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """Run the CLI (piped: no terminal); a traceback on stderr fails the test whatever the status."""
        done = subprocess.run(
            [*CLI, *args],
            cwd=ROOT,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.environment(key, env),
            check=False,
        )
        assert "Traceback" not in done.stderr, done.stderr
        return done

    def ok(self, *args: str, **kw: Any) -> str:
        done = self.run(*args, **kw)
        assert done.returncode == 0, (args, done.returncode, done.stdout, done.stderr)
        return done.stdout

    def json(self, *args: str, **kw: Any) -> Any:
        return json.loads(self.ok("--output", "json", *args, **kw))


def suite_profile(suite: Suite, **extra: object) -> dict[str, object]:
    """A profile that reaches the suite's public endpoints."""
    return {
        "ingest": suite.address("ingest"),
        "query": suite.address("query"),
        "admin": suite.address("admin"),
        **extra,
    }


@pytest.fixture
def cli(suite: Suite, tmp_path: Path) -> Cli:
    """The CLI with a `test` profile (the default) for the session suite; the operator key by default."""
    runner = Cli(tmp_path / "home", env={})
    runner.write_profiles({"test": suite_profile(suite)}, default="test")
    runner.env["ALLSOURCE_API_KEY"] = suite.admin_key
    return runner


@pytest.fixture
def tenant(suite: Suite) -> str:
    """A new tenant of this test's own (unlimited quotas), made by the bootstrap operator."""
    from allsource.v1 import tenant_pb2

    name = f"cli-{uuid.uuid4().hex[:10]}"
    suite.create_tenant(name, quota_preset=tenant_pb2.QUOTA_PRESET_UNLIMITED)
    return name


def exit_reason(done: subprocess.CompletedProcess[str], status: int, *needles: str) -> None:
    """The run ended with `status` and its stderr names each needle (code, reason, field...)."""
    assert done.returncode == status, (done.returncode, done.stdout, done.stderr)
    for needle in needles:
        assert needle in done.stderr, (needle, done.stderr)
