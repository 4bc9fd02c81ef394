"""`keys`: create (the secret is shown once), list, rotate, revoke API keys of the acting tenant."""

from __future__ import annotations

import sys
from typing import Any

import click
from allsource.v1 import auth_pb2, options_pb2
from google.protobuf import duration_pb2

from services.cli.context import Invocation, pass_invocation
from services.cli.output import Column, OutputFormat, label, note, when
from services.cli.params import PERMISSIONS, ROLES, Choice, Duration

KEY_COLUMNS: list[Column] = [
    ("key id", lambda k: k.key_id),
    ("name", lambda k: k.name),
    ("role", lambda k: label(auth_pb2.Role.Name(k.role), "ROLE_") if not k.permissions else "-"),
    ("permissions", lambda k: [label(options_pb2.Permission.Name(p), "PERMISSION_") for p in k.permissions]),
    ("stream prefix", lambda k: k.stream_id_prefix),
    ("event types", lambda k: list(k.event_types)),
    ("expires", lambda k: when(k.expires_at) if k.HasField("expires_at") else "never"),
    ("last used", lambda k: when(k.last_used_at) if k.HasField("last_used_at") else "-"),
    ("revoked", lambda k: "yes" if k.revoked else "no"),
]


def show_secret(inv: Invocation, reply: Any) -> None:
    """The key with its secret; on a table, a warning that it is shown only now."""
    if inv.output is not OutputFormat.TABLE:
        inv.emit(reply)
        return
    inv.emit(reply.api_key, KEY_COLUMNS)
    # On a line of its own, never folded by the table, so it can be copied whole.
    sys.stdout.write(f"secret: {reply.secret}\n")
    sys.stdout.flush()
    note("The secret is shown only now: store it (it authenticates as `authorization: Bearer <secret>`).")


@click.group("keys")
def group() -> None:
    """API keys of the acting tenant: create, list, rotate, revoke (administrators)."""


@group.command("create")
@click.argument("name")
@click.option("--role", type=Choice(ROLES), default="read-only", show_default=True, help="The key's role.")
@click.option(
    "--permission",
    "permissions",
    multiple=True,
    type=Choice(PERMISSIONS),
    help="A permission instead of a role (repeatable).",
)
@click.option("--stream-prefix", default="", help="Limit the key to streams whose id starts with this.")
@click.option("--event-type", "event_types", multiple=True, help="Limit the key to this event type (repeatable).")
@click.option("--ttl", type=Duration(), help="How long the key works (90s, 15m, 2h, 30d); never expires by default.")
@pass_invocation
def create(
    inv: Invocation,
    name: str,
    role: int,
    permissions: tuple[int, ...],
    stream_prefix: str,
    event_types: tuple[str, ...],
    ttl: duration_pb2.Duration | None,
) -> None:
    """Create an API key; its secret is printed once."""
    request = auth_pb2.CreateApiKeyRequest(
        name=name,
        role=role,  # type: ignore[arg-type]
        permissions=list(permissions),  # type: ignore[arg-type]
        stream_id_prefix=stream_prefix,
        event_types=list(event_types),
        ttl=ttl,
    )
    show_secret(inv, inv.session.call(inv.session.auth.CreateApiKey, request))


@group.command("list")
@pass_invocation
def list_keys(inv: Invocation) -> None:
    """List the API keys (never their secrets)."""
    keys: list[Any] = []
    token = ""
    while True:
        page = inv.session.call(
            inv.session.auth.ListApiKeys, auth_pb2.ListApiKeysRequest(page_size=1000, page_token=token)
        )
        keys.extend(page.api_keys)
        token = page.next_page_token
        if not token:
            break
    inv.emit(keys, KEY_COLUMNS, empty="no API keys")


@group.command("rotate")
@click.argument("key_id")
@click.option("--grace", type=Duration(), help="How long the old secret keeps working (the server's default).")
@pass_invocation
def rotate(inv: Invocation, key_id: str, grace: duration_pb2.Duration | None) -> None:
    """Issue a new secret for a key; the old one works for the grace period."""
    request = auth_pb2.RotateApiKeyRequest(key_id=key_id, grace_period=grace)
    show_secret(inv, inv.session.call(inv.session.auth.RotateApiKey, request))


@group.command("revoke")
@click.argument("key_id")
@pass_invocation
def revoke(inv: Invocation, key_id: str) -> None:
    """Revoke a key at once."""
    request = auth_pb2.RevokeApiKeyRequest(key_id=key_id)
    inv.emit(inv.session.call(inv.session.auth.RevokeApiKey, request).api_key, KEY_COLUMNS)
