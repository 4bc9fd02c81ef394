"""What every command receives: the global options, the output format and a session opened on demand."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Concatenate, ParamSpec, TypeVar

import click

from services.cli.output import Column, OutputFormat, emit
from services.cli.profiles import Profile, load_profile
from services.cli.session import Session, choose_credential

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class GlobalOptions:
    """The options given before the command group."""

    profile: str | None = None
    output: OutputFormat | None = None
    tenant: str | None = None
    api_key_file: str | None = None
    tls: bool | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str | None = None
    timeout: float | None = None

    def over(self, base: GlobalOptions) -> GlobalOptions:
        """These options where given, the base's elsewhere (a shell line over the shell's options)."""
        given = {k: v for k, v in self.__dict__.items() if v is not None}
        return replace(base, **given)

    def connection(self) -> GlobalOptions:
        """The options that choose a connection (all but the output format)."""
        return replace(self, output=None)

    def resolve_profile(self) -> Profile:
        """The profile from the config file with the command line's settings over it."""
        return load_profile(self.profile).with_overrides(
            tenant=self.tenant,
            tls=self.tls,
            ca_file=self.ca_file,
            cert_file=self.cert_file,
            key_file=self.key_file,
            server_name=self.server_name,
            timeout=self.timeout,
        )


@dataclass
class SessionPool:
    """Sessions kept open across the commands of one shell, by their connection settings."""

    sessions: dict[GlobalOptions, Session] = field(default_factory=dict)

    def get(self, options: GlobalOptions) -> Session:
        key = options.connection()
        if key not in self.sessions:
            self.sessions[key] = open_session(options)
        return self.sessions[key]

    def close(self) -> None:
        for session in self.sessions.values():
            session.close()
        self.sessions.clear()


@dataclass
class ShellState:
    """What `allsource-cli shell` carries from line to line: its options and its open sessions."""

    options: GlobalOptions
    pool: SessionPool = field(default_factory=SessionPool)


def open_session(options: GlobalOptions) -> Session:
    """A session for the options' profile, credential and tenant."""
    profile = options.resolve_profile()
    return Session(profile, choose_credential(profile, options.api_key_file), tenant=profile.tenant)


@dataclass
class Invocation:
    """One command's view of the CLI: options, output and the session (opened on first use)."""

    options: GlobalOptions
    pool: SessionPool | None = None
    _session: Session | None = None

    @property
    def output(self) -> OutputFormat:
        return self.options.output or OutputFormat.TABLE

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = self.pool.get(self.options) if self.pool else open_session(self.options)
        return self._session

    def emit(self, value: Any, columns: Sequence[Column] = (), *, title: str = "", empty: str = "nothing") -> None:
        """Print a result in the chosen output format."""
        emit(self.output, value, columns, title=title, empty=empty)

    def close(self) -> None:
        """Close the session unless a shell keeps it."""
        if self._session is not None and self.pool is None:
            self._session.close()


def pass_invocation(command: Callable[Concatenate[Invocation, P], R]) -> Callable[P, R]:
    """Give a command its Invocation as first argument."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        return command(click.get_current_context().find_object(Invocation) or _missing(), *args, **kwargs)

    return wrapper


def _missing() -> Invocation:
    raise RuntimeError("command run outside allsource-cli's root group")
