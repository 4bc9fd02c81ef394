"""`allsource-cli shell` driven in a real terminal (tmux): a command, completion of a command and of a
stream id, history across the up arrow and on disk, and the profile and tenant in the prompt."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tests.cli.conftest import Cli
from tests.harness import ROOT


class Tmux:
    """A tmux server of this test's own (its own socket), with one session running one command."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket

    def __call__(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-S", str(self.socket), "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return done.stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "cli")

    def keys(self, *keys: str) -> None:
        self("send-keys", "-t", "cli", *keys)

    def type(self, text: str) -> None:
        self("send-keys", "-t", "cli", "-l", text)

    def wait_for(self, needle: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if needle in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} not on the screen within {timeout} s:\n{screen}")
            time.sleep(0.1)

    def prompt_line(self) -> str:
        """The last line that shows the prompt (where the cursor is)."""
        return [line for line in self.screen().splitlines() if line.startswith("allsource ")][-1]


@contextlib.contextmanager
def shell_in_tmux(cli: Cli, tmp_path: Path) -> Iterator[Tmux]:
    assert shutil.which("tmux"), "tmux is required (apt-get install tmux; .ci/run installs it)"
    env = cli.environment(None, {"TERM": "xterm-256color", "LANG": "C.UTF-8"})
    keep = ("HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "PYTHONPATH", "PATH", "ALLSOURCE_API_KEY", "LANG")
    command = shlex.join(
        ["env", "-i", *(f"{k}={env[k]}" for k in keep if k in env), sys.executable, "-m", "services.cli", "shell"]
    )
    tmux = Tmux(tmp_path / "tmux.sock")
    tmux("new-session", "-d", "-s", "cli", "-x", "150", "-y", "45", "-c", str(ROOT), command)
    server_pid = int(tmux("display-message", "-p", "-t", "cli", "#{pid}").strip())
    try:
        yield tmux
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            tmux("kill-server")
        with contextlib.suppress(ProcessLookupError):
            os.kill(server_pid, signal.SIGKILL)


def test_shell_runs_commands_completes_and_remembers(cli: Cli, tenant: str, tmp_path: Path) -> None:
    cli.ok("--tenant", tenant, "events", "append", "invoice-4711", "--type", "Issued")
    with shell_in_tmux(cli, tmp_path) as tmux:
        tmux.wait_for("allsource test:->")

        # A command, its table on the screen.
        tmux.type("whoami")
        tmux.keys("Enter")
        tmux.wait_for("bootstrap admin")

        # The tenant goes into the prompt.
        tmux.type(f"use tenant {tenant}")
        tmux.keys("Enter")
        tmux.wait_for(f"allsource test:{tenant}>")

        # Completion of a command word, then of a stream id fetched from the server.
        tmux.type("eve")
        tmux.keys("Tab")
        deadline = time.monotonic() + 10
        while not tmux.prompt_line().endswith("events") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert tmux.prompt_line().endswith(f"{tenant}> events"), tmux.screen()
        tmux.type(" read invoice-4")
        tmux.keys("Tab")
        deadline = time.monotonic() + 10
        while "invoice-4711" not in tmux.prompt_line() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert tmux.prompt_line().endswith("events read invoice-4711"), tmux.screen()
        tmux.keys("Enter")
        tmux.wait_for("Issued")

        # History: the up arrow brings the last command back.
        tmux.keys("Up")
        deadline = time.monotonic() + 10
        while not tmux.prompt_line().endswith("events read invoice-4711") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert tmux.prompt_line().endswith(f"{tenant}> events read invoice-4711"), tmux.screen()
        tmux.keys("C-c")

        # A refusal is reported and the shell goes on.
        tmux.type("tenants get no-such-tenant")
        tmux.keys("Enter")
        tmux.wait_for("TENANT_NOT_FOUND")
        tmux.type("exit")
        tmux.keys("Enter")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                tmux.screen()
            except subprocess.CalledProcessError:
                break  # the session ended with the shell
            time.sleep(0.1)
        else:
            raise AssertionError("the shell did not exit")

    history = (cli.home / ".state" / "allsource" / "shell_history").read_text()
    for command in ("whoami", f"use tenant {tenant}", "events read invoice-4711", "tenants get no-such-tenant"):
        assert f"+{command}\n" in history, history
