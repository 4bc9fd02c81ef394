"""Secret references in settings, resolved at start and on every reload.

A secret setting holds either the secret itself or a reference:
- `env:NAME` — the environment variable NAME;
- `file:/path` — the file's content (a trailing newline is dropped);
- `vault:MOUNT/PATH#KEY` — KEY of the KV version 2 secret at PATH under MOUNT, in HashiCorp Vault or
  OpenBao (via hvac; address and token from the `secrets` section);
- `aws-sm:SECRET_ID` or `aws-sm:SECRET_ID#KEY` — the secret string from AWS Secrets Manager (via
  boto3), or KEY of it when it is a JSON object.
Errors name the setting and the reference, never the value.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SCHEMES = ("env:", "file:", "vault:", "aws-sm:")


class SecretError(Exception):
    """A reference could not be resolved."""


def is_reference(value: str) -> bool:
    """Whether a secret setting's value is a reference rather than the secret itself."""
    return value.startswith(SCHEMES)


def kind(value: str) -> str:
    """The reference as shown in sources: the reference itself (it names where, not what)."""
    return value if is_reference(value) else "inline"


class Resolver:
    """Resolves references; Vault and AWS clients are created on first use."""

    def __init__(self, provider_settings: Mapping[str, Any], environ: Mapping[str, str]) -> None:
        self.settings = dict(provider_settings)
        self.environ = environ
        self._vault: Any = None
        self._aws: Any = None

    def resolve(self, value: str) -> str:
        """The secret a value stands for."""
        if value.startswith("env:"):
            name = value[4:]
            if name not in self.environ:
                raise SecretError(f"environment variable {name} is not set")
            return self.environ[name]
        if value.startswith("file:"):
            path = Path(value[5:])
            try:
                return path.read_text().removesuffix("\n")
            except OSError as exc:
                raise SecretError(f"cannot read {path}: {exc.strerror}") from None
        if value.startswith("vault:"):
            return self._from_vault(value[6:])
        if value.startswith("aws-sm:"):
            return self._from_aws(value[7:])
        return value

    def _from_vault(self, ref: str) -> str:
        path, _, key = ref.partition("#")
        mount, _, secret_path = path.partition("/")
        if not (mount and secret_path and key):
            raise SecretError("a Vault reference is vault:MOUNT/PATH#KEY")
        client = self._vault_client()
        try:
            import hvac.exceptions

            reply = client.secrets.kv.v2.read_secret_version(
                path=secret_path, mount_point=mount, raise_on_deleted_version=True
            )
        except hvac.exceptions.Forbidden:
            raise SecretError("Vault refused the token (permission denied)") from None
        except hvac.exceptions.InvalidPath:
            raise SecretError(f"no secret at {mount}/{secret_path}") from None
        except hvac.exceptions.VaultError as exc:
            raise SecretError(f"Vault error ({type(exc).__name__})") from None
        except OSError as exc:
            raise SecretError(
                f"Vault at {self.settings.get('vault_address')} unreachable ({type(exc).__name__})"
            ) from None
        data = reply.get("data", {}).get("data", {})
        if key not in data:
            raise SecretError(f"key {key!r} not in the secret at {mount}/{secret_path}")
        return str(data[key])

    def _vault_client(self) -> Any:
        if self._vault is None:
            import hvac

            token_ref = self.settings.get("vault_token") or "env:VAULT_TOKEN"
            token_ref = token_ref.get_secret_value() if hasattr(token_ref, "get_secret_value") else str(token_ref)
            if token_ref.startswith(("vault:", "aws-sm:")):
                raise SecretError("secrets.vault_token must be inline, env: or file:")
            verify: Any = str(self.settings.get("vault_verify", "true"))
            verify = {"true": True, "false": False}.get(verify.lower(), verify)
            self._vault = hvac.Client(
                url=self.settings.get("vault_address", "http://127.0.0.1:8200"),
                token=self.resolve(token_ref),
                namespace=self.settings.get("vault_namespace") or None,
                verify=verify,
                timeout=5,
            )
        return self._vault

    def _from_aws(self, ref: str) -> str:
        secret_id, _, key = ref.partition("#")
        if not secret_id:
            raise SecretError("an AWS Secrets Manager reference is aws-sm:SECRET_ID[#KEY]")
        client = self._aws_client()
        try:
            from botocore.exceptions import BotoCoreError, ClientError

            reply = client.get_secret_value(SecretId=secret_id)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            raise SecretError(f"AWS Secrets Manager: {code} for {secret_id}") from None
        except BotoCoreError as exc:
            raise SecretError(f"AWS Secrets Manager unreachable ({type(exc).__name__})") from None
        text = reply.get("SecretString")
        if text is None:
            raise SecretError(f"{secret_id} holds a binary secret; only secret strings are supported")
        if not key:
            return str(text)
        try:
            doc = json.loads(text)
        except ValueError:
            raise SecretError(f"{secret_id} is not a JSON object, so #{key} cannot be read from it") from None
        if not isinstance(doc, dict) or key not in doc:
            raise SecretError(f"key {key!r} not in {secret_id}")
        return str(doc[key])

    def _aws_client(self) -> Any:
        if self._aws is None:
            import boto3

            self._aws = boto3.client(
                "secretsmanager",
                region_name=self.settings.get("aws_region") or os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
                endpoint_url=self.settings.get("aws_endpoint_url") or None,
            )
        return self._aws
