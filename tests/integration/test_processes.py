"""Process-level guarantees: crash safety, racing writers, graceful drain, health, the launcher."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from allsource.v1 import event_pb2, query_pb2
from allsource_client import (
    AllSourceClient,
    AllSourceClientError,
    ServiceUnavailable,
    WrongExpectedVersion,
    event,
    exact,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.suite import SERVICE_NAMES
from tests.harness import Suite, free_port


@dataclass
class Writer:
    """Appends to its own streams until told to stop, recording what was acknowledged and what was not."""

    client: AllSourceClient
    name: str
    acked: list[tuple[str, list[str], int, int, int]] = field(default_factory=list)  # stream, ids, v1, p1, p_last
    unacked: list[list[str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            stream = f"{self.name}-{n % 3}"
            ids = [str(uuid.uuid4()) for _ in range(1 + n % 4)]
            try:
                r = self.client.append(stream, [event("Tick", {"n": n, "k": k}, event_id=i) for k, i in enumerate(ids)])
            except AllSourceClientError:
                self.unacked.append(ids)
                time.sleep(0.05)
            else:
                self.acked.append((stream, ids, r.first_version, r.first_position, r.last_position))
            n += 1


def test_kill_9_of_storage_loses_no_acknowledged_event(fresh_suite: Suite) -> None:
    suite = fresh_suite
    suite.start_all()  # the admin service creates the credentials the writers use
    writers = [Writer(suite.client(timeout=5), f"w{i}") for i in range(4)]
    threads = [threading.Thread(target=w.run) for w in writers]
    for t in threads:
        t.start()
    suite.wait_until(lambda: sum(len(w.acked) for w in writers) >= 40, timeout=30, what="40 acknowledged appends")
    refused_before = [len(w.unacked) for w in writers]
    suite.kill("storage")  # SIGKILL mid-flow: no flush, no drain
    # Every writer has had an append refused since: whatever each had in flight at the kill is settled.
    suite.wait_until(
        lambda: all(len(w.unacked) > n for w, n in zip(writers, refused_before, strict=True)),
        timeout=30,
        what="an append of every writer refused after the kill",
    )
    for w in writers:
        w.stop.set()
    for t in threads:
        t.join()
    acked = [a for w in writers for a in w.acked]
    unacked = [u for w in writers for u in w.unacked]
    assert len(acked) > 20, "the writers made too little progress to test anything"

    suite.start("storage")
    client = suite.client()
    suite.wait_until(lambda: _serving(suite, "query"), timeout=15)
    log = list(client.list_events(page_size=1000))
    positions = [e.position for e in log]
    assert positions == list(range(1, len(log) + 1)), "tenant positions must be gapless from 1"
    by_id = {e.event_id: e for e in log}
    for stream, ids, first_version, first_position, last_position in acked:
        for k, event_id in enumerate(ids):
            stored = by_id.get(event_id)
            assert stored is not None, f"acknowledged event {event_id} lost"
            assert (stored.stream_id, stored.version, stored.position) == (
                stream,
                first_version + k,
                first_position + k,
            )
        assert last_position == first_position + len(ids) - 1
    for ids in unacked:
        present = [i in by_id for i in ids]
        assert all(present) or not any(present), "an unacknowledged append is partly visible"
    for w in writers:
        for s in range(3):
            stream = f"{w.name}-{s}"
            versions = [e.version for e in log if e.stream_id == stream]
            assert versions == list(range(1, len(versions) + 1)), f"{stream} versions have a gap"
    client.close()


def test_sixteen_writers_race_on_one_stream(suite: Suite, unique: str) -> None:
    stream = unique + "contended"
    target = 160
    won: list[int] = []
    conflicts = [0]
    lock = threading.Lock()

    def racer() -> None:
        client = suite.client(timeout=10)
        known = 0
        while True:
            with lock:
                if len(won) >= target:
                    return
            try:
                r = client.append(stream, [event("Step", {"by": threading.get_ident()})], expected=exact(known))
            except WrongExpectedVersion as err:
                with lock:
                    conflicts[0] += 1
                known = int(err.metadata["actual_version"])
                continue
            with lock:
                won.append(r.first_version)
            known = r.last_version

    threads = [threading.Thread(target=racer) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with suite.client() as client:
        versions = [e.version for e in client.read_stream(stream)]
    assert sorted(won) == list(range(1, len(won) + 1)), "each version is won exactly once"
    assert versions == list(range(1, len(won) + 1))
    assert conflicts[0] > 0, "the writers never collided, so the race was not exercised"


def _serving(suite: Suite, name: str) -> bool:
    with suite.channel(name) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAMES[name]), timeout=1
            )
        except grpc.RpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING


def test_public_services_report_not_serving_while_storage_is_down(fresh_suite: Suite) -> None:
    suite = fresh_suite.start_all()
    client = suite.client(timeout=3)
    client.append("s", [event("E")])
    client.system_info()  # the admin service has now seen (and cached) this credential
    suite.stop("storage")
    for name in ("ingest", "query", "admin"):
        suite.wait_until(lambda n=name: not _serving(suite, n), timeout=10)  # type: ignore[misc]
    with pytest.raises(ServiceUnavailable) as err:
        client.append("s", [event("E")])
    assert err.value.reason == "STORAGE_UNAVAILABLE"
    info = client.system_info()
    assert {s.name: s.status for s in info.services}["storage"] != 1 and not info.HasField("storage")
    suite.start("storage")
    for name in ("ingest", "query", "admin"):
        suite.wait_until(lambda n=name: _serving(suite, n), timeout=15)  # type: ignore[misc]
    assert client.append("s", [event("E")]).last_version == 2
    client.close()


def test_sigterm_drains_in_flight_calls_and_loses_nothing(fresh_suite: Suite) -> None:
    suite = fresh_suite.start_all()
    client = suite.client(timeout=10)
    client.append("warm", [event("E")])
    # A subscription is open on query and storage while they shut down.
    sub_errors: list[AllSourceClientError] = []

    def subscriber() -> None:
        try:
            for _ in client.subscribe(query_pb2.SubscribeRequest(), timeout=30):
                pass
        except AllSourceClientError as exc:
            sub_errors.append(exc)

    sub = threading.Thread(target=subscriber)
    sub.start()
    writers = [Writer(suite.client(timeout=10), f"d{i}") for i in range(3)]
    threads = [threading.Thread(target=w.run) for w in writers]
    for t in threads:
        t.start()
    suite.wait_until(lambda: all(w.acked for w in writers), timeout=30, what="every writer acknowledged once")
    suite.signal("ingest", signal.SIGTERM)
    assert suite.procs["ingest"].wait(timeout=20) == 0
    for w in writers:
        w.stop.set()
    for t in threads:
        t.join()
    suite.signal("query", signal.SIGTERM)
    assert suite.procs["query"].wait(timeout=20) == 0
    sub.join(timeout=10)
    assert sub_errors and sub_errors[0].reason == "SHUTTING_DOWN", "subscribers are told to resume elsewhere"
    assert suite.stop("storage") == 0

    for name in ("storage", "query"):
        suite.start(name)
    acked = [a for w in writers for a in w.acked]
    assert acked, "no append was acknowledged before the drain"
    with suite.client() as after:
        stored = {e.event_id for e in after.list_events(event_pb2.EventFilter(), page_size=1000)}
    for _, ids, *_ in acked:
        assert set(ids) <= stored
    assert '"msg":"shutting down"' in suite.log("ingest") and '"msg":"stopped"' in suite.log("storage")


def stop_group(proc: subprocess.Popen[str]) -> None:
    """Kill the launcher's process group: the launcher and any service it started, even after a failure."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_suite_launcher_starts_everything_and_stops_on_sigterm(tmp_path: os.PathLike[str]) -> None:
    ports = {name: free_port() for name in ("storage", "ingest", "query", "admin")}
    config = f"{tmp_path}/suite.toml"
    lines = [f"[{name}]\nport = {port}\n" for name, port in ports.items()]
    lines[0] += f'data_dir = "{tmp_path}/data"\n'
    with open(config, "w") as f:
        f.write("".join(lines))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLSOURCE_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.suite", "--config", config],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=tmp_path,
        text=True,
        start_new_session=True,  # its own process group, so a failed test can stop the services too
    )
    try:
        banner = []
        assert proc.stdout is not None
        for line in proc.stdout:
            banner.append(line)
            if "stop:" in line:
                break
        text = "".join(banner)
        for name, port in ports.items():
            assert f"127.0.0.1:{port}" in text and name in text
        key = (Path(str(tmp_path)) / "data" / "bootstrap-admin.key").read_text().strip()
        assert "bootstrap-admin.key" in text  # the banner says how to authenticate
        with AllSourceClient(
            f"127.0.0.1:{ports['ingest']}",
            f"127.0.0.1:{ports['query']}",
            metadata=(("authorization", f"Bearer {key}"),),
        ) as client:
            assert client.append("launch", [event("E")]).first_version == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        for port in ports.values():  # every service is gone
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                with pytest.raises(grpc.RpcError):
                    health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=0.5)
    finally:
        stop_group(proc)


def test_message_size_limit_comes_from_settings_and_logs_are_json(fresh_suite: Suite) -> None:
    suite = fresh_suite
    limit = 64 * 1024
    suite.extra_env = {
        "ALLSOURCE_GRPC__MAX_MESSAGE_BYTES": str(limit),
        "ALLSOURCE_LIMITS__MAX_BATCH_BYTES": str(limit),
        "ALLSOURCE_LIMITS__MAX_EVENT_BYTES": str(limit),
    }
    suite.start("storage")
    suite.start("admin")  # creates the bootstrap credentials
    suite.start("ingest")
    with suite.client() as client:
        assert client.append("small", [event("E", {"x": "y" * 1000})]).first_version == 1
        with pytest.raises(AllSourceClientError) as err:
            client.append("big", [event("E", {"x": "y" * (limit + 1000)})])
        assert err.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    for name in ("storage", "ingest"):
        lines = [line for line in suite.log(name).splitlines() if line.strip()]
        assert lines, f"{name} logged nothing"
        for line in lines:
            entry = json.loads(line)  # every line is one JSON object
            assert {"ts", "level", "service", "msg"} <= entry.keys()


def test_ctrl_c_on_the_launcher_stops_public_services_before_storage(tmp_path: os.PathLike[str]) -> None:
    ports = {name: free_port() for name in ("storage", "ingest", "query", "admin")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLSOURCE_")}
    env.update({f"ALLSOURCE_{n.upper()}__PORT": str(p) for n, p in ports.items()})
    env["ALLSOURCE_STORAGE__DATA_DIR"] = f"{tmp_path}/data"
    # Four services of 3 s grace each (the launcher waits grace + 5 s for one) stop well within the 60 s.
    env["ALLSOURCE_GRPC__SHUTDOWN_GRACE_S"] = "3"
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.suite"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
        text=True,
        start_new_session=True,  # stands in for the terminal: SIGINT goes to the launcher's group only
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        # The services' logs are read all along: a pipe nobody reads would stop them once it is full.
        err_lines: list[str] = []
        reader = threading.Thread(target=lambda: err_lines.extend(proc.stderr or ()), daemon=True)
        reader.start()
        for line in proc.stdout:
            if "stop:" in line:
                break
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground process group
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError("the launcher did not stop within 60 s:\n" + "".join(err_lines[-40:])) from None
        reader.join(10)
        err = "".join(err_lines)
        assert proc.returncode == 0, err[-4000:]
        entries = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        stopped = {e["service"]: e["ts"] for e in entries if e["msg"] == "stopped"}
        assert sorted(stopped) == ["admin", "ingest", "query", "storage"]
        storage_begins = next(e["ts"] for e in entries if e["service"] == "storage" and e["msg"] == "shutting down")
        # storage is told to stop only once every public service has finished draining
        assert storage_begins >= max(stopped[n] for n in ("admin", "ingest", "query")), entries
    finally:
        stop_group(proc)
