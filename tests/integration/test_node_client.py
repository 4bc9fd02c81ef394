"""The public API from Node.js: tests/node/client.mjs (grpc-js + proto-loader) against the running suite.

Node.js 20 and `npm ci` are documented requirements of the test suite, so a missing `node` or missing
node_modules fails this test rather than skipping it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.harness import ROOT, Suite

SCRIPT = ROOT / "tests" / "node" / "client.mjs"


def node_executable() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "Node.js is required for the test suite but `node` is not on PATH: install Node.js 20 and run npm ci"
        )
    if not (ROOT / "node_modules" / "@grpc" / "grpc-js").is_dir():
        pytest.fail(f"{ROOT / 'node_modules' / '@grpc' / 'grpc-js'} is missing: run npm ci")
    return node


def test_node_grpc_js_client(suite: Suite, unique: str) -> None:
    node = node_executable()
    stream = unique + "node"
    proc = subprocess.run(
        [node, str(SCRIPT), "--ingest", suite.address("ingest"), "--query", suite.address("query"), "--stream", stream],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "ALLSOURCE_TOKEN": suite.admin_key},  # authentication is on
    )
    assert proc.returncode == 0, f"node client exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one JSON line on stdout, got:\n{proc.stdout}"
    summary = json.loads(lines[0])

    assert summary["ok"] is True
    assert summary["versions"] == [1, 2, 3]
    assert summary["conflict_code"] == "ABORTED"
    assert summary["conflict_reason"] == "WRONG_EXPECTED_VERSION"
    assert summary["conflict_metadata"]["actual_version"] == "3"
    assert summary["state"] == {"name": "gadget", "qty": 5, "color": "red", "tags": ["a", "ü"]}
    assert summary["event_ids"][1] == summary["client_event_id"]

    # What Node appended is what Python reads: same ids, types, versions, positions, payloads, metadata.
    with suite.client() as client:
        events = client.read_stream(stream)
        assert [e.version for e in events] == [1, 2, 3]
        assert [e.event_id for e in events] == summary["event_ids"]
        assert (
            [e.event_type for e in events] == summary["event_types"] == ["ItemCreated", "ItemRestocked", "ItemRenamed"]
        )
        assert [e.position for e in events] == summary["positions"]
        assert [json.loads(e.payload) for e in events] == [
            {"name": "widget", "qty": 1},
            {"qty": 5, "color": "red"},
            {"name": "gadget", "tags": ["a", "ü"]},
        ]
        assert dict(events[1].metadata)["source"] == "node"
        assert all(e.stream_id == stream for e in events)
        state, version = client.get_state(stream)
        assert (state, version) == (summary["state"], 3)
