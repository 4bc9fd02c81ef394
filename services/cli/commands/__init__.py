"""The CLI's commands, registered here in one place: a module per command group.

A new group is a module under this package exposing `group` (a click.Group), added to GROUPS; the
root group of `services/cli/main.py` adds every entry of COMMANDS.
"""

from __future__ import annotations

import click

from services.cli.commands import (
    audit,
    auth,
    backups,
    config,
    diag,
    events,
    groups,
    keys,
    quotas,
    shell,
    streams,
    tenants,
    users,
)

GROUPS: tuple[click.Group, ...] = (
    tenants.group,
    quotas.group,
    users.group,
    keys.group,
    events.group,
    streams.group,
    groups.group,
    config.group,
    diag.group,
    audit.group,
    backups.group,
)
COMMANDS: tuple[click.Command, ...] = (auth.login, auth.logout, auth.whoami, *GROUPS, shell.shell)
