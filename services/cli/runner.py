"""Run one command line of the CLI and turn whatever happened into an exit status."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click
import grpc

from services.cli.context import ShellState
from services.cli.errors import FAILED, INTERRUPTED, OK, USAGE, CliError, from_rpc, report

PROG = "allsource-cli"


def run_command(root: click.Group, args: Sequence[str], shell: ShellState | None = None) -> int:
    """Run `args` through the root group (standalone mode off: errors come back here, not as exits)."""
    try:
        result = root.main(args=list(args), prog_name=PROG, standalone_mode=False, obj=shell)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        print("aborted", file=sys.stderr)
        return INTERRUPTED
    except CliError as exc:
        return report(exc)
    except grpc.RpcError as err:  # a call made outside Session.call still reports the server's reason
        return report(from_rpc(err))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (`| head`): nothing left to say
        return FAILED
    except (ValueError, OverflowError) as exc:  # a value no request can carry (a number past its field's range)
        print(f"error: invalid value: {exc}", file=sys.stderr)
        return USAGE
    return result if isinstance(result, int) else OK
