"""The layers of shared/ import only downwards, and no module imports itself back round a cycle.

Layers, lowest first: core (errors, reasons, text, time, pagination) < config < telemetry < auth < rpc
(the call chain, transport, control) < storage (the storage client) < tenancy < limits (rate limits and
quotas) < stages < harness.
Imports under `if TYPE_CHECKING:` are annotations only and do not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.harness import ROOT

LAYERS = ["core", "config", "telemetry", "auth", "rpc", "storage", "tenancy", "limits", "stages", "harness"]
SHARED = ROOT / "shared"


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("shared.")}


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in SHARED.rglob("*.py")}
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def _layer(module: str) -> int:
    parts = module.split(".")
    assert len(parts) >= 2 and parts[1] in LAYERS, f"{module} is outside the layer packages of shared/"
    return LAYERS.index(parts[1])


def test_every_shared_module_lives_in_a_layer_package() -> None:
    for module in _graph():
        if module != "shared":
            _layer(module)


def test_imports_only_run_down_the_layers() -> None:
    upward = [
        f"{module} imports {target}"
        for module, targets in _graph().items()
        if module != "shared"
        for target in targets
        if _layer(target) > _layer(module)
    ]
    assert not upward, "imports running back up the layers:\n" + "\n".join(sorted(upward))


def test_there_is_no_import_cycle() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target] if target in stack else [node, target])
            elif target not in state:
                visit(target, [*stack, target])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)
