"""Page tokens, settings layering and the rich error model."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2

from shared.config.loader import SettingsError, load_settings
from shared.core import pagination
from shared.core.errors import Aborted, AllSourceError, InvalidArgument, from_status


def test_page_size_rules() -> None:
    assert pagination.page_size(0, 100, 1000) == 100
    assert pagination.page_size(5000, 100, 1000) == 1000
    assert pagination.page_size(7, 100, 1000) == 7
    with pytest.raises(InvalidArgument):
        pagination.page_size(-1, 100, 1000)


def test_page_tokens_are_opaque_and_bound_to_the_request() -> None:
    bound = pagination.fingerprint("ListEvents", "default", b"filter-bytes")
    token = pagination.encode(bound, {"p": 42})
    assert "42" not in token or not token.isdigit()
    assert pagination.decode(token, bound) == {"p": 42}
    other = pagination.fingerprint("ListEvents", "default", b"other-filter")
    for bad_token, bound_to in ((token, other), ("garbage!", bound), (token[:-3], bound), ("", bound)):
        with pytest.raises(InvalidArgument) as err:
            pagination.decode(bad_token, bound_to)
        assert err.value.reason == "INVALID_PAGE_TOKEN"
    with pytest.raises(InvalidArgument):
        pagination.cursor_int(pagination.decode(pagination.encode(bound, {"p": -1}), bound), "p")


def test_settings_layers_file_then_environment(tmp_path: Path) -> None:
    toml = tmp_path / "a.toml"
    toml.write_text('[storage]\nport = 6000\ndata_dir = "/from-file"\n[log]\nlevel = "debug"\n')
    loaded = load_settings(toml, environ={"ALLSOURCE_STORAGE__PORT": "7000"})
    s = loaded.settings
    assert (s.storage.port, s.storage.data_dir, s.log.level, s.ingest.port) == (7000, "/from-file", "DEBUG", 50051)
    assert loaded.sources["storage.port"] == "environment"
    assert loaded.sources["storage.data_dir"] == f"file {toml}"
    as_json = tmp_path / "a.json"
    as_json.write_text(json.dumps({"query": {"max_page_size": 50, "default_page_size": 10}}))
    assert load_settings(as_json, environ={}).settings.query.max_page_size == 50
    as_yaml = tmp_path / "a.yaml"
    as_yaml.write_text("grpc:\n  shutdown_grace_s: 3\n")
    assert load_settings(as_yaml, environ={}).settings.grpc.shutdown_grace_s == 3


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"ALLSOURCE_STORAGE__PROT": "1"}, "storage.prot: unknown key (from environment)"),
        ({"ALLSOURCE_INGEST__PORT": "http"}, "ingest.port: Input should be a valid integer"),
        ({"ALLSOURCE_QUERY__PORT": "70000"}, "query.port"),
        ({"ALLSOURCE_QUERY__DEFAULT_PAGE_SIZE": "500", "ALLSOURCE_QUERY__MAX_PAGE_SIZE": "100"}, "default_page_size"),
        ({"ALLSOURCE_LOG__LEVEL": "chatty"}, "log.level"),
    ],
)
def test_bad_settings_name_the_key_and_layer(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(environ=environ)
    assert message in str(err.value)


def test_bad_file_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[storage\n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(bad, environ={})
    ini = tmp_path / "x.ini"
    ini.write_text("")
    with pytest.raises(SettingsError, match="unknown extension"):
        load_settings(ini, environ={})
    wrong = tmp_path / "w.toml"
    wrong.write_text("[storage]\nport = 1\n[storrage]\nport = 2\n")
    with pytest.raises(SettingsError, match=r"storrage: unknown key \(from file"):
        load_settings(wrong, environ={})


def test_error_carries_one_error_info_and_details() -> None:
    err = Aborted("conflict", reason="WRONG_EXPECTED_VERSION", metadata={"actual_version": "3"}, retry_after=1.5)
    status = err.to_status()
    assert status.code == grpc.StatusCode.ABORTED.value[0]
    infos = [d for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
    assert len(infos) == 1
    info = error_details_pb2.ErrorInfo()
    infos[0].Unpack(info)
    assert (info.reason, info.domain, dict(info.metadata)) == (
        "WRONG_EXPECTED_VERSION",
        "allsource.dev",
        {"actual_version": "3"},
    )
    assert any(d.Is(error_details_pb2.RetryInfo.DESCRIPTOR) for d in status.details)
    again = from_status(status)
    assert isinstance(again, AllSourceError)
    assert (again.code, again.reason, again.metadata) == (
        grpc.StatusCode.ABORTED,
        "WRONG_EXPECTED_VERSION",
        {"actual_version": "3"},
    )
    assert again.to_status() == status  # re-emitted unchanged


def test_page_tokens_cannot_nest_and_any_bytes_are_refused_cleanly() -> None:
    """Tokens were JSON once: a deeply nested document raised RecursionError (INTERNAL). Now the format is
    flat, and whatever a caller sends is either a valid cursor or INVALID_PAGE_TOKEN."""
    import base64
    import contextlib
    import json
    import random

    bound = pagination.fingerprint("ListStreams", "default", "")
    nested = base64.urlsafe_b64encode(json.dumps({"f": bound, "c": {"s": "x"}}).encode()[:1] + b"[" * 100_000)
    candidates = [nested.decode(), "A" * (pagination.MAX_TOKEN_CHARS + 1), "=" * 40, "\u00e9" * 10]
    rng = random.Random(7)
    for _ in range(2000):
        raw = bytes((1,)) + bytes.fromhex(bound) + rng.randbytes(rng.randrange(0, 40))
        candidates.append(base64.urlsafe_b64encode(raw).decode().rstrip("="))
    decoded = 0
    for token in candidates:
        try:
            cursor = pagination.decode(token, bound)
        except InvalidArgument as err:
            assert err.reason == "INVALID_PAGE_TOKEN"
        else:
            decoded += 1
            assert isinstance(cursor, dict)
            for key in cursor:
                with pytest.raises(InvalidArgument) if not isinstance(cursor[key], str) else contextlib.nullcontext():
                    pagination.cursor_str(cursor, key)
    assert decoded < len(candidates)
    assert pagination.decode(pagination.encode(bound, {"s": "é" * 100}), bound) == {"s": "é" * 100}
