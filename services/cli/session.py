"""A connection to the public services for one profile: channels, credentials and the acting tenant.

Credentials, in order: an API key file given on the command line, `ALLSOURCE_API_KEY`, the profile's
`api_key_file`, then the tokens of `allsource-cli login` (refreshed before they expire). Only the public
endpoints are ever dialled: ingest, query and admin.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from allsource.v1 import (
    admin_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    backup_pb2_grpc,
    ingest_pb2_grpc,
    query_pb2_grpc,
)
from grpc_health.v1 import health_pb2_grpc

from services.cli.errors import REFUSED, CliError, UsageProblem, from_rpc
from services.cli.profiles import Profile, Tokens, load_tokens, save_tokens, tokens_lock

API_KEY_ENV = "ALLSOURCE_API_KEY"
TENANT_HEADER = "x-allsource-tenant"
# Refresh an access token this long before it expires, so a call never leaves with one about to lapse.
REFRESH_MARGIN_S = 60.0
PUBLIC_SERVICES = ("ingest", "query", "admin")
_MESSAGE_LIMIT = 64 << 20


@dataclass
class Credential:
    """What a call presents: an API key, login tokens (refreshed on demand) or nothing."""

    kind: str  # "api_key", "login" or "none"
    source: str
    api_key: str = ""
    profile: str = ""

    def bearer(self, refresh: Callable[[Tokens], Tokens]) -> str:
        """The bearer credential for the next call ('' when there is none)."""
        if self.kind == "api_key":
            return self.api_key
        if self.kind != "login":
            return ""
        with tokens_lock(self.profile):
            tokens = load_tokens(self.profile)
            if tokens is None:
                return ""
            if tokens.access_expires_at - time.time() < REFRESH_MARGIN_S:
                tokens = refresh(tokens)
                save_tokens(self.profile, tokens)
            return tokens.access_token


def choose_credential(profile: Profile, api_key_file: str | None) -> Credential:
    """The credential the precedence in the module doc picks."""
    if api_key_file:
        return Credential("api_key", f"--api-key-file {api_key_file}", _read_key(api_key_file))
    if os.environ.get(API_KEY_ENV, "").strip():
        return Credential("api_key", API_KEY_ENV, os.environ[API_KEY_ENV].strip())
    if profile.api_key_file:
        return Credential("api_key", f"api_key_file of profile {profile.name}", _read_key(profile.api_key_file))
    if load_tokens(profile.name) is not None:
        return Credential("login", f"login of profile {profile.name}", profile=profile.name)
    return Credential("none", "none")


def _read_key(path: str) -> str:
    try:
        key = Path(path).expanduser().read_text().strip()
    except OSError as exc:
        raise UsageProblem(f"cannot read the API key file {path}: {exc.strerror}") from None
    if not key:
        raise UsageProblem(f"the API key file {path} is empty")
    return key


@dataclass
class Session:
    """Stubs of the public services with the profile's credential and tenant on every call."""

    profile: Profile
    credential: Credential
    tenant: str = ""
    _channels: dict[str, grpc.Channel] = field(default_factory=dict)

    def channel(self, service: str) -> grpc.Channel:
        """The channel to a public service, opened on first use."""
        if service not in PUBLIC_SERVICES:
            raise ValueError(f"not a public service: {service}")
        if service not in self._channels:
            self._channels[service] = open_channel(self.profile, self.profile.address(service))
        return self._channels[service]

    @property
    def admin(self) -> Any:
        """AdminService."""
        return admin_pb2_grpc.AdminServiceStub(self.channel("admin"))

    @property
    def backups(self) -> Any:
        """BackupService (served by the admin process)."""
        return backup_pb2_grpc.BackupServiceStub(self.channel("admin"))

    @property
    def auth(self) -> Any:
        """AuthService (served by the admin process)."""
        return auth_pb2_grpc.AuthServiceStub(self.channel("admin"))

    @property
    def ingest(self) -> Any:
        """IngestService."""
        return ingest_pb2_grpc.IngestServiceStub(self.channel("ingest"))

    @property
    def query(self) -> Any:
        """QueryService."""
        return query_pb2_grpc.QueryServiceStub(self.channel("query"))

    def health(self, service: str) -> Any:
        """grpc.health.v1 on a public service."""
        return health_pb2_grpc.HealthStub(self.channel(service))

    def metadata(self, tenant: str | None = None) -> list[tuple[str, str]]:
        """The call metadata: the bearer credential and, when acting on one, the tenant."""
        items: list[tuple[str, str]] = []
        bearer = self.credential.bearer(self._refresh)
        if bearer:
            items.append(("authorization", f"Bearer {bearer}"))
        acting = self.tenant if tenant is None else tenant
        if acting:
            items.append((TENANT_HEADER, acting))
        return items

    def login_bearer(self) -> str:
        """The profile's login access token (refreshed if due), whatever credential the calls present."""
        return Credential("login", f"login of profile {self.profile.name}", profile=self.profile.name).bearer(
            self._refresh
        )

    def call(self, method: Any, request: Any, *, tenant: str | None = None, timeout: float | None = None) -> Any:
        """A unary call; a failure becomes a ServerRefusal carrying the server's reason."""
        try:
            return method(request, metadata=self.metadata(tenant), timeout=timeout or self.profile.timeout)
        except grpc.RpcError as err:
            raise from_rpc(err, self._hint(err)) from None

    def stream(
        self, method: Any, request: Any, *, tenant: str | None = None, timeout: float | None = None
    ) -> Iterator[Any]:
        """A server-streaming call's messages; no deadline unless one is given. Closing the iterator
        cancels the call."""
        call = method(request, metadata=self.metadata(tenant), timeout=timeout)
        try:
            yield from call
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.CANCELLED:
                raise from_rpc(err, self._hint(err)) from None
        finally:
            call.cancel()

    def _refresh(self, tokens: Tokens) -> Tokens:
        if tokens.refresh_expires_at <= time.time():
            raise CliError(
                f"the login of profile {self.profile.name} has expired", REFUSED, "run `allsource-cli login`"
            )
        try:
            reply = auth_pb2_grpc.AuthServiceStub(self.channel("admin")).RefreshToken(
                auth_pb2.RefreshTokenRequest(refresh_token=tokens.refresh_token), timeout=self.profile.timeout
            )
        except grpc.RpcError as err:
            raise from_rpc(err, "run `allsource-cli login` again") from None
        return tokens_from_pair(reply.tokens, tokens.tenant_id, tokens.username)

    def _hint(self, err: grpc.RpcError) -> str:
        if err.code() == grpc.StatusCode.UNAUTHENTICATED and self.credential.kind == "none":
            return f"no credentials: run `allsource-cli login`, or set {API_KEY_ENV}"
        if err.code() == grpc.StatusCode.UNAVAILABLE:
            return f"is the suite running? (profile {self.profile.name}: {self.profile.source})"
        return ""

    def close(self) -> None:
        """Close the channels."""
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()


def tokens_from_pair(pair: auth_pb2.TokenPair, tenant_id: str, username: str) -> Tokens:
    """Tokens as kept on disk, from a login or refresh reply."""
    return Tokens(
        access_token=pair.access_token,
        access_expires_at=pair.access_token_expires_at.seconds + pair.access_token_expires_at.nanos / 1e9,
        refresh_token=pair.refresh_token,
        refresh_expires_at=pair.refresh_token_expires_at.seconds + pair.refresh_token_expires_at.nanos / 1e9,
        tenant_id=tenant_id,
        username=username,
    )


def open_channel(profile: Profile, address: str) -> grpc.Channel:
    """A channel to one endpoint: plaintext, TLS, or mutual TLS when a client certificate is given."""
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", _MESSAGE_LIMIT),
        ("grpc.max_send_message_length", _MESSAGE_LIMIT),
    ]
    if not (profile.tls or profile.ca_file or profile.cert_file):
        return grpc.insecure_channel(address, options=options)
    if bool(profile.cert_file) != bool(profile.key_file):
        raise UsageProblem("mutual TLS needs both cert_file and key_file")
    try:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=Path(profile.ca_file).read_bytes() if profile.ca_file else None,
            private_key=Path(profile.key_file).read_bytes() if profile.key_file else None,
            certificate_chain=Path(profile.cert_file).read_bytes() if profile.cert_file else None,
        )
    except OSError as exc:
        raise UsageProblem(f"cannot read a TLS file: {exc.filename}: {exc.strerror}") from None
    if profile.server_name:
        options.append(("grpc.ssl_target_name_override", profile.server_name))
    return grpc.secure_channel(address, credentials, options=options)
