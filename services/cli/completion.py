"""The session that completion uses: the shell's own, or one opened from the command line being typed."""

from __future__ import annotations

from contextvars import ContextVar

import click

from services.cli.context import GlobalOptions, open_session
from services.cli.session import Session

shell_session: ContextVar[Session | None] = ContextVar("allsource_cli_shell_session", default=None)


def session_for(ctx: click.Context) -> Session:
    """In `allsource-cli shell`, its session; in a shell's completion, one for the typed global options."""
    current = shell_session.get()
    if current is not None:
        return current
    params = ctx.find_root().params
    return open_session(
        GlobalOptions(
            profile=params.get("profile"),
            tenant=params.get("tenant"),
            api_key_file=params.get("api_key_file"),
            tls=params.get("tls"),
            ca_file=params.get("ca_file"),
            cert_file=params.get("cert_file"),
            key_file=params.get("key_file"),
            server_name=params.get("server_name"),
        )
    )
