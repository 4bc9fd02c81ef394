"""The whole suite on mutual TLS with its private key in a real OpenBao, and the secret never shown.

The services' TLS private key is delivered only as `vault:secret/allsource#tls_key`, read from an
OpenBao dev server with a token that is itself a reference (env:BAO_TEST_TOKEN). Checked here:
- the four services come up and call each other over mTLS, presenting the service certificate;
- a client with a certificate from the suite's CA can append and read; clients without a certificate,
  with a certificate from another CA, without TLS, or not trusting the suite's CA are refused;
- AdminService.GetConfig shows `tls.key` redacted, marked secret, with the reference as its source, and
  neither the key nor the Vault root token appears in any response, log or file the suite writes;
- a key that cannot be resolved stops a service with status 2, naming `tls.key`, without leaking;
- the production preset accepts this suite, and refuses plaintext without a mesh sidecar.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import grpc
import pytest
from allsource.v1 import admin_pb2, admin_pb2_grpc, auth_pb2, auth_pb2_grpc, config_pb2, ingest_pb2, ingest_pb2_grpc
from allsource_client import AllSourceClient, StreamNotFound, event
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.suite import ORDER, SERVICE_NAMES
from shared.config.loader import SECRET_KEYS
from tests.external import SERVER_NAME, OpenBao, Pki, make_pki, openbao_dev_server, pem_body_slice
from tests.harness import Suite

VAULT_REF = "vault:secret/allsource#tls_key"
REDACTED_JSON = '"**redacted**"'
EXIT_TIMEOUT_S = 60


# -- fixtures and helpers -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def bao(pki: Pki) -> Iterator[OpenBao]:
    """A real OpenBao dev server holding the service's private key at secret/allsource#tls_key."""
    with openbao_dev_server() as server:
        store_key(server, pki.service_key.read_text())
        yield server


def store_key(bao: OpenBao, pem: str) -> None:
    bao.client().secrets.kv.v2.create_or_update_secret(path="allsource", secret={"tls_key": pem}, mount_point="secret")


def tls_env(pki: Pki, bao: OpenBao, **overrides: str) -> dict[str, str]:
    """The suite's TLS settings as ALLSOURCE_* variables: mTLS, the key only as a Vault reference."""
    return {
        "ALLSOURCE_TLS__ENABLED": "true",
        "ALLSOURCE_TLS__CERT_FILE": str(pki.service_cert),
        "ALLSOURCE_TLS__KEY": VAULT_REF,
        "ALLSOURCE_TLS__CA_FILE": str(pki.ca),
        "ALLSOURCE_TLS__REQUIRE_CLIENT_CERT": "true",
        "ALLSOURCE_SECRETS__VAULT_ADDRESS": bao.address,
        "ALLSOURCE_SECRETS__VAULT_TOKEN": "env:BAO_TEST_TOKEN",
        "BAO_TEST_TOKEN": bao.root_token,
        **overrides,
    }


def other_secrets() -> dict[str, str]:
    """A fresh value for every secret setting besides tls.key and the Vault token.

    The production preset needs each secret setting the model requires given as a reference; the set
    grows with the model, so it is taken from it rather than listed here."""
    return {
        key: f"{key}-{uuid.uuid4().hex}{uuid.uuid4().hex}" for key in SECRET_KEYS - {"tls.key", "secrets.vault_token"}
    }


def env_var(key: str) -> str:
    """The ALLSOURCE_* variable that sets a dotted key."""
    return "ALLSOURCE_" + key.upper().replace(".", "__")


def as_env_references(secrets: Mapping[str, str]) -> dict[str, str]:
    """Variables giving each secret as an env: reference to a variable holding its value."""
    env = {}
    for n, (key, value) in enumerate(sorted(secrets.items())):
        env[env_var(key)] = f"env:SECRET_TEST_{n}"
        env[f"SECRET_TEST_{n}"] = value
    return env


def credentials(
    pki: Pki, cert: Path | None = None, key: Path | None = None, trust: Path | None = None
) -> grpc.ChannelCredentials:
    """Client TLS credentials: trusting `trust` (the suite's CA by default), presenting cert/key if given."""
    return grpc.ssl_channel_credentials(
        root_certificates=(trust or pki.ca).read_bytes(),
        private_key=key.read_bytes() if key else None,
        certificate_chain=cert.read_bytes() if cert else None,
    )


def mtls_suite(workdir: Path, pki: Pki, env: Mapping[str, str]) -> Suite:
    """A suite whose test client presents the client certificate and checks the name allsource.test."""
    return Suite(
        workdir,
        extra_env=env,
        credentials=credentials(pki, pki.client_cert, pki.client_key),
        server_name=SERVER_NAME,
    )


@contextlib.contextmanager
def tls_client(suite: Suite, metadata: tuple[tuple[str, str], ...] | None = None) -> Iterator[AllSourceClient]:
    """A client over the suite's TLS channels (with the bootstrap admin key, or the given credentials)."""
    channels = [suite.channel(name, metadata) for name in ("ingest", "query", "admin")]
    try:
        yield AllSourceClient(*channels, timeout=10)
    finally:
        for channel in channels:
            channel.close()


@contextlib.contextmanager
def admin_stub(
    suite: Suite, metadata: tuple[tuple[str, str], ...] | None = None
) -> Iterator[admin_pb2_grpc.AdminServiceStub]:
    with suite.channel("admin", metadata) as channel:
        yield admin_pb2_grpc.AdminServiceStub(channel)


def configs_by_service(response: admin_pb2.GetConfigResponse) -> dict[str, dict[str, config_pb2.ConfigEntry]]:
    """{service: {key: entry}}, after checking every service answered."""
    out = {}
    for service in response.services:
        assert not service.error, f"{service.service}: {service.error}"
        out[service.service] = {entry.key: entry for entry in service.entries}
    assert sorted(out) == sorted(ORDER)
    return out


def assert_no_leak(text: str | bytes, needles: Mapping[str, str], where: str) -> None:
    for what, needle in needles.items():
        found = needle.encode() in text if isinstance(text, bytes) else needle in text
        assert not found, f"{what} found in {where}"


@pytest.fixture(scope="module")
def tls_suite(tmp_path_factory: pytest.TempPathFactory, pki: Pki, bao: OpenBao) -> Iterator[Suite]:
    """All four services on mTLS, shared by the tests of this module that do not restart anything."""
    suite = mtls_suite(tmp_path_factory.mktemp("tls-suite"), pki, tls_env(pki, bao))
    try:
        # start() waits for each service's health over TLS with the client certificate; ingest, query
        # and admin only report SERVING once their own mTLS calls to storage succeed.
        suite.start_all()
        yield suite
    finally:
        suite.stop_all()


# -- mTLS ---------------------------------------------------------------------------------------------


def test_every_service_serves_over_mtls_and_reaches_the_others(tls_suite: Suite) -> None:
    for name in ORDER:
        with tls_suite.channel(name) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAMES[name]), timeout=5
            )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, name
        assert '"tls":true' in tls_suite.log(name), f"{name} did not log that it listens with TLS"
    # Admin checks every other service over its own mTLS channels.
    with tls_client(tls_suite) as client:
        info = client.system_info()
    assert {s.name: s.status for s in info.services} == dict.fromkeys(ORDER, admin_pb2.HEALTH_STATUS_SERVING)


def test_client_with_a_certificate_from_the_suite_ca_can_append_and_read(tls_suite: Suite) -> None:
    stream = f"tls-{uuid.uuid4().hex[:10]}"
    with tls_client(tls_suite) as client:
        appended = client.append(stream, [event("Opened", {"n": 1}), event("Noted", {"n": 2})])
        events = client.read_stream(stream)
        assert [e.event_type for e in events] == ["Opened", "Noted"]
        assert client.get_event(events[0].event_id).event_type == "Opened"
    assert appended.first_version == events[0].version


def test_suite_client_uses_the_suite_credentials(tls_suite: Suite) -> None:
    with tls_suite.client(timeout=5) as client:
        client.append(f"tls-{uuid.uuid4().hex[:10]}", [event("Opened")])


@pytest.mark.parametrize(
    "who", ["no client certificate", "certificate from another CA", "plaintext", "not trusting the suite CA"]
)
def test_clients_without_a_trusted_certificate_are_refused(tls_suite: Suite, pki: Pki, who: str) -> None:
    def channel(name: str) -> grpc.Channel:
        address, options = tls_suite.address(name), tls_suite.options()
        if who == "plaintext":
            return grpc.insecure_channel(address)
        creds = {
            "no client certificate": lambda: credentials(pki),
            "certificate from another CA": lambda: credentials(pki, pki.rogue_cert, pki.rogue_key),
            # A valid client certificate, but the client refuses the server's (unknown CA).
            "not trusting the suite CA": lambda: credentials(pki, pki.client_cert, pki.client_key, pki.rogue_ca),
        }[who]()
        return grpc.secure_channel(address, creds, options=options)

    refused = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN}  # the handshake fails: no RPC happens
    for name in ORDER:  # storage too: it is the one process holding the data
        with channel(name) as ch, pytest.raises(grpc.RpcError) as info:
            health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert info.value.code() in refused, f"{name}: {info.value.code()} {info.value.details()}"

    stream = f"refused-{uuid.uuid4().hex[:10]}"
    request = ingest_pb2.AppendEventsRequest(stream_id=stream, events=[event("Sneaky")])
    with channel("ingest") as ch, pytest.raises(grpc.RpcError) as info:
        ingest_pb2_grpc.IngestServiceStub(ch).AppendEvents(request, timeout=5)
    assert info.value.code() in refused
    # Nothing was written, and the call never reached the service (no access-log line names it).
    with tls_client(tls_suite) as client, pytest.raises(StreamNotFound):
        client.read_stream(stream)
    assert stream not in tls_suite.log("ingest")


# -- redaction ----------------------------------------------------------------------------------------


def test_get_config_shows_the_tls_key_redacted_with_its_reference(tls_suite: Suite) -> None:
    with admin_stub(tls_suite) as stub:
        response = stub.GetConfig(admin_pb2.GetConfigRequest(), timeout=20)
    for service, entries in configs_by_service(response).items():
        key = entries["tls.key"]
        assert key.value == REDACTED_JSON, service
        assert key.secret, service
        assert key.source == f"environment ({VAULT_REF})", service
        assert not key.pending_restart_value, service
        # The provider credential is a secret setting too; its source is its own reference.
        token = entries["secrets.vault_token"]
        assert (token.value, token.secret) == (REDACTED_JSON, True), service
        assert token.source == "environment (env:BAO_TEST_TOKEN)", service
        assert entries["tls.require_client_cert"].value == "true", service


def test_a_rotated_key_is_pending_restart_and_redacted(tls_suite: Suite, pki: Pki, bao: OpenBao) -> None:
    """Reload resolves the reference again: a new key in Vault is reported as needing a restart (TLS is
    not reloadable), and GetConfig shows the pending value redacted too. The rogue key stands in for a
    rotated one; it is restored afterwards so later suites start with the matching key."""
    store_key(bao, pki.rogue_key.read_text())
    try:
        with admin_stub(tls_suite) as stub:
            reload = stub.ReloadConfig(admin_pb2.ReloadConfigRequest(), timeout=30)
            response = stub.GetConfig(admin_pb2.GetConfigRequest(), timeout=20)
        assert {r.service for r in reload.results} == set(ORDER)
        for result in reload.results:
            assert result.status == config_pb2.RELOAD_STATUS_APPLIED, (result.service, result.error)
            assert list(result.restart_required_keys) == ["tls.key"], result.service
        configs = configs_by_service(response)
        for service, entries in configs.items():
            assert entries["tls.key"].value == REDACTED_JSON, service
            assert entries["tls.key"].pending_restart_value == REDACTED_JSON, service
        # The running services keep the key they started with: calls still work.
        with tls_client(tls_suite) as client:
            client.append(f"rotated-{uuid.uuid4().hex[:10]}", [event("StillServing")])
        text = str(reload) + str(response)
    finally:
        store_key(bao, pki.service_key.read_text())
    assert_no_leak(text, {"rotated key": pem_body_slice(pki.rogue_key.read_text())}, "the admin responses")


def test_no_response_log_or_file_contains_the_key_or_the_token(tls_suite: Suite, pki: Pki, bao: OpenBao) -> None:
    """Runs after the tests above, so their calls (appends, refused handshakes, a reload with a rotated
    key) are in the logs being searched."""
    needles = {
        "the service private key": pem_body_slice(pki.service_key.read_text()),
        "the rotated private key": pem_body_slice(pki.rogue_key.read_text()),
        "a PEM private key header": "PRIVATE KEY-----",
        "the Vault root token": bao.root_token,
    }
    with admin_stub(tls_suite) as stub:
        responses = [
            stub.GetConfig(admin_pb2.GetConfigRequest(), timeout=20),
            stub.ReloadConfig(admin_pb2.ReloadConfigRequest(), timeout=30),
            stub.GetSystemInfo(admin_pb2.GetSystemInfoRequest(), timeout=20),
        ]
    for response in responses:
        assert_no_leak(str(response), needles, type(response).__name__)
    # Each log holds the process's stdout and stderr (the harness sends both there).
    for name in ORDER:
        log = tls_suite.log(name)
        assert log, f"no output from {name}"
        assert_no_leak(log, needles, f"the {name} log")
    # And nothing the suite wrote anywhere under its directory (logs, the database) holds them either.
    for path in sorted(p for p in tls_suite.workdir.rglob("*") if p.is_file()):
        assert_no_leak(path.read_bytes(), needles, str(path))


# -- failing resolution -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "reference"),
    [
        # The secret exists and holds the real key under another name: the error must not dump it.
        ({"ALLSOURCE_TLS__KEY": "vault:secret/allsource#no_such_key"}, "vault:secret/allsource#no_such_key"),
        ({"BAO_TEST_TOKEN": "wrong-" + uuid.uuid4().hex}, VAULT_REF),
    ],
    ids=["missing key", "wrong token"],
)
def test_an_unresolvable_key_stops_the_service_without_leaking(
    tmp_path: Path, pki: Pki, bao: OpenBao, overrides: dict[str, str], reference: str
) -> None:
    suite = mtls_suite(tmp_path / "suite", pki, tls_env(pki, bao, **overrides))
    try:
        proc = suite.start("storage", wait=False)
        status = proc.wait(timeout=EXIT_TIMEOUT_S)
        output = suite.log("storage")
    finally:
        suite.stop_all()
    assert status == 2, output
    assert "tls.key" in output and reference in output, output
    needles = {"the private key": pem_body_slice(pki.service_key.read_text()), "the root token": bao.root_token}
    if "BAO_TEST_TOKEN" in overrides:
        needles["the wrong token"] = overrides["BAO_TEST_TOKEN"]
    assert_no_leak(output, needles, "the storage output")


# -- the production preset ----------------------------------------------------------------------------


def test_production_preset_runs_the_mtls_suite(tmp_path: Path, pki: Pki, bao: OpenBao) -> None:
    """TLS and secrets configured the production way: a configuration file holding only references."""
    extra = other_secrets()
    bao.client().secrets.kv.v2.create_or_update_secret(
        path="allsource-extra", secret={k.replace(".", "_"): v for k, v in extra.items()}, mount_point="secret"
    )
    references = {key: f"vault:secret/allsource-extra#{key.replace('.', '_')}" for key in extra}
    config = tmp_path / "allsource.toml"
    lines = [
        # Dotted keys first: TOML puts them in the root table only before the first [table].
        *(f'{key} = "{ref}"' for key, ref in sorted(references.items())),
        "[tls]",
        "enabled = true",
        f'cert_file = "{pki.service_cert}"',
        f'key = "{VAULT_REF}"',
        f'ca_file = "{pki.ca}"',
        "require_client_cert = true",
        # Services check this name in each other's certificates instead of 127.0.0.1.
        f'server_name = "{SERVER_NAME}"',
        "[secrets]",
        f'vault_address = "{bao.address}"',
        'vault_token = "env:BAO_TEST_TOKEN"',
        # The preset exports traces over OTLP; no collector runs here.
        "[tracing]",
        'exporter = "none"',
    ]
    config.write_text("\n".join(lines) + "\n")
    env = {"ALLSOURCE_PRESET": "production", "ALLSOURCE_CONFIG": str(config), "BAO_TEST_TOKEN": bao.root_token}
    suite = mtls_suite(tmp_path / "suite", pki, env)
    try:
        suite.start_all()
        # Production makes no bootstrap key: the bootstrap administrator logs in with the configured password.
        with suite.raw_channel("admin") as channel:
            login = auth_pb2_grpc.AuthServiceStub(channel).Login(
                auth_pb2.LoginRequest(username="admin", password=extra["auth.bootstrap_admin_password"]), timeout=30
            )
        token = (("authorization", f"Bearer {login.tokens.access_token}"),)
        with tls_client(suite, token) as client:
            stream = f"prod-{uuid.uuid4().hex[:10]}"
            client.append(stream, [event("Opened")])
            assert [e.event_type for e in client.read_stream(stream)] == ["Opened"]
        with admin_stub(suite, token) as stub:
            response = stub.GetConfig(admin_pb2.GetConfigRequest(), timeout=20)
        assert {s.service: s.preset for s in response.services} == dict.fromkeys(ORDER, "production")
        for service, entries in configs_by_service(response).items():
            for key, ref in {"tls.key": VAULT_REF, **references}.items():
                assert (entries[key].value, entries[key].secret) == (REDACTED_JSON, True), (service, key)
                assert entries[key].source == f"file {config} ({ref})", (service, key)
        needles = {"the private key": pem_body_slice(pki.service_key.read_text()), **extra}
        for name in ORDER:
            assert_no_leak(suite.log(name), needles, f"the {name} log")
        assert_no_leak(str(response), needles, "GetConfig")
    finally:
        suite.stop_all()


@pytest.mark.parametrize("service", ORDER)
def test_production_preset_refuses_plaintext(tmp_path: Path, service: str) -> None:
    # Every other secret is given (as a reference), so plaintext is what the preset objects to.
    env = {"ALLSOURCE_PRESET": "production", **as_env_references(other_secrets())}
    suite = Suite(tmp_path / "suite", extra_env=env)
    try:
        proc = suite.start(service, wait=False)
        status = proc.wait(timeout=EXIT_TIMEOUT_S)
        output = suite.log(service)
    finally:
        suite.stop_all()
    assert status == 2, output
    assert "production preset refuses" in output and "tls.enabled" in output, output


def test_production_preset_accepts_plaintext_behind_a_mesh_sidecar(tmp_path: Path) -> None:
    env = {
        "ALLSOURCE_PRESET": "production",
        "ALLSOURCE_TLS__MESH_SIDECAR": "true",
        "ALLSOURCE_TRACING__EXPORTER": "none",  # the preset exports traces over OTLP; no collector runs here
        **as_env_references(other_secrets()),
    }
    suite = Suite(tmp_path / "suite", extra_env=env)
    try:
        suite.start("storage")  # waits until it serves (plaintext: the sidecar would terminate TLS)
    finally:
        suite.stop_all()
