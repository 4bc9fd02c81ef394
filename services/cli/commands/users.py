"""`users`: create, list, get, set-role, reset-password, disable, enable, delete, passwd (AuthService).

Users belong to the acting tenant (the caller's own unless --tenant names another). A user is named by
its id or its username.
"""

from __future__ import annotations

import re
import sys
from typing import Any

import click
from allsource.v1 import auth_pb2

from services.cli.context import Invocation, pass_invocation
from services.cli.errors import UsageProblem
from services.cli.output import Column, label, when
from services.cli.params import ROLES, Choice

USER_COLUMNS: list[Column] = [
    ("user id", lambda u: u.user_id),
    ("username", lambda u: u.username),
    ("role", lambda u: label(auth_pb2.Role.Name(u.role), "ROLE_")),
    ("disabled", lambda u: "yes" if u.disabled else "no"),
    ("created", lambda u: when(u.created_at)),
    ("password set", lambda u: when(u.password_changed_at)),
]
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def all_users(inv: Invocation) -> list[Any]:
    """Every user of the acting tenant, following pages."""
    users: list[Any] = []
    token = ""
    while True:
        page = inv.session.call(inv.session.auth.ListUsers, auth_pb2.ListUsersRequest(page_size=1000, page_token=token))
        users.extend(page.users)
        token = page.next_page_token
        if not token:
            return users


def user_id(inv: Invocation, user: str) -> str:
    """The id of a user named by id or username."""
    if _UUID.fullmatch(user):
        return user
    for found in all_users(inv):
        if found.username == user:
            return str(found.user_id)
    raise UsageProblem(f"no user named {user!r} in this tenant")


def read_password(prompt: str, from_stdin: bool) -> str:
    """A password from the first line of stdin, or typed twice without echo."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        raise UsageProblem("no terminal to type the password on: use --password-stdin")
    return str(click.prompt(prompt, hide_input=True, confirmation_prompt=True))


password_stdin = click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")


@click.group("users")
def group() -> None:
    """Users of the acting tenant: create, list, roles, passwords, disable, delete (administrators)."""


@group.command("create")
@click.argument("username")
@click.option("--role", type=Choice(ROLES), default="read-only", show_default=True, help="The user's role.")
@password_stdin
@pass_invocation
def create(inv: Invocation, username: str, role: int, password_stdin: bool) -> None:
    """Create a user with a password."""
    password = read_password(f"Password for {username}", password_stdin)
    request = auth_pb2.CreateUserRequest(username=username, password=password, role=role)  # type: ignore[arg-type]
    inv.emit(inv.session.call(inv.session.auth.CreateUser, request).user, USER_COLUMNS)


@group.command("list")
@pass_invocation
def list_users(inv: Invocation) -> None:
    """List the users by username."""
    inv.emit(all_users(inv), USER_COLUMNS, empty="no users")


@group.command("get")
@click.argument("user")
@pass_invocation
def get(inv: Invocation, user: str) -> None:
    """Show a user (by id or username)."""
    request = auth_pb2.GetUserRequest(user_id=user_id(inv, user))
    inv.emit(inv.session.call(inv.session.auth.GetUser, request).user, USER_COLUMNS)


@group.command("set-role")
@click.argument("user")
@click.argument("role", type=Choice(ROLES))
@pass_invocation
def set_role(inv: Invocation, user: str, role: int) -> None:
    """Change a user's role; it applies to the user's tokens within a second."""
    request = auth_pb2.SetUserRoleRequest(user_id=user_id(inv, user), role=role)  # type: ignore[arg-type]
    inv.emit(inv.session.call(inv.session.auth.SetUserRole, request).user, USER_COLUMNS)


@group.command("reset-password")
@click.argument("user")
@password_stdin
@pass_invocation
def reset_password(inv: Invocation, user: str, password_stdin: bool) -> None:
    """Set a user's password; the user's existing tokens stop working."""
    target = user_id(inv, user)
    password = read_password(f"New password for {user}", password_stdin)
    inv.session.call(
        inv.session.auth.ResetPassword, auth_pb2.ResetPasswordRequest(user_id=target, new_password=password)
    )
    inv.emit({"user_id": target, "password_reset": True}, [("user id", lambda r: r["user_id"])], title="password reset")


@group.command("disable")
@click.argument("user")
@pass_invocation
def disable(inv: Invocation, user: str) -> None:
    """Disable a user: logins are refused and its tokens stop working."""
    request = auth_pb2.DisableUserRequest(user_id=user_id(inv, user))
    inv.emit(inv.session.call(inv.session.auth.DisableUser, request).user, USER_COLUMNS)


@group.command("enable")
@click.argument("user")
@pass_invocation
def enable(inv: Invocation, user: str) -> None:
    """Enable a disabled user."""
    request = auth_pb2.EnableUserRequest(user_id=user_id(inv, user))
    inv.emit(inv.session.call(inv.session.auth.EnableUser, request).user, USER_COLUMNS)


@group.command("delete")
@click.argument("user")
@pass_invocation
def delete(inv: Invocation, user: str) -> None:
    """Delete a user; its tokens stop working."""
    target = user_id(inv, user)
    inv.session.call(inv.session.auth.DeleteUser, auth_pb2.DeleteUserRequest(user_id=target))
    inv.emit({"user_id": target, "deleted": True}, [("user id", lambda r: r["user_id"])], title="deleted")


@group.command("passwd")
@click.option("--password-stdin", is_flag=True, help="Read the current and new passwords from two lines of stdin.")
@pass_invocation
def passwd(inv: Invocation, password_stdin: bool) -> None:
    """Change your own password (other sessions of yours end)."""
    if password_stdin:
        current, new = sys.stdin.readline().rstrip("\n"), sys.stdin.readline().rstrip("\n")
    elif sys.stdin.isatty():
        current = str(click.prompt("Current password", hide_input=True))
        new = str(click.prompt("New password", hide_input=True, confirmation_prompt=True))
    else:
        raise UsageProblem("no terminal to type the passwords on: use --password-stdin")
    request = auth_pb2.ChangePasswordRequest(current_password=current, new_password=new)
    inv.session.call(inv.session.auth.ChangePassword, request)
    inv.emit({"password_changed": True}, [("password changed", lambda r: "yes")])
