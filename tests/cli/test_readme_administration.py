"""The README's Administration commands work as written (the shell aside: tests/cli/test_shell.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

from tests.cli.conftest import Cli, suite_profile
from tests.harness import ROOT, Suite

README = (ROOT / "README.md").read_text()


def test_the_administration_commands_work_as_written(suite: Suite, tmp_path: Path) -> None:
    block = re.findall(r"```sh\n(.*?)```", README.split("<!-- administration")[1], flags=re.S)[0]
    commands = [line for line in block.splitlines() if line.strip()]
    assert len([c for c in commands if c.startswith("allsource-cli")]) == 5
    tenant = f"acme-{uuid.uuid4().hex[:8]}"
    script = "\n".join(c for c in commands if " shell" not in c)
    script = script.replace("data/bootstrap-admin.key", str(suite.data_dir / "bootstrap-admin.key"))
    script = re.sub(r"\bacme\b", tenant, script).replace('export PATH="$PWD/.venv/bin:$PATH"', "export")
    # The `default` profile names the test suite's ports instead of 50051-50053.
    cli = Cli(tmp_path / "home")
    cli.write_profiles({"default": suite_profile(suite)})
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "allsource-cli").write_text(f'#!/bin/sh\nexec {sys.executable} -m services.cli "$@"\n')
    (bin_dir / "allsource-cli").chmod(0o755)
    env = cli.environment(None, {"PATH": f"{bin_dir}:/usr/bin:/bin"})
    done = subprocess.run(["bash", "-ec", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "serving" in done.stdout and tenant in done.stdout and "secret: as_" in done.stdout
    stats = json.loads(done.stdout[done.stdout.index("{\n") :])
    assert stats["tenant_id"] == tenant and stats["api_keys"] == "1"
