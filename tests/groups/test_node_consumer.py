"""A Node.js (@grpc/grpc-js) consumer joins a consumer group beside Python consumers: tests/node/consumer.mjs.

Node.js 20 and `npm ci` are documented requirements of the test suite, so a missing `node` or missing
node_modules fails this test rather than skipping it (see tests/integration/test_node_client.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections import Counter
from typing import Any

from allsource.v1 import groups_pb2

from tests.groups.support import Consumer, append, create_group, group_status
from tests.harness import ROOT, Suite, wait_until
from tests.integration.test_node_client import node_executable

SCRIPT = ROOT / "tests" / "node" / "consumer.mjs"
N = 3000


class NodeConsumer:
    """tests/node/consumer.mjs in a child process; its JSON lines are collected on a thread."""

    def __init__(self, suite: Suite, token: str, group: str, name: str, *extra: str) -> None:
        self.lines: list[dict[str, Any]] = []
        self.proc = subprocess.Popen(
            [
                node_executable(),
                str(SCRIPT),
                "--query",
                suite.address("query"),
                "--group",
                group,
                "--name",
                name,
                *extra,
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "ALLSOURCE_TOKEN": token},
        )
        self.stderr = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip():
                self.lines.append(json.loads(line))

    def of(self, key: str) -> list[Any]:
        return [line[key] for line in list(self.lines) if key in line]

    @property
    def acked(self) -> list[int]:
        return [p for batch in self.of("acked") for p in batch]

    @property
    def received(self) -> list[tuple[int, str, int]]:
        return [(p, s, r) for batch in self.of("delivered") for p, s, r in batch]

    def failed(self) -> str:
        """Why the process ended early, or ''."""
        if self.proc.poll() is None:
            return ""
        return f"node consumer exited {self.proc.returncode}: {self.proc.stderr.read() if self.proc.stderr else ''}"

    def stop(self) -> int:
        """Close its standard input (it half-closes its stream and exits); the exit code."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            code = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(10)
        self._reader.join(10)
        if self.proc.stderr is not None:
            self.stderr = self.proc.stderr.read()
        return code


def test_node_consumer_shares_a_group_with_python_consumers(suite: Suite, unique: str) -> None:
    md = suite.create_tenant(f"{unique}node".rstrip("-"))
    token = dict(md)["authorization"].removeprefix("Bearer ")
    # A small window per consumer, so that every consumer (whichever is fastest) gets a share.
    settings = groups_pb2.ConsumerGroupSettings(max_in_flight_per_consumer=50)
    create_group(suite, md, name="mixed", stream_id_prefix=unique, settings=settings)
    node = NodeConsumer(suite, token, "mixed", "node-1", "--nack-first")
    pythons: list[Consumer] = []
    try:
        wait_until(lambda: node.of("joined") or node.failed(), 30, "the Node consumer joined")
        assert not node.failed(), node.failed()
        pythons = [Consumer(suite, md, "mixed", f"py-{i}") for i in range(2)]
        for c in pythons:
            c.wait_joined()
        names = {c.name for c in group_status(suite, md, "mixed").status.consumers}
        assert names == {"node-1", "py-0", "py-1"}, names
        assert node.of("joined")[0] in {c.consumer_id for c in group_status(suite, md, "mixed").status.consumers}

        for i in range(3):
            append(suite, md, f"{unique}{i}", N // 3)

        def all_acked() -> bool:
            assert not node.failed(), node.failed()
            return len(node.acked) + sum(len(c.acked) for c in pythons) >= N

        wait_until(all_acked, 90, "every event acked")
        time.sleep(0.3)  # a duplicate delivery would show up meanwhile
        status = wait_until(lambda: (s := group_status(suite, md, "mixed")).status.lag == 0 and s, 20, "lag 0")
        assert status.status.checkpoint == status.status.head_position
    finally:
        code = node.stop()
        for c in pythons:
            c.close()
    assert code == 0, f"node consumer exited {code}\nstderr:\n{node.stderr}"
    done = [line for line in node.lines if "done" in line]
    assert len(done) == 1 and done[0]["acked_count"] == len(node.acked), done

    # Each event acked exactly once, over Node and Python together; the Node consumer had its share.
    acks = Counter(node.acked + [p for c in pythons for p in c.acked])
    assert set(acks) == set(range(1, N + 1)) and set(acks.values()) == {1}
    assert node.acked, "the Node consumer acked nothing"
    assert all(c.acked for c in pythons), [len(c.acked) for c in pythons]

    # What Node received came from the streams appended to.
    streams = {s for _, s, _ in node.received}
    assert streams <= {f"{unique}{i}" for i in range(3)}, streams

    # Node's nack (retry) of its first event sent that event round again, with a retry count, and it was
    # acked once, by whichever consumer got it next.
    (nacked,) = [p for batch in node.of("nacked") for p in batch]
    deliveries = [r for p, _, r in node.received + [e for c in pythons for e in c.received] if p == nacked]
    assert len(deliveries) >= 2 and max(deliveries) >= 1, deliveries
    assert acks[nacked] == 1
