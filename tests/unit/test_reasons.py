"""Error reasons are one enumeration (allsource.v1.ErrorReason): the code raises only its members, and
every reason the protos and the README name exists in it."""

from __future__ import annotations

import ast
import re

from allsource_client import Reason

from tests.harness import ROOT

SOURCES = [p for d in ("services", "shared", "clients/python/src/allsource_client") for p in (ROOT / d).rglob("*.py")]
NAMED = re.compile(r"\b(?:reason|reasons?:?)\s+`?([A-Z][A-Z0-9_]{3,})`?")


def _text(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant | ast.JoinedStr) and not (
        isinstance(node, ast.Constant) and not isinstance(node.value, str)
    )


def test_no_reason_is_written_as_a_string_literal() -> None:
    assert len(SOURCES) > 50
    literal = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "reason" and _text(node.value):
                literal.append(f"{path.relative_to(ROOT)}:{node.value.lineno}")
            if isinstance(node, ast.Compare) and "reason" in ast.unparse(node.left):
                for right in node.comparators:
                    if _text(right) or (isinstance(right, ast.Tuple) and any(_text(e) for e in right.elts)):
                        literal.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not literal, f"reason literals instead of Reason members: {literal}"


def test_every_reason_the_protos_document_is_in_the_enumeration() -> None:
    documented = set()
    for proto in (ROOT / "protos" / "allsource" / "v1").glob("*.proto"):
        if proto.name != "errors.proto":
            documented |= set(NAMED.findall(proto.read_text()))
    assert documented, "the protos name no reasons: the pattern no longer matches their comments"
    unknown = sorted(documented - set(Reason))
    assert not unknown, f"reasons documented in the protos but missing from errors.proto: {unknown}"


def test_every_reason_the_readme_lists_is_in_the_enumeration() -> None:
    readme = (ROOT / "README.md").read_text()
    errors = readme[readme.index("**Errors**") :]
    errors = errors[: errors.index("\n\n")]  # the paragraph that lists the reasons
    listed = set(re.findall(r"`([A-Z][A-Z0-9_]{3,})`", errors))
    assert len(listed) > 20, "the README's error paragraph no longer lists the reasons"
    unknown = sorted(listed - set(Reason))
    assert not unknown, f"reasons the README lists but errors.proto lacks: {unknown}"


def test_the_generated_enumeration_has_every_proto_value() -> None:
    text = (ROOT / "protos" / "allsource" / "v1" / "errors.proto").read_text()
    values = set(re.findall(r"^\s+([A-Z][A-Z0-9_]+) = \d+;", text, re.M)) - {"ERROR_REASON_UNSPECIFIED"}
    assert values == set(Reason)
