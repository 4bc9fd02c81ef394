"""Profiles from `~/.config/allsource/config.toml` and the tokens `login` keeps for each of them.

A profile names the public endpoints, the TLS files and the tenant to act on. Without a config file the
`default` profile talks to the suite of `make run` on localhost. Tokens live in
`credentials/<profile>.json` beside the config file, readable by the user only (0600).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from services.cli.errors import UsageProblem

DEFAULT_PROFILE = "default"
DEFAULT_PORTS = {"ingest": 50051, "query": 50052, "admin": 50053}

CONFIG_EXAMPLE = """\
default_profile = "local"

[profiles.local]
host = "localhost"                 # ingest :50051, query :50052, admin :50053 unless given below
# ingest = "localhost:50051"
# query = "localhost:50052"
# admin = "localhost:50053"
tenant = "acme"                    # act on this tenant (operators) / log in to it (users)
api_key_file = "~/.allsource/key"  # or ALLSOURCE_API_KEY, or `allsource-cli login`
# tls = true
# ca_file = "/etc/allsource/ca.pem"
# cert_file = "client.pem"         # mTLS
# key_file = "client-key.pem"
# server_name = "allsource.example" # the name the server's certificate carries
# timeout = 30.0
"""


def config_dir() -> Path:
    """`$XDG_CONFIG_HOME/allsource`, else `~/.config/allsource`."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "allsource"


def state_dir() -> Path:
    """`$XDG_STATE_HOME/allsource`, else `~/.local/state/allsource` (the shell's history)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "allsource"


@dataclass(frozen=True)
class Profile:
    """Where the suite is and how to reach it."""

    name: str = DEFAULT_PROFILE
    host: str = "localhost"
    ingest: str = ""
    query: str = ""
    admin: str = ""
    tenant: str = ""
    username: str = ""
    api_key_file: str = ""
    tls: bool = False
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    server_name: str = ""
    timeout: float = 30.0
    source: str = field(default="built-in defaults", compare=False)

    def address(self, service: str) -> str:
        """The endpoint of a public service: its own setting, else host and the default port."""
        explicit: str = getattr(self, service)
        return explicit or f"{self.host}:{DEFAULT_PORTS[service]}"

    def with_overrides(self, **values: Any) -> Profile:
        """A copy with the given settings replaced (command-line options); None leaves a setting."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})


_TYPES = {f.name: f.type for f in fields(Profile) if f.name not in ("name", "source")}


def load_config(path: Path | None = None) -> dict[str, Any]:
    """The config file's content; empty when there is none."""
    path = path or config_dir() / "config.toml"
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageProblem(f"cannot read {path}: {exc}") from None


def profile_names(config: dict[str, Any]) -> list[str]:
    """The profiles the config file defines."""
    profiles = config.get("profiles") or {}
    return sorted(profiles) if isinstance(profiles, dict) else []


def load_profile(name: str | None, path: Path | None = None) -> Profile:
    """The named profile (or the file's default_profile, else `default`), checked key by key."""
    path = path or config_dir() / "config.toml"
    config = load_config(path)
    chosen = name or str(config.get("default_profile") or DEFAULT_PROFILE)
    profiles = config.get("profiles") or {}
    if chosen not in profiles:
        if chosen == DEFAULT_PROFILE:
            return Profile()
        known = ", ".join(profile_names(config)) or "none"
        raise UsageProblem(
            f"no profile {chosen!r} in {path} (profiles: {known})", f"a profile looks like:\n{CONFIG_EXAMPLE}"
        )
    raw = profiles[chosen]
    if not isinstance(raw, dict):
        raise UsageProblem(f"profiles.{chosen} in {path} must be a table")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        expected = _TYPES.get(key)
        if expected is None:
            raise UsageProblem(f"profiles.{chosen}.{key} in {path}: unknown key (known: {', '.join(sorted(_TYPES))})")
        if expected == "float" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value).__name__ != expected:
            raise UsageProblem(f"profiles.{chosen}.{key} in {path} must be a {expected}, not {value!r}")
        if key.endswith("_file") and value:
            value = str(Path(value).expanduser())
        values[key] = value
    return Profile(name=chosen, source=str(path), **values)


@dataclass
class Tokens:
    """An access token and its refresh token, as `login` keeps them."""

    access_token: str
    access_expires_at: float
    refresh_token: str
    refresh_expires_at: float
    tenant_id: str = ""
    username: str = ""


def credentials_path(profile: str) -> Path:
    """Where a profile's tokens are kept."""
    return config_dir() / "credentials" / f"{profile}.json"


def load_tokens(profile: str) -> Tokens | None:
    """The profile's tokens, or None when it has not logged in."""
    try:
        data = json.loads(credentials_path(profile).read_text())
        return Tokens(**data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        raise UsageProblem(f"cannot read {credentials_path(profile)}: {exc}; log in again") from None


def save_tokens(profile: str, tokens: Tokens) -> Path:
    """Write the tokens with mode 0600 (created so, never widened), replacing the file atomically."""
    path = credentials_path(profile)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)
        json.dump(tokens.__dict__, handle)
    os.replace(temporary, path)
    return path


def forget_tokens(profile: str) -> bool:
    """Remove the profile's tokens; False when there were none."""
    try:
        credentials_path(profile).unlink()
        return True
    except FileNotFoundError:
        return False


@contextlib.contextmanager
def tokens_lock(profile: str) -> Iterator[None]:
    """Hold the profile's token lock: two commands refreshing one token at once would present a used
    refresh token, and the server then revokes the whole session (REFRESH_TOKEN_REUSED)."""
    path = credentials_path(profile).with_suffix(".lock")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
