"""`allsource-suite`: run all four services locally as separate processes on the embedded default.

Storage starts first; the public services follow once it reports SERVING. The endpoints are printed when
every service is up. A service that dies is restarted, after a delay that grows while it keeps dying.
Ctrl-C or SIGTERM stops the public services first and storage last, each draining gracefully.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shared.config.loader import LoadedSettings
from shared.config.settings import Endpoint, TlsSettings
from shared.harness.server import LAUNCHER_PID_VAR, add_config_arguments, load_or_exit

ORDER = ("storage", "ingest", "query", "admin")
RESTART_MIN_S, RESTART_MAX_S, STABLE_S = 1.0, 30.0, 60.0
SERVICE_NAMES = {
    "storage": "allsource.storage.v1.StorageService",
    "ingest": "allsource.v1.IngestService",
    "query": "allsource.v1.QueryService",
    "admin": "allsource.v1.AdminService",
}


def client_credentials(tls: TlsSettings) -> grpc.ChannelCredentials | None:
    """Credentials for a local client of a TLS suite (its own certificate for mTLS), or None."""
    if not tls.enabled or tls.key is None:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=Path(tls.ca_file).read_bytes() if tls.ca_file else None,
        private_key=tls.key.get_secret_value().encode(),
        certificate_chain=Path(tls.cert_file).read_bytes(),
    )


def wait_serving(
    address: str,
    service: str,
    timeout: float,
    process: subprocess.Popen[bytes] | None = None,
    credentials: grpc.ChannelCredentials | None = None,
    options: tuple[tuple[str, str], ...] = (),
) -> bool:
    """Poll grpc.health.v1 until the service is SERVING; False on timeout or if the process exits."""
    deadline = time.monotonic() + timeout
    channel_factory = (
        (lambda: grpc.secure_channel(address, credentials, options=options))
        if credentials is not None
        else (lambda: grpc.insecure_channel(address))
    )
    with channel_factory() as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                return False
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return True
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    return False


class Suite:
    """The four service processes."""

    def __init__(self, args: list[str]) -> None:
        self.args = args  # --preset / --config / --set, passed to every service
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = False

    def start(self, name: str) -> subprocess.Popen[bytes]:
        # Own process group: Ctrl-C reaches the launcher only, which then stops the services in order
        # (public services first, storage last) instead of all four at once.
        # No preexec_fn: with one, Python forks (rather than vfork) and runs grpc's fork handlers, which
        # wait for grpc's threads (the health checks' channel) and hung the launcher, services half started
        # (seen in a test). Each service sets its own death signal from ALLSOURCE_LAUNCHER_PID instead.
        env = {**os.environ, LAUNCHER_PID_VAR: str(os.getpid())}
        proc = subprocess.Popen([sys.executable, "-m", f"services.{name}", *self.args], process_group=0, env=env)
        self.procs[name] = proc
        return proc

    def stop(self, grace: float) -> None:
        self.stopping = True
        for name in reversed(ORDER):  # public services drain first, storage last
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=grace + 5)
            except subprocess.TimeoutExpired:
                print(f"allsource-suite: {name} did not stop in time; killing it", file=sys.stderr)
                proc.kill()
                proc.wait()


class Supervisor:
    """Restarts a service that exits while the suite runs, with a growing delay if it keeps failing (1 s,
    doubling to RESTART_MAX_S; back to 1 s once it has run for STABLE_S), and says so on stderr."""

    def __init__(self, suite: Suite) -> None:
        self.suite = suite
        self.delay = dict.fromkeys(ORDER, RESTART_MIN_S)
        self.started = dict.fromkeys(ORDER, time.monotonic())
        self.due: dict[str, float] = {}
        self.restarts = dict.fromkeys(ORDER, 0)

    def check(self) -> None:
        now = time.monotonic()
        for name in ORDER:
            proc = self.suite.procs[name]
            if name in self.due:
                if now >= self.due[name]:
                    del self.due[name]
                    self.restarts[name] += 1
                    print(f"allsource-suite: restarting {name} (restart {self.restarts[name]})", file=sys.stderr)
                    self.suite.start(name)
                    self.started[name] = now
                continue
            if proc.poll() is None:
                if now - self.started[name] >= STABLE_S:
                    self.delay[name] = RESTART_MIN_S
                continue
            delay = self.delay[name]
            print(
                f"allsource-suite: {name} exited with status {proc.returncode}; restarting it in {delay:g} s",
                file=sys.stderr,
                flush=True,
            )
            self.due[name] = now + delay
            self.delay[name] = min(delay * 2, RESTART_MAX_S)


def preflight(endpoints: dict[str, Endpoint], data_dir: Path) -> str | None:
    """Why the suite cannot start here (a port taken, the database in use), or None."""
    for name in ORDER:
        endpoint = endpoints[name]
        family = socket.AF_INET6 if ":" in endpoint.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is no one
            try:
                probe.bind((endpoint.host, endpoint.port))
            except OSError as exc:
                return f"{name}'s address {endpoint.bind()} is in use ({exc.strerror}): is another suite running?"
    lock = data_dir / "rocksdb" / "LOCK"
    if lock.exists():
        with open(lock, "rb+") as handle:
            try:
                fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # RocksDB holds a POSIX lock on it
            except OSError:
                return f"the database in {data_dir} is in use by another process: is another suite running?"
            fcntl.lockf(handle, fcntl.LOCK_UN)
    return None


def banner(loaded: LoadedSettings, endpoints: dict[str, Endpoint], data_dir: Path) -> str:
    """What is running and how to talk to it, with commands that work as printed."""
    settings = loaded.settings
    key_file = data_dir / "bootstrap-admin.key"
    grpcurl = Path(sys.executable).parent / "grpcurl"
    grpcurl_cmd = shlex.quote(str(grpcurl)) if grpcurl.exists() else "grpcurl"
    transport = f"-cacert {shlex.quote(settings.tls.ca_file)}" if settings.tls.enabled else "-plaintext"
    lines = [
        "",
        f"AllSource is running ({loaded.preset} preset, embedded RocksDB in {data_dir}, pid {os.getpid()}):",
        *(f"  {name:<8} {endpoints[name].dial():<22} {SERVICE_NAMES[name]}" for name in ORDER),
        "",
    ]
    if key_file.exists():
        auth = f'-H "authorization: Bearer $(cat {shlex.quote(str(key_file))})"'
        lines.append(f"  auth:  the bootstrap operator's API key is in {key_file}")
    else:
        auth = '-H "authorization: Bearer <access token or API key>"'
        lines.append("  auth:  log in with AuthService/Login, or use an API key")
    lines += [
        f"  try:   {grpcurl_cmd} {transport} {endpoints['query'].dial()} list",
        f"         {grpcurl_cmd} {transport} {auth} {endpoints['admin'].dial()} allsource.v1.AuthService/WhoAmI",
        "  stop:  Ctrl-C (or SIGTERM to this process)",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point."""
    parser = argparse.ArgumentParser(prog="allsource-suite", description="Run the whole AllSource suite locally.")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    loaded = load_or_exit("suite", args)
    settings = loaded.settings
    endpoints = {name: getattr(settings, name) for name in ORDER}
    data_dir = Path(settings.storage.data_dir).resolve()
    problem = preflight(endpoints, data_dir)
    if problem is not None:
        print(f"allsource-suite: cannot start: {problem}", file=sys.stderr)
        sys.exit(1)
    passed = [*(["--preset", args.preset] if args.preset else []), *(["--config", args.config] if args.config else [])]
    passed += [f"--set={item}" for item in args.overrides]
    suite = Suite(passed)
    credentials = client_credentials(settings.tls)
    name_override = (("grpc.ssl_target_name_override", settings.tls.server_name),) if settings.tls.server_name else ()

    def on_signal(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # SIGINT too, explicitly: a process started in the background by a shell (`nohup make run &`, a CI
    # step) inherits SIGINT ignored, and Python then installs no handler of its own for it.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    status = 0
    try:
        for name in ORDER:
            proc = suite.start(name)
            if not wait_serving(endpoints[name].dial(), SERVICE_NAMES[name], 60, proc, credentials, name_override):
                print(f"allsource-suite: {name} did not become healthy; see its log above", file=sys.stderr)
                status = 1
                return
        print(banner(loaded, endpoints, data_dir), flush=True)
        supervisor = Supervisor(suite)
        while True:
            supervisor.check()
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        # Stopping is not interrupted by more signals (a second SIGTERM, repeated Ctrl-C, the signal to
        # the whole process group): each service gets its drain, and none is left running.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        suite.stop(settings.grpc.shutdown_grace_s)
        if status == 0:
            print("allsource-suite: stopped", file=sys.stderr)
        sys.exit(status)


if __name__ == "__main__":
    main()
