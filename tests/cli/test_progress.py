"""Progress bars: drawn on stderr when it is a terminal (a pseudo-terminal here), absent when piped."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import termios
import time
from pathlib import Path

from tests.cli.conftest import CLI, Cli
from tests.harness import ROOT

BAR = "━"


def on_terminal(cli: Cli, *args: str, timeout: float = 60) -> tuple[int, str]:
    """Run the CLI with stdin, stdout and stderr on a pseudo-terminal; its exit status and screen output."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = cli.environment(None, {"TERM": "xterm-256color", "COLUMNS": "120"})
    for name in ("NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "FORCE_COLOR"):
        env.pop(name, None)
    proc = subprocess.Popen([*CLI, *args], cwd=ROOT, stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every holder of the terminal's other end has closed it
                break
            if not data:
                break
            chunks.append(data)
        status = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return status, b"".join(chunks).decode(errors="replace")


def test_export_and_import_draw_a_bar_on_a_terminal_only(cli: Cli, tenant: str, tmp_path: Path) -> None:
    for n in range(3):
        cli.ok("--tenant", tenant, "events", "append", f"p-{n}", "--type", "Tick")
    dump = tmp_path / "out.ndjson"

    status, screen = on_terminal(cli, "--tenant", tenant, "events", "export", str(dump))
    assert status == 0, screen
    assert "exporting" in screen and BAR in screen and "3/3" in screen and "100%" in screen, screen

    piped = cli.run("--tenant", tenant, "events", "export", str(dump))
    assert piped.returncode == 0, piped.stderr
    for output in (piped.stdout, piped.stderr):
        assert BAR not in output and "exporting" not in output and "\x1b[" not in output, output
    assert "last position written: 3" in piped.stderr

    target = cli.json("tenants", "create", f"{tenant}-b", "--preset", "unlimited")["tenant_id"]
    status, screen = on_terminal(cli, "--tenant", target, "events", "import", str(dump))
    assert status == 0, screen
    assert "importing" in screen and BAR in screen and "3/3" in screen, screen
    piped = cli.run("--tenant", target, "events", "import", str(dump))
    assert piped.returncode == 0 and BAR not in piped.stderr + piped.stdout and "importing" not in piped.stderr


def test_a_backup_and_its_restore_draw_a_bar_on_a_terminal_only(cli: Cli, tenant: str) -> None:
    cli.ok("--tenant", tenant, "events", "append", "b-1", "--type", "Tick")
    status, screen = on_terminal(cli, "backups", "create", "--tenant", tenant)
    assert status == 0, screen
    assert "backing up" in screen and BAR in screen and "100%" in screen, screen
    backup_id = cli.json("backups", "list")[-1]["backup_id"]
    status, screen = on_terminal(cli, "backups", "restore", backup_id, "--tenant", tenant, "--dry-run")
    assert status == 0, screen
    assert "checking" in screen and BAR in screen and "would restore" in screen, screen
    piped = cli.run("backups", "create", "--tenant", tenant)
    assert piped.returncode == 0 and BAR not in piped.stderr + piped.stdout and "backing up" not in piped.stderr
