"""Secret references against real providers: OpenBao (Vault KV v2), AWS Secrets Manager (moto), env:, file:.

Each test loads settings in-process with `load_settings(environ=...)`, the way every service does at
start-up, with the TLS private key (`tls.key`, a secret setting) given as a reference. Resolution must
yield the stored value, `sources` must name the reference (never the value), and every failure must be
a SettingsError naming `tls.key` and the reference without a trace of any secret value.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import boto3
import pytest

from shared.config.loader import LoadedSettings, SettingsError, load_settings
from tests.external import AWS_TEST_ENV, OpenBao, moto_server, openbao_dev_server
from tests.harness import free_port

# Secret values look nothing like anything else in a message, so a leak cannot hide.
VAULT_KEY_VALUE = "-----BEGIN PRIVATE KEY-----\nvault-" + uuid.uuid4().hex + "\n-----END PRIVATE KEY-----"
VAULT_OTHER_VALUE = "other-" + uuid.uuid4().hex
VAULT_REF = "vault:secret/allsource#tls_key"


def tls_env(key_ref: str, **extra: str) -> dict[str, str]:
    """An environment enabling TLS with the private key given as `key_ref`."""
    return {
        "ALLSOURCE_TLS__ENABLED": "true",
        # Only checked for presence while loading; never read here.
        "ALLSOURCE_TLS__CERT_FILE": "/nonexistent/service.pem",
        "ALLSOURCE_TLS__KEY": key_ref,
        **extra,
    }


def load_error(environ: Mapping[str, str], config_path: Path | None = None) -> str:
    with pytest.raises(SettingsError) as info:
        load_settings(config_path, environ=environ)
    return str(info.value)


def assert_clean(message: str, *secret_values: str) -> None:
    """The message contains none of the values (nor their lines, for multi-line values)."""
    for value in secret_values:
        for part in [value, *(line for line in value.splitlines() if len(line) > 8)]:
            assert part not in message, f"secret material leaked into: {message!r}"


# -- Vault / OpenBao ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bao() -> Iterator[OpenBao]:
    """A real OpenBao dev server holding secret/allsource = {tls_key, other}."""
    with openbao_dev_server() as server:
        server.client().secrets.kv.v2.create_or_update_secret(
            path="allsource", secret={"tls_key": VAULT_KEY_VALUE, "other": VAULT_OTHER_VALUE}, mount_point="secret"
        )
        yield server


def vault_env(bao: OpenBao, key_ref: str = VAULT_REF, **extra: str) -> dict[str, str]:
    """TLS settings with the key in Vault; the Vault token is itself a reference (env:BAO_TEST_TOKEN)."""
    settings = {
        "ALLSOURCE_SECRETS__VAULT_ADDRESS": bao.address,
        "ALLSOURCE_SECRETS__VAULT_TOKEN": "env:BAO_TEST_TOKEN",
        "BAO_TEST_TOKEN": bao.root_token,
    }
    return tls_env(key_ref, **{**settings, **extra})


def assert_resolved(loaded: LoadedSettings, value: str, source: str) -> None:
    assert loaded.settings.tls.key is not None
    assert loaded.settings.tls.key.get_secret_value() == value
    assert loaded.sources["tls.key"] == source
    # The resolved secret is wrapped: its repr and the model dump do not show it.
    assert value not in repr(loaded.settings)
    assert value not in str(loaded.settings.model_dump())


def test_vault_reference_resolves_from_the_kv_v2_secret(bao: OpenBao) -> None:
    loaded = load_settings(environ=vault_env(bao))
    assert_resolved(loaded, VAULT_KEY_VALUE, f"environment ({VAULT_REF})")
    # The token reference is what sources show for the provider credential, too.
    assert loaded.sources["secrets.vault_token"] == "environment (env:BAO_TEST_TOKEN)"
    assert bao.root_token not in json.dumps(loaded.sources)


def test_vault_reference_in_a_config_file_names_the_file_and_the_reference(bao: OpenBao, tmp_path: Path) -> None:
    config = tmp_path / "allsource.toml"
    config.write_text(
        "[tls]\n"
        "enabled = true\n"
        'cert_file = "/nonexistent/service.pem"\n'
        f'key = "{VAULT_REF}"\n'
        "[secrets]\n"
        f'vault_address = "{bao.address}"\n'
        'vault_token = "env:BAO_TEST_TOKEN"\n'
    )
    loaded = load_settings(config, environ={"BAO_TEST_TOKEN": bao.root_token})
    assert_resolved(loaded, VAULT_KEY_VALUE, f"file {config} ({VAULT_REF})")


def test_vault_token_defaults_to_env_vault_token(bao: OpenBao) -> None:
    environ = tls_env(VAULT_REF, ALLSOURCE_SECRETS__VAULT_ADDRESS=bao.address, VAULT_TOKEN=bao.root_token)
    assert_resolved(load_settings(environ=environ), VAULT_KEY_VALUE, f"environment ({VAULT_REF})")


@pytest.mark.parametrize(
    ("key_ref", "token", "expected"),
    [
        ("vault:secret/allsource#no_such_key", None, "'no_such_key' not in the secret"),
        ("vault:secret/no/such/path#tls_key", None, "no secret at secret/no/such/path"),
        (VAULT_REF, "not-a-valid-token", "permission denied"),
        ("vault:secret-without-key", None, "vault:MOUNT/PATH#KEY"),
    ],
    ids=["missing key", "missing path", "wrong token", "malformed reference"],
)
def test_vault_failures_name_the_key_and_reference_but_not_the_value(
    bao: OpenBao, key_ref: str, token: str | None, expected: str
) -> None:
    environ = vault_env(bao, key_ref)
    if token is not None:
        environ["BAO_TEST_TOKEN"] = token
    message = load_error(environ)
    assert "tls.key" in message
    assert key_ref in message
    assert expected in message
    assert_clean(message, VAULT_KEY_VALUE, VAULT_OTHER_VALUE, bao.root_token)
    if token is not None:
        assert_clean(message, token)  # a wrong token is still a credential


def test_unreachable_vault_is_a_settings_error(bao: OpenBao) -> None:
    # A free loopback port: nothing listens there, so the connection is refused at once.
    dead = f"http://127.0.0.1:{free_port()}"
    message = load_error(vault_env(bao, ALLSOURCE_SECRETS__VAULT_ADDRESS=dead))
    assert "tls.key" in message
    assert VAULT_REF in message
    assert f"Vault at {dead} unreachable" in message
    assert_clean(message, VAULT_KEY_VALUE, bao.root_token)


def test_missing_token_variable_is_a_settings_error(bao: OpenBao) -> None:
    environ = vault_env(bao)
    del environ["BAO_TEST_TOKEN"]
    message = load_error(environ)
    assert "tls.key" in message and VAULT_REF in message
    assert "environment variable BAO_TEST_TOKEN is not set" in message


# -- AWS Secrets Manager (moto) -----------------------------------------------------------------------

AWS_PLAIN_NAME = "allsource/plain-key"
AWS_PLAIN_VALUE = "aws-plain-" + uuid.uuid4().hex
AWS_JSON_NAME = "allsource/json-keys"
AWS_JSON_VALUE = {"tls_key": "aws-json-" + uuid.uuid4().hex, "other": "aws-other-" + uuid.uuid4().hex}
AWS_ALL_VALUES = (AWS_PLAIN_VALUE, *AWS_JSON_VALUE.values())


@pytest.fixture(scope="module")
def aws_endpoint() -> Iterator[str]:
    """moto's server holding one plain-string secret and one JSON-object secret."""
    with moto_server() as endpoint, pytest.MonkeyPatch.context() as mp:
        for name, value in AWS_TEST_ENV.items():
            mp.setenv(name, value)
        client = boto3.client("secretsmanager", endpoint_url=endpoint, region_name="us-east-1")
        client.create_secret(Name=AWS_PLAIN_NAME, SecretString=AWS_PLAIN_VALUE)
        client.create_secret(Name=AWS_JSON_NAME, SecretString=json.dumps(AWS_JSON_VALUE))
        yield endpoint


@pytest.fixture
def aws_env(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    # boto3 takes credentials from the process environment (not from the `environ` given to
    # load_settings), so this process gets moto's dummy ones and nothing of the developer's.
    for name in ("AWS_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    for name, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(name, value)
    return aws_endpoint


def aws_settings_env(endpoint: str, key_ref: str) -> dict[str, str]:
    return tls_env(key_ref, ALLSOURCE_SECRETS__AWS_ENDPOINT_URL=endpoint, ALLSOURCE_SECRETS__AWS_REGION="us-east-1")


@pytest.mark.parametrize(
    ("key_ref", "value"),
    [(f"aws-sm:{AWS_PLAIN_NAME}", AWS_PLAIN_VALUE), (f"aws-sm:{AWS_JSON_NAME}#tls_key", AWS_JSON_VALUE["tls_key"])],
    ids=["plain string", "json field"],
)
def test_aws_reference_resolves(aws_env: str, key_ref: str, value: str) -> None:
    loaded = load_settings(environ=aws_settings_env(aws_env, key_ref))
    assert_resolved(loaded, value, f"environment ({key_ref})")


@pytest.mark.parametrize(
    ("key_ref", "expected"),
    [
        ("aws-sm:allsource/no-such-secret", "ResourceNotFoundException for allsource/no-such-secret"),
        (f"aws-sm:{AWS_JSON_NAME}#no_such_field", f"'no_such_field' not in {AWS_JSON_NAME}"),
        # #KEY on a secret that is not JSON: the error must not echo the string it failed to parse.
        (f"aws-sm:{AWS_PLAIN_NAME}#tls_key", "is not a JSON object"),
    ],
    ids=["missing secret id", "missing json key", "not json"],
)
def test_aws_failures_name_the_key_and_reference_but_not_the_value(aws_env: str, key_ref: str, expected: str) -> None:
    message = load_error(aws_settings_env(aws_env, key_ref))
    assert "tls.key" in message
    assert key_ref in message
    assert expected in message
    assert_clean(message, *AWS_ALL_VALUES, json.dumps(AWS_JSON_VALUE))


# -- env: and file: references, and inline secrets ----------------------------------------------------


def test_env_reference_resolves() -> None:
    value = "env-" + uuid.uuid4().hex
    loaded = load_settings(environ=tls_env("env:SECRET_TEST_TLS_KEY", SECRET_TEST_TLS_KEY=value))
    assert_resolved(loaded, value, "environment (env:SECRET_TEST_TLS_KEY)")


def test_file_reference_resolves_without_the_trailing_newline(tmp_path: Path) -> None:
    value = "-----BEGIN PRIVATE KEY-----\nfile-" + uuid.uuid4().hex + "\n-----END PRIVATE KEY-----"
    key_file = tmp_path / "key.pem"
    key_file.write_text(value + "\n")  # as editors and `openssl` write files
    loaded = load_settings(environ=tls_env(f"file:{key_file}"))
    assert_resolved(loaded, value, f"environment (file:{key_file})")


def test_inline_secret_is_used_as_is_and_shown_as_inline() -> None:
    value = "inline-" + uuid.uuid4().hex
    loaded = load_settings(environ=tls_env(value))
    assert_resolved(loaded, value, "environment (inline)")


def test_missing_env_variable_and_missing_file_are_settings_errors(tmp_path: Path) -> None:
    message = load_error(tls_env("env:SECRET_TEST_UNSET_KEY"))
    assert "tls.key" in message and "env:SECRET_TEST_UNSET_KEY" in message
    missing = tmp_path / "missing.pem"
    message = load_error(tls_env(f"file:{missing}"))
    assert "tls.key" in message and f"file:{missing}" in message
