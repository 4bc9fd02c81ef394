"""Request ids: a caller's x-request-id travels on (to storage, into every log line) only when it is
1-128 printable ASCII characters; anything else is replaced by a fresh id instead of breaking the call.

gRPC libraries refuse to send such header values, so the request goes out over raw HTTP/2 from Node.js
(tests/node/raw_request.mjs), as any client could."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.harness import ROOT, Suite
from tests.integration.test_node_client import node_executable

SCRIPT = ROOT / "tests" / "node" / "raw_request.mjs"


def raw_call(suite: Suite, service: str, path: str, headers: dict[str, bytes]) -> dict[str, str]:
    encoded = {k: v.hex() for k, v in headers.items()}
    proc = subprocess.run(
        [node_executable(), str(SCRIPT), suite.address(service), path, json.dumps(encoded)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout))


@pytest.mark.parametrize(
    "request_id",
    ["é-not-ascii".encode("latin1"), b"tab\there", b"x" * 129, "🙂".encode(), b"\x7f"],
    ids=["latin1", "control", "too-long", "utf8", "del"],
)
def test_unusable_request_ids_are_replaced_and_the_call_succeeds(suite: Suite, request_id: bytes) -> None:
    auth = dict(suite.auth_metadata())["authorization"].encode()
    for service, path in (
        ("query", "/allsource.v1.QueryService/ListStreams"),  # forwards the id to storage
        ("admin", "/allsource.v1.AuthService/WhoAmI"),
    ):
        answer = raw_call(suite, service, path, {"authorization": auth, "x-request-id": request_id})
        assert answer.get("grpc-status") == "0", answer
        assert answer["x-request-id"] and answer["x-request-id"].encode() != request_id
        assert all(33 <= ord(c) <= 126 for c in answer["x-request-id"])


def test_a_printable_request_id_is_kept(suite: Suite) -> None:
    auth = dict(suite.auth_metadata())["authorization"].encode()
    answer = raw_call(
        suite,
        "query",
        "/allsource.v1.QueryService/ListStreams",
        {"authorization": auth, "x-request-id": b"trace-me-42"},
    )
    assert (answer.get("grpc-status"), answer.get("x-request-id")) == ("0", "trace-me-42")


def test_metadata_that_is_not_utf8_is_refused_without_a_traceback_in_the_log(suite: Suite) -> None:
    """grpc logged an ERROR with a traceback for each such header: an unauthenticated log flood."""
    before = suite.log("query").count("\n")
    for _ in range(3):
        answer = raw_call(
            suite, "query", "/allsource.v1.QueryService/ListStreams", {"authorization": b"Bearer \xe9\xff"}
        )
        assert answer.get("grpc-status") == "16", answer  # UNAUTHENTICATED
    suite.wait_until(lambda: suite.log("query").count("\n") >= before + 3)  # the access-log lines landed
    added = suite.log("query").splitlines()[before:]
    assert not [line for line in added if "Traceback" in line or '"level":"ERROR"' in line], added
