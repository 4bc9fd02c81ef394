"""Generated artefacts stay true: gen/ and the client package's generated code match the protos, and the
settings table matches the model."""

from __future__ import annotations

import filecmp
import subprocess
from pathlib import Path

import pytest

from tests.harness import ROOT
from tools.gen_protos import CLIENT_SRC, generate

BUF = ROOT / "node_modules" / ".bin" / "buf"


@pytest.mark.parametrize(
    ("fresh_part", "committed"),
    [
        ("gen/allsource", ROOT / "gen" / "allsource"),
        ("client/allsource", CLIENT_SRC / "allsource"),
        ("client/allsource_client/reasons.py", CLIENT_SRC / "allsource_client" / "reasons.py"),
    ],
)
def test_generated_code_matches_the_protos(tmp_path: Path, fresh_part: str, committed: Path) -> None:
    generate(tmp_path / "gen", tmp_path / "client")
    fresh = tmp_path / fresh_part

    def files(root: Path) -> list[Path]:
        if root.is_file():
            return [Path()]
        return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)

    fresh_files, committed_files = files(fresh), files(committed)
    assert fresh_files == committed_files, f"{committed} has missing or extra files: run `make generate`"
    stale = [str(p) for p in fresh_files if not filecmp.cmp(fresh / p, committed / p, shallow=False)]
    assert not stale, f"{committed} is stale for {stale}: run `make generate`"


def test_buf_lint_passes() -> None:
    if not BUF.exists():
        pytest.fail("buf is not installed: run `npm ci` (the Makefile's test target does)")
    result = subprocess.run([str(BUF), "lint"], cwd=ROOT / "protos", capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_lint_would_catch_an_undocumented_field(tmp_path: Path) -> None:
    if not BUF.exists():
        pytest.fail("buf is not installed: run `npm ci`")
    (tmp_path / "buf.yaml").write_text((ROOT / "protos" / "buf.yaml").read_text())
    pkg = tmp_path / "allsource" / "v1"
    pkg.mkdir(parents=True)
    (pkg / "x.proto").write_text(
        'syntax = "proto3";\npackage allsource.v1;\n// Doc.\nmessage X {\n  string y = 1;\n}\n'
    )
    result = subprocess.run([str(BUF), "lint"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "non-empty comment" in result.stdout


def test_configuration_reference_matches_the_model() -> None:
    from tools.config_reference import DOC, render

    text = DOC.read_text()
    assert render(text) == text, "docs/CONFIGURATION.md is stale: run `python tools/config_reference.py --write`"
