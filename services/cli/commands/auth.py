"""`login`, `logout` and `whoami`: the profile's own session with the suite."""

from __future__ import annotations

import sys

import click
import grpc
from allsource.v1 import auth_pb2, options_pb2

from services.cli.context import Invocation, pass_invocation
from services.cli.errors import CliError, UsageProblem, from_rpc
from services.cli.output import label, note, when
from services.cli.profiles import forget_tokens, load_tokens, save_tokens
from services.cli.session import tokens_from_pair


@click.command("login")
@click.option("--username", "-u", help="The username (the profile's `username` by default).")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@pass_invocation
def login(inv: Invocation, username: str | None, password_stdin: bool) -> None:
    """Log in with a username and password; the tokens are kept for the profile (mode 0600)."""
    session = inv.session
    user = username or session.profile.username
    if not user:
        if not sys.stdin.isatty():
            raise UsageProblem("give --username (or set `username` in the profile)")
        user = str(click.prompt("Username"))
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif sys.stdin.isatty():
        password = str(click.prompt("Password", hide_input=True))
    else:
        raise UsageProblem("no terminal to type the password on: use --password-stdin")
    tenant = session.tenant or "default"
    request = auth_pb2.LoginRequest(tenant_id=tenant, username=user, password=password)
    # Login is unauthenticated: no credential and no tenant header, whatever the profile holds.
    try:
        reply = session.auth.Login(request, timeout=session.profile.timeout)
    except grpc.RpcError as err:
        raise from_rpc(err) from None
    path = save_tokens(session.profile.name, tokens_from_pair(reply.tokens, tenant, user))
    if session.credential.kind == "api_key":
        note(f"the API key from {session.credential.source} still takes precedence over this login")
    inv.emit(
        {"profile": session.profile.name, "tenant_id": tenant, "username": user, "credentials": str(path)},
        [
            ("profile", lambda r: r["profile"]),
            ("tenant", lambda r: r["tenant_id"]),
            ("username", lambda r: r["username"]),
            ("access token expires", lambda r: when(reply.tokens.access_token_expires_at)),
            ("kept in", lambda r: r["credentials"]),
        ],
        title="logged in",
    )


@click.command("logout")
@pass_invocation
def logout(inv: Invocation) -> None:
    """End the profile's login session on the server and forget its tokens."""
    session = inv.session
    tokens = load_tokens(session.profile.name)
    if tokens is None:
        note(f"profile {session.profile.name} is not logged in")
        return
    # The session is ended with its own tokens, whatever credential other calls present (an API key from
    # the environment or the profile): forgetting them here alone would leave the session alive on the
    # server, its refresh token still good.
    try:
        bearer = session.login_bearer()
    except CliError:  # its refresh token has expired: the server holds nothing of it any more
        bearer = ""
    if bearer:
        try:
            session.auth.Logout(
                auth_pb2.LogoutRequest(refresh_token=tokens.refresh_token),
                metadata=[("authorization", f"Bearer {bearer}")],
                timeout=session.profile.timeout,
            )
        except grpc.RpcError as err:
            raise from_rpc(err, "the tokens are kept: try `allsource-cli logout` again") from None
    forget_tokens(session.profile.name)
    inv.emit({"profile": session.profile.name, "logged_out": True}, [("logged out", lambda r: r["profile"])])


@click.command("whoami")
@pass_invocation
def whoami(inv: Invocation) -> None:
    """Who the profile's credential is: kind, name, tenant, role and permissions."""
    session = inv.session
    reply = session.call(session.auth.WhoAmI, auth_pb2.WhoAmIRequest())
    inv.emit(
        reply,
        [
            ("kind", lambda r: r.kind),
            ("name", lambda r: r.name),
            ("subject", lambda r: r.subject),
            ("tenant", lambda r: r.tenant_id),
            ("role", lambda r: label(auth_pb2.Role.Name(r.role), "ROLE_")),
            ("permissions", lambda r: [label(options_pb2.Permission.Name(p), "PERMISSION_") for p in r.permissions]),
            ("expires", lambda r: when(r.expires_at) if r.HasField("expires_at") else "never"),
            ("stream prefix", lambda r: r.stream_id_prefix),
            ("event types", lambda r: list(r.event_types)),
            ("credential from", lambda r: session.credential.source),
            ("profile", lambda r: f"{session.profile.name} ({session.profile.source})"),
        ],
    )
