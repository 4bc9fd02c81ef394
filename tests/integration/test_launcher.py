"""First contact with `allsource-suite` (behind `make run`): it stops cleanly however it is told to,
refuses a second start at once, prints commands that work as printed, and every console script
answers --version."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.core.version import VERSION
from tests.harness import ROOT, free_port

# Every console script the package installs (pyproject.toml), so a new one cannot be forgotten here.
SCRIPTS = sorted(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLSOURCE_")}
    for name in ("storage", "ingest", "query", "admin"):
        env[f"ALLSOURCE_{name.upper()}__PORT"] = str(free_port())
    env["ALLSOURCE_STORAGE__DATA_DIR"] = str(tmp_path / "data")
    env["ALLSOURCE_GRPC__SHUTDOWN_GRACE_S"] = "3"
    for name in ("storage", "ingest", "query", "admin"):  # not the defaults another test's suite may hold
        env[f"ALLSOURCE_METRICS__{name.upper()}_PORT"] = str(free_port())
    return env


def _children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(p) for p in found]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] if Path(f"/proc/{pid}").exists() else "X"
    return state != "Z"


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if _alive(p)]
        if not left:
            return []
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


class Launcher:
    """allsource-suite in a session of its own (standing in for a terminal and `make run`)."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.suite"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=tmp_path,
            text=True,
            start_new_session=True,
        )
        self.banner = ""
        assert self.proc.stdout is not None and self.proc.stderr is not None
        # The services' logs are read all along: a pipe nobody reads would stop them once it is full.
        self.err_lines: list[str] = []
        reader = threading.Thread(target=lambda: self.err_lines.extend(self.proc.stderr or ()), daemon=True)
        reader.start()
        # The banner is read on a thread with a deadline: a launcher that hangs while starting (it once did,
        # in fork) fails this test instead of blocking the whole run.
        bannered = threading.Event()

        def read_banner() -> None:
            for line in self.proc.stdout or ():
                self.banner += line
                if "stop:" in line:
                    break
            bannered.set()

        threading.Thread(target=read_banner, daemon=True).start()
        if not bannered.wait(120):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if "AllSource is running" not in self.banner:
            self.proc.wait(10)
            reader.join(5)  # until it has taken the last lines
            raise AssertionError(f"no banner: {self.banner!r}; the launcher said:\n" + "".join(self.err_lines[-40:]))
        self.services = _children(self.proc.pid)
        assert len(self.services) == 4

    def stop(self) -> None:
        for pid in [self.proc.pid, *self.services]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait()


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    running = Launcher(tmp_path, _env(tmp_path))
    try:
        yield running
    finally:
        running.stop()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_repeated_signals_to_the_whole_group_leave_no_service_running(launcher: Launcher, sig: int) -> None:
    """Before: a second SIGTERM arriving while the launcher stopped the services killed the launcher
    midway, and the services were left running with parent 1."""
    for _ in range(3):
        os.killpg(launcher.proc.pid, sig)
        time.sleep(0.05)
    try:
        launcher.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        raise AssertionError("the launcher did not stop within 60 s:\n" + "".join(launcher.err_lines[-40:])) from None
    assert _wait_gone(launcher.services, 30) == []


def test_a_launcher_killed_outright_takes_its_services_with_it(launcher: Launcher) -> None:
    os.kill(launcher.proc.pid, signal.SIGKILL)
    launcher.proc.wait()
    assert _wait_gone(launcher.services, 30) == []


def test_a_service_started_for_a_launcher_that_is_gone_stops_at_once(tmp_path: Path) -> None:
    """Each service sets its own death signal (ALLSOURCE_LAUNCHER_PID); one whose launcher died before it
    could (its parent is no longer that launcher) would never get the signal, so it does not start."""
    env = {**_env(tmp_path), "ALLSOURCE_LAUNCHER_PID": "1"}  # not this service's parent
    done = subprocess.run(
        [sys.executable, "-m", "services.storage"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0 and "the launcher has gone" in done.stderr, done.stderr
    assert not (tmp_path / "data").exists()  # it stopped before opening anything


def test_a_second_launcher_refuses_at_once_in_one_line(launcher: Launcher, tmp_path: Path) -> None:
    """Before: a second `make run` found the first one healthy, printed "AllSource is running", then failed."""
    env = _launcher_env(launcher)  # the same ports and data directory as the first
    started = time.monotonic()
    second = subprocess.run(
        [sys.executable, "-m", "services.suite"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert second.returncode != 0 and time.monotonic() - started < 10
    assert "AllSource is running" not in second.stdout
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot start" in lines[0] and "another suite" in lines[0], second.stderr
    assert all(_alive(pid) for pid in launcher.services), "the first suite must be untouched"


def _launcher_env(launcher: Launcher) -> dict[str, str]:
    raw = Path(f"/proc/{launcher.proc.pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_the_banner_commands_work_as_printed(launcher: Launcher) -> None:
    commands = [line.strip().removeprefix("try:").strip() for line in launcher.banner.splitlines()]
    commands = [c for c in commands if "grpcurl" in c]
    assert len(commands) == 2
    listed = subprocess.run(commands[0], shell=True, capture_output=True, text=True, timeout=30, check=False)
    assert listed.returncode == 0 and "allsource.v1.QueryService" in listed.stdout, listed.stderr
    me = subprocess.run(commands[1], shell=True, capture_output=True, text=True, timeout=30, check=False)
    assert me.returncode == 0 and '"kind": "api_key"' in me.stdout, me.stderr


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_console_script_answers_version(script: str) -> None:
    path = ROOT / ".venv" / "bin" / script
    done = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0 and done.stdout.strip() == f"{script} {VERSION}", (done.stdout, done.stderr)


def test_a_crashed_service_is_restarted_and_the_launcher_says_so(launcher: Launcher) -> None:
    from allsource_client import AllSourceClient, event

    storage = launcher.services[0]
    os.kill(storage, signal.SIGKILL)
    said = ""
    deadline = time.monotonic() + 30
    while "restarting storage" not in said and time.monotonic() < deadline:
        time.sleep(0.1)
        said = "".join(launcher.err_lines)
    assert "storage exited with status -9; restarting it in" in said and "restarting storage" in said, said
    ports = {name: _launcher_env(launcher)[f"ALLSOURCE_{name.upper()}__PORT"] for name in ("ingest", "query")}
    key = (Path(_launcher_env(launcher)["ALLSOURCE_STORAGE__DATA_DIR"]) / "bootstrap-admin.key").read_text().strip()

    def appends() -> bool:
        try:
            with AllSourceClient(
                f"127.0.0.1:{ports['ingest']}",
                f"127.0.0.1:{ports['query']}",
                metadata=(("authorization", f"Bearer {key}"),),
            ) as client:
                return client.append("after-restart", [event("E")]).last_version >= 1
        except Exception:
            return False

    deadline = time.monotonic() + 30
    while not appends():
        assert time.monotonic() < deadline, "the suite did not work again after the restart"
        time.sleep(0.2)
    restarted = _children(launcher.proc.pid)
    assert len(restarted) == 4 and storage not in restarted
    launcher.services = restarted
