"""Start and stop the suite's services as real processes on free loopback ports (tests and benchmarks)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import grpc
from allsource_client import AllSourceClient

from services.suite import ORDER, SERVICE_NAMES, wait_serving

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


# Ports handed to servers come from below the kernel's ephemeral range (32768-60999 here), which every
# outgoing connection draws from: a port taken from that range with bind(0) could be given to some
# client's connection before the server started on it ("address already in use"). Each pytest-xdist
# worker takes its own slice, so two workers never hand out the same port.
PORTS_FROM, PORTS_TO = 20_000, 32_700


def _port_slice() -> range:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    index = int(worker) if worker.isdigit() else 0
    width = (PORTS_TO - PORTS_FROM) // max(1, count)
    start = PORTS_FROM + width * index
    return range(start, start + width)


_PORTS = _port_slice()
_next_port = [_PORTS.start + (os.getpid() * 7919) % len(_PORTS)]  # runs one after another start apart


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, from this process's slice (above):
    the next one that binds, round and round the slice."""
    for _ in range(len(_PORTS)):
        port = _next_port[0]
        _next_port[0] = port + 1 if port + 1 < _PORTS.stop else _PORTS.start
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {_PORTS.start}-{_PORTS.stop - 1}")


@dataclass
class Suite:
    """The four services as child processes, each logging JSON lines to its own file."""

    workdir: Path
    extra_env: Mapping[str, str] = field(default_factory=dict)
    # Client credentials when the suite runs TLS (and the name its certificates carry).
    credentials: grpc.ChannelCredentials | None = None
    server_name: str = ""
    ports: dict[str, int] = field(default_factory=dict)
    metrics_ports: dict[str, int] = field(default_factory=dict)  # /metrics of each service
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.workdir / "data"
        for name in ORDER:
            self.ports.setdefault(name, free_port())
            self.metrics_ports.setdefault(name, free_port())

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALLSOURCE_")}
        env.update(
            {
                "ALLSOURCE_STORAGE__DATA_DIR": str(self.data_dir),
                "ALLSOURCE_GRPC__SHUTDOWN_GRACE_S": "5",
                "PYTHONUNBUFFERED": "1",
            }
        )
        for name, port in self.ports.items():
            env[f"ALLSOURCE_{name.upper()}__PORT"] = str(port)
        for name, port in self.metrics_ports.items():
            env[f"ALLSOURCE_METRICS__{name.upper()}_PORT"] = str(port)
        # Spans are recorded only where a test asks for them (tests/telemetry): no collector listens here.
        env["ALLSOURCE_TRACING__EXPORTER"] = "none"
        env.update(self.extra_env)
        return env

    def address(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    def log_path(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def log(self, name: str) -> str:
        path = self.log_path(name)
        return path.read_text() if path.exists() else ""

    def start(self, name: str, wait: bool = True, args: Sequence[str] = ()) -> subprocess.Popen[bytes]:
        with open(self.log_path(name), "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", f"services.{name}", *args],
                env=self.env(),
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.procs[name] = proc
        if wait:
            self.wait_serving(name)
        return proc

    def wait_serving(self, name: str) -> None:
        """Until the service reports SERVING (RuntimeError with its log if it does not within 60 s)."""
        proc = self.procs[name]
        if not wait_serving(self.address(name), SERVICE_NAMES[name], 60, proc, self.credentials, self.options()):
            raise RuntimeError(f"{name} did not become healthy:\n{self.log(name)[-4000:]}")

    def start_all(self) -> Suite:
        """Every service: storage first (the others need it to serve), then the other three at once (their
        start is mostly importing Python, and two cores do two of them at a time); the admin service
        creates the bootstrap admin key on first start."""
        first, *others = ORDER
        self.start(first)
        for name in others:
            self.start(name, wait=False)
        for name in others:
            self.wait_serving(name)
        return self

    def signal(self, name: str, sig: int) -> None:
        proc = self.procs[name]
        if proc.poll() is None:
            proc.send_signal(sig)

    def kill(self, name: str) -> None:
        """SIGKILL: no chance to flush or drain."""
        self.signal(name, signal.SIGKILL)
        self.procs[name].wait()

    def stop(self, name: str, timeout: float = 20) -> int:
        """SIGTERM and wait; returns the exit status."""
        self.signal(name, signal.SIGTERM)
        try:
            return self.procs[name].wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.procs[name].kill()
            self.procs[name].wait()
            raise

    def stop_all(self) -> None:
        """SIGTERM to the three front services at once, and once they have stopped, to storage."""
        running = [name for name in reversed(ORDER) if name in self.procs and self.procs[name].poll() is None]
        for name in running:
            if name != ORDER[0]:
                self.signal(name, signal.SIGTERM)
        for name in running:  # storage last
            try:
                self.stop(name)
            except subprocess.TimeoutExpired:
                pass

    @property
    def admin_key(self) -> str:
        """The development bootstrap admin API key (written by the admin service on first start)."""
        return (self.data_dir / "bootstrap-admin.key").read_text().strip()

    def auth_metadata(self) -> tuple[tuple[str, str], ...]:
        path = self.data_dir / "bootstrap-admin.key"
        return (("authorization", f"Bearer {path.read_text().strip()}"),) if path.exists() else ()

    def options(self) -> tuple[tuple[str, str], ...]:
        return (("grpc.ssl_target_name_override", self.server_name),) if self.server_name else ()

    def raw_channel(self, name: str) -> grpc.Channel:
        """A channel that sends no credentials."""
        if self.credentials is not None:
            return grpc.secure_channel(self.address(name), self.credentials, options=self.options())
        return grpc.insecure_channel(self.address(name))

    def channel(self, name: str, metadata: Sequence[tuple[str, str]] | None = None) -> grpc.Channel:
        """A channel whose calls carry the bootstrap admin key (or the given metadata)."""
        return grpc.intercept_channel(self.raw_channel(name), _Metadata(tuple(metadata or self.auth_metadata())))

    def client(self, **kw: object) -> AllSourceClient:
        kw.setdefault("metadata", self.auth_metadata())
        if self.credentials is not None:
            kw.setdefault("credentials", self.credentials)
            kw.setdefault("options", self.options())
        return AllSourceClient(self.address("ingest"), self.address("query"), self.address("admin"), **kw)  # type: ignore[arg-type]

    def create_tenant(self, tenant_id: str, *, quota_preset: int = 0, role: int = 0) -> tuple[tuple[str, str], ...]:
        """A new tenant (made by the bootstrap operator) and an API key of it; returns the key's metadata.
        The key's role defaults to ROLE_ADMIN, the preset to UNLIMITED: a test of something other than
        quotas and rate limits must not run into them (tests of limits name their plan)."""
        from allsource.v1 import admin_pb2, admin_pb2_grpc, auth_pb2, auth_pb2_grpc, tenant_pb2

        admin_pb2_grpc.AdminServiceStub(self.channel("admin")).CreateTenant(
            admin_pb2.CreateTenantRequest(
                tenant_id=tenant_id,
                quota_preset=quota_preset or tenant_pb2.QUOTA_PRESET_UNLIMITED,  # type: ignore[arg-type]
            )
        )
        acting = (*self.auth_metadata(), ("x-allsource-tenant", tenant_id))
        created = auth_pb2_grpc.AuthServiceStub(self.channel("admin", acting)).CreateApiKey(
            auth_pb2.CreateApiKeyRequest(name=f"{tenant_id}-key", role=role or auth_pb2.ROLE_ADMIN)  # type: ignore[arg-type]
        )
        return (("authorization", f"Bearer {created.secret}"),)

    def wait_until(self, predicate: Callable[[], T], timeout: float = 10.0, what: str = "") -> T:
        """See the module's wait_until."""
        return wait_until(predicate, timeout, what)


class StartedSuites:
    """Suites a test module starts for itself, and the check, after each test, that no process of
    them (or of other suites in use) has exited."""

    def __init__(self) -> None:
        self.running: list[Suite] = []

    @contextlib.contextmanager
    def started(self, workdir: Path, env: Mapping[str, str]) -> Iterator[Suite]:
        """A suite in `workdir` with `env`, running for the block, stopped after it."""
        running = Suite(workdir, extra_env=env)
        self.running.append(running)
        try:
            running.start_all()
            yield running
        finally:
            running.stop_all()
            self.running.remove(running)

    def assert_alive(self, *others: Suite) -> None:
        for running in (*others, *self.running):
            exited = {name: proc.returncode for name, proc in running.procs.items() if proc.poll() is not None}
            assert not exited, f"processes exited during the test: {exited}"


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, what: str = "") -> T:
    """Poll until the predicate returns something true, and return it; fail after `timeout` seconds.

    Tests wait for the condition they need, never for a fixed time: on a loaded machine a sleep is either
    too short (a flake) or, worse, silently weakens the check."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not reached within {timeout} s: {what or 'condition'}")
        time.sleep(0.05)


class _Metadata(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds metadata (credentials) to every call of a channel."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.metadata = metadata

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        return _CallDetails(
            details.method,
            details.timeout,
            tuple(details.metadata or ()) + self.metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation, details, request):  # type: ignore[no-untyped-def]
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):  # type: ignore[no-untyped-def]
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation, details, request_iterator):  # type: ignore[no-untyped-def]
        return continuation(self._details(details), request_iterator)

    def intercept_stream_stream(self, continuation, details, request_iterator):  # type: ignore[no-untyped-def]
        return continuation(self._details(details), request_iterator)


class _CallDetails(
    grpc.ClientCallDetails,  # type: ignore[misc]
):
    def __init__(self, method, timeout, metadata, credentials, wait_for_ready, compression):  # type: ignore[no-untyped-def]
        self.method = method
        self.timeout = timeout
        self.metadata = metadata
        self.credentials = credentials
        self.wait_for_ready = wait_for_ready
        self.compression = compression
