"""`allsource-cli`: administer a running suite over its public gRPC API.

Shape: `allsource-cli [--profile P] [--output table|json|yaml] GROUP COMMAND [ARGS]`. The command groups
are registered in `services/cli/commands/__init__.py`, one module each.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from services.cli.commands import COMMANDS
from services.cli.context import GlobalOptions, Invocation, ShellState
from services.cli.errors import EXIT_STATUSES
from services.cli.output import OutputFormat
from services.cli.runner import run_command
from shared.core.version import VERSION

PROG = "allsource-cli"

EPILOG = f"""\b
Profiles live in $XDG_CONFIG_HOME/allsource/config.toml (~/.config/allsource/config.toml); without one,
the `default` profile talks to localhost:50051-50053. Credentials: --api-key-file, ALLSOURCE_API_KEY, the
profile's api_key_file, or `allsource-cli login`.

\b
{EXIT_STATUSES}

\b
Shell completion (bash): eval "$(_ALLSOURCE_CLI_COMPLETE=bash_source allsource-cli)"; zsh_source and
fish_source for zsh and fish."""


@click.group(
    name=PROG,
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
)
@click.option("--profile", "-p", envvar="ALLSOURCE_PROFILE", help="Profile of the config file (ALLSOURCE_PROFILE).")
@click.option(
    "--output",
    "-o",
    type=click.Choice([f.value for f in OutputFormat]),
    help="table (the default) for people, json or yaml for scripts.",
)
@click.option("--tenant", "-t", help="Act on this tenant (operators), or log in to it.")
@click.option("--api-key-file", type=click.Path(dir_okay=False), help="Read the API key from this file.")
@click.option("--tls/--no-tls", default=None, help="Use TLS (the profile's setting otherwise).")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False), help="CA certificates to trust (PEM).")
@click.option("--cert-file", type=click.Path(exists=True, dir_okay=False), help="Client certificate for mTLS.")
@click.option("--key-file", type=click.Path(exists=True, dir_okay=False), help="Client private key for mTLS.")
@click.option("--server-name", help="The name the server certificate must carry, when not the host's.")
@click.option("--timeout", type=click.FloatRange(min=0.1), help="Seconds per call (default 30).")
@click.version_option(VERSION, "--version", prog_name=PROG, message="%(prog)s %(version)s")
@click.pass_context
def cli(
    ctx: click.Context,
    profile: str | None,
    output: str | None,
    tenant: str | None,
    api_key_file: str | None,
    tls: bool | None,
    ca_file: str | None,
    cert_file: str | None,
    key_file: str | None,
    server_name: str | None,
    timeout: float | None,
) -> None:
    """Administer AllSource: tenants, quotas, users, API keys, events, streams, consumer groups, configuration,
    diagnostics, audit."""
    options = GlobalOptions(
        profile=profile,
        output=OutputFormat(output) if output else None,
        tenant=tenant,
        api_key_file=api_key_file,
        tls=tls,
        ca_file=ca_file,
        cert_file=cert_file,
        key_file=key_file,
        server_name=server_name,
        timeout=timeout,
    )
    shell = ctx.obj if isinstance(ctx.obj, ShellState) else None
    invocation = Invocation(options.over(shell.options) if shell else options, pool=shell.pool if shell else None)
    ctx.obj = invocation
    ctx.call_on_close(invocation.close)


for command in COMMANDS:
    cli.add_command(command)


def run(args: Sequence[str], shell: ShellState | None = None) -> int:
    """Run one command line and return its exit status."""
    return run_command(cli, args, shell)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point."""
    sys.exit(run(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
