"""Real external systems for tests: an OpenBao dev server, an AWS emulator (moto), and a throw-away PKI.

Every server runs as a child process on a free loopback port and is stopped by its PID when the
context manager exits (SIGTERM, then SIGKILL after a timeout), whatever happened inside the block.
"""

from __future__ import annotations

import contextlib
import datetime
import http.client
import ipaddress
import os
import secrets
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.harness import ROOT, free_port

VENV_BIN = ROOT / ".venv" / "bin"
BAO = VENV_BIN / "bao"
MOTO_SERVER = VENV_BIN / "moto_server"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0

# Variables that would make a child talk to a real Vault/OpenBao or AWS account, or pick up the
# developer's own credentials; children get an environment without them.
_FOREIGN_PREFIXES = ("VAULT_", "BAO_", "AWS_")


def _clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_PREFIXES)}
    env.update(extra)
    return env


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the process by PID; kill it if it does not exit in time."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def _port_pair() -> int:
    """A free port whose successor is free too (the dev server puts its cluster listener on port + 1)."""
    for _ in range(50):
        port = free_port()
        # free_port hands ports out in order: taking the next one too keeps it from anyone else.
        if free_port() == port + 1:
            return port
    raise RuntimeError("no two adjacent free loopback ports")


# -- OpenBao ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenBao:
    """A running OpenBao dev server: unsealed, in-memory storage, KV version 2 mounted at `secret/`."""

    address: str
    root_token: str
    pid: int
    log_path: Path

    def client(self, token: str | None = None) -> Any:  # an hvac.Client (hvac has no type hints)
        import hvac

        return hvac.Client(url=self.address, token=self.root_token if token is None else token, timeout=5)


@contextlib.contextmanager
def openbao_dev_server() -> Iterator[OpenBao]:
    """Start `bao server -dev` on a free loopback port with a random root token; stop it on exit."""
    import hvac

    with tempfile.TemporaryDirectory(prefix="openbao-") as home:
        log_path = Path(home) / "bao.log"
        root_token = f"root-{secrets.token_hex(16)}"
        port = _port_pair()
        address = f"http://127.0.0.1:{port}"
        env = _clean_env(
            {
                # The CLI half of the binary reads these; the dev server itself listens where it is told.
                "BAO_ADDR": address,
                "VAULT_ADDR": address,
                # The dev server uses in-memory storage; mlock needs privileges a test runner may lack.
                "BAO_DISABLE_MLOCK": "true",
                "VAULT_DISABLE_MLOCK": "true",
                # Keep the CLI's token helper file out of the real home directory.
                "HOME": home,
            }
        )
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [
                    str(BAO),
                    "server",
                    "-dev",
                    f"-dev-root-token-id={root_token}",
                    f"-dev-listen-address=127.0.0.1:{port}",
                    "-dev-no-store-token",
                ],
                env=env,
                cwd=home,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            client = hvac.Client(url=address, token=root_token, timeout=2)
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"bao server exited with {proc.returncode}:\n{_tail(log_path)}")
                try:
                    # Health first, then the KV v2 mount the dev server adds right after unsealing.
                    if client.sys.is_initialized() and "secret/" in client.sys.list_mounted_secrets_engines()["data"]:
                        break
                except Exception:  # connection refused, 503 while unsealing, ...
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"bao server did not become ready:\n{_tail(log_path)}")
                time.sleep(0.1)
            yield OpenBao(address=address, root_token=root_token, pid=proc.pid, log_path=log_path)
        finally:
            _stop(proc)


# -- AWS Secrets Manager (moto) -----------------------------------------------------------------------

# Credentials moto accepts; set them (and the region) for any process that resolves aws-sm: references.
AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Never fall back to the instance metadata service or the developer's files.
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


def _answers(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/moto-api/")
        conn.getresponse().read()
        return True
    except OSError:
        return False
    finally:
        conn.close()


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """Start moto's standalone server on a free loopback port; yield its endpoint URL; stop it on exit."""
    with tempfile.TemporaryDirectory(prefix="moto-") as workdir:
        log_path = Path(workdir) / "moto.log"
        port = free_port()
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
                env=_clean_env(AWS_TEST_ENV),
                cwd=workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not _answers(port):
                if proc.poll() is not None:
                    raise RuntimeError(f"moto_server exited with {proc.returncode}:\n{_tail(log_path)}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not answer:\n{_tail(log_path)}")
                time.sleep(0.1)
            yield f"http://127.0.0.1:{port}"
        finally:
            _stop(proc)


# -- PKI ----------------------------------------------------------------------------------------------

SERVER_NAME = "allsource.test"


@dataclass(frozen=True)
class Pki:
    """PEM files: the suite's CA, a service certificate, a client certificate, and a rogue one."""

    ca: Path
    service_cert: Path
    service_key: Path
    client_cert: Path
    client_key: Path
    # Signed by a different CA (rogue-ca.pem), which the suite does not trust.
    rogue_ca: Path
    rogue_cert: Path
    rogue_key: Path


def make_pki(directory: str | Path) -> Pki:
    """Write a CA, a service certificate (allsource.test, localhost, 127.0.0.1; server and client use,
    since services present it when calling each other under mTLS), a client certificate from the same
    CA, and a certificate from a different CA. Keys are unencrypted PKCS#8 PEM, RSA: a P-256 key's PEM
    body is mostly a header every such key shares, which would make a poor needle in leak checks."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "AllSource tests"),
                x509.NameAttribute(NameOID.COMMON_NAME, cn),
            ]
        )

    def write(path: Path, key: rsa.RSAPrivateKey | None, cert: x509.Certificate | None) -> None:
        if cert is not None:
            path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        if key is not None:
            path.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            )

    def ca(cn: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(name(cn))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return key, cert

    def leaf(
        cn: str, issuer: tuple[rsa.RSAPrivateKey, x509.Certificate], usages: list[x509.ObjectIdentifier]
    ) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
        issuer_key, issuer_cert = issuer
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(issuer_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName(SERVER_NAME),
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
            .sign(issuer_key, hashes.SHA256())
        )
        return key, cert

    both = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    suite_ca = ca("AllSource test CA")
    rogue_ca = ca("Rogue test CA")
    service = leaf("allsource-service", suite_ca, both)
    client = leaf("allsource-client", suite_ca, [ExtendedKeyUsageOID.CLIENT_AUTH])
    rogue = leaf("allsource-rogue", rogue_ca, both)

    pki = Pki(
        ca=out / "ca.pem",
        service_cert=out / "service.pem",
        service_key=out / "service-key.pem",
        client_cert=out / "client.pem",
        client_key=out / "client-key.pem",
        rogue_ca=out / "rogue-ca.pem",
        rogue_cert=out / "rogue.pem",
        rogue_key=out / "rogue-key.pem",
    )
    write(pki.ca, None, suite_ca[1])
    write(pki.rogue_ca, None, rogue_ca[1])
    write(pki.service_cert, None, service[1])
    write(pki.service_key, service[0], None)
    write(pki.client_cert, None, client[1])
    write(pki.client_key, client[0], None)
    write(pki.rogue_cert, None, rogue[1])
    write(pki.rogue_key, rogue[0], None)
    return pki


def pem_body_slice(pem: str, length: int = 40) -> str:
    """Text from the middle of a PEM's base64 body (private key material, not a shared header): it
    appears only where the key itself does.

    Taken from within one line of the body, so it is found whether a leak kept the line breaks or
    escaped them (as JSON or repr would)."""
    lines = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    middle = lines[len(lines) // 2] if lines else ""
    if len(middle) < length:
        raise ValueError("PEM body lines are shorter than the slice asked for")
    start = (len(middle) - length) // 2
    return middle[start : start + length]


@dataclass
class RedisServer:
    """A private redis-server on a free loopback port (no persistence), stopped and restarted by PID."""

    workdir: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.port = self.port or free_port()
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.workdir / "redis.log"
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--logfile",
                str(log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _redis_answers(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                _stop(self.proc)
                raise RuntimeError(f"redis-server did not start:\n{_tail(log)}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[RedisServer]:
    """A private Redis for the block (stopped by PID however the block ends)."""
    server = RedisServer(workdir).start()
    try:
        yield server
    finally:
        server.stop()
