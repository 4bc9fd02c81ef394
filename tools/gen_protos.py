"""Generate the Python code for protos/: `python tools/gen_protos.py` (`make generate`).

- The public API (allsource.v1) goes into the Python client package, clients/python/src, which owns it;
  so does `allsource_client/reasons.py`, the error reasons of allsource/v1/errors.proto as a StrEnum.
- The suite's internal protos (allsource.storage.v1, allsource.control.v1) go into gen/.
`allsource` is a namespace package split across the two, so neither has an `allsource/__init__.py`.
The generated modules import as their proto package (allsource.v1.event_pb2, ...). google.rpc types
come from googleapis-common-protos, so the vendored copies under protos/google are not generated.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
GEN = ROOT / "gen"
CLIENT_SRC = ROOT / "clients" / "python" / "src"
PUBLIC = ("allsource/v1",)
INTERNAL = ("allsource/storage/v1", "allsource/control/v1")
HEADER = '"""Generated from protos/ by tools/gen_protos.py; do not edit."""\n'


def _protoc(out: Path, packages: tuple[str, ...]) -> None:
    import grpc_tools
    from grpc_tools import protoc

    files = sorted(str(p.relative_to(PROTOS)) for pkg in packages for p in (PROTOS / pkg).glob("*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *files,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for pkg in packages:
        parts = pkg.split("/")
        for depth in range(2, len(parts) + 1):  # allsource/ itself stays a namespace package
            (out / "/".join(parts[:depth]) / "__init__.py").write_text(HEADER)


def reasons_module() -> str:
    """allsource_client/reasons.py: the ErrorReason values of errors.proto, with their comments."""
    text = (PROTOS / "allsource" / "v1" / "errors.proto").read_text()
    body = text[text.index("enum ErrorReason {") :]
    lines = [
        HEADER.rstrip(),
        "",
        "from enum import StrEnum",
        "",
        "",
        "class Reason(StrEnum):",
        '    """The reason of the ErrorInfo every AllSource error carries (allsource.v1.ErrorReason)."""',
    ]
    comment: list[str] = []
    for line in body.splitlines()[1:]:
        line = line.strip()
        if line.startswith("//"):
            comment.append(line[2:].strip())
            continue
        match = re.fullmatch(r"([A-Z0-9_]+) = \d+;", line)
        if match and match.group(1) != "ERROR_REASON_UNSPECIFIED":
            lines.append("")
            lines += [f"    # {c}" for c in comment if not c.startswith("--")]
            lines.append(f'    {match.group(1)} = "{match.group(1)}"')
        if line:
            comment = []
    return "\n".join(lines) + "\n"


def generate(gen: Path = GEN, client_src: Path = CLIENT_SRC) -> None:
    """Regenerate every allsource proto: internal ones into `gen`, public ones into `client_src`."""
    for target in (gen / "allsource", client_src / "allsource"):
        if target.exists():
            shutil.rmtree(target)
    gen.mkdir(parents=True, exist_ok=True)
    client_src.mkdir(parents=True, exist_ok=True)
    _protoc(gen, INTERNAL)
    _protoc(client_src, PUBLIC)
    (client_src / "allsource_client").mkdir(exist_ok=True)
    (client_src / "allsource_client" / "reasons.py").write_text(reasons_module())


if __name__ == "__main__":
    generate()
