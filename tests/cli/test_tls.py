"""allsource-cli over mutual TLS: a profile with the suite's CA and a client certificate works; without
the certificate, or without TLS, the suite is unreachable (exit status 4)."""

from __future__ import annotations

from pathlib import Path

import grpc

from tests.cli.conftest import Cli, exit_reason
from tests.external import SERVER_NAME, make_pki
from tests.harness import Suite


def test_profiles_with_tls_and_client_certificates(fresh_suite: Suite, tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    suite = Suite(
        fresh_suite.workdir,
        extra_env={
            "ALLSOURCE_TLS__ENABLED": "true",
            "ALLSOURCE_TLS__CERT_FILE": str(pki.service_cert),
            "ALLSOURCE_TLS__KEY": f"file:{pki.service_key}",
            "ALLSOURCE_TLS__CA_FILE": str(pki.ca),
            "ALLSOURCE_TLS__REQUIRE_CLIENT_CERT": "true",
        },
        credentials=grpc.ssl_channel_credentials(
            pki.ca.read_bytes(), pki.client_key.read_bytes(), pki.client_cert.read_bytes()
        ),
        server_name=SERVER_NAME,
        ports=fresh_suite.ports,
        procs=fresh_suite.procs,  # fresh_suite stops them
    )
    suite.start_all()
    endpoints = {name: suite.address(name) for name in ("ingest", "query", "admin")}
    cli = Cli(tmp_path / "home", env={"ALLSOURCE_API_KEY": suite.admin_key})
    cli.write_profiles(
        {
            "mtls": {**endpoints, "tls": True, "ca_file": str(pki.ca), "cert_file": str(pki.client_cert),
                     "key_file": str(pki.client_key), "server_name": SERVER_NAME, "timeout": 5},
            "no-cert": {**endpoints, "tls": True, "ca_file": str(pki.ca), "server_name": SERVER_NAME, "timeout": 5},
            "plaintext": {**endpoints, "timeout": 5},
        },
        default="mtls",
    )  # fmt: skip

    overview = cli.json("diag")
    assert {row["service"]: row["probe"] for row in overview["health"]} == {
        "ingest": "serving",
        "query": "serving",
        "admin": "serving",
        "storage": "not probed (internal)",
    }
    assert cli.json("whoami")["role"] == "ROLE_OPERATOR"
    assert cli.json("events", "append", "tls-1", "--type", "Secure")["last_version"] == "1"

    # The same options on the command line instead of in the profile.
    flags = ("--tls", "--ca-file", str(pki.ca), "--cert-file", str(pki.client_cert), "--key-file", str(pki.client_key))
    assert cli.json("--profile", "plaintext", *flags, "--server-name", SERVER_NAME, "events", "read", "tls-1")

    exit_reason(cli.run("--profile", "no-cert", "whoami"), 4, "UNAVAILABLE")
    exit_reason(cli.run("--profile", "plaintext", "whoami"), 4, "UNAVAILABLE")
