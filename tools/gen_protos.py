"""Generate the Python code for protos/ into gen/ (or another directory): `python tools/gen_protos.py [OUT]`.

The generated modules import as their proto package (allsource.v1.event_pb2, ...). google.rpc types come
from googleapis-common-protos, so the vendored copies under protos/google are not generated.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
PACKAGES = ("allsource/v1", "allsource/storage/v1", "allsource/control/v1")


def generate(out: Path) -> None:
    """Regenerate every allsource proto into out, replacing what was there."""
    import grpc_tools
    from grpc_tools import protoc

    target = out / "allsource"
    if target.exists():
        shutil.rmtree(target)
    out.mkdir(parents=True, exist_ok=True)
    files = sorted(str(p.relative_to(PROTOS)) for pkg in PACKAGES for p in (PROTOS / pkg).glob("*.proto"))
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
    for pkg in ("allsource", *PACKAGES, "allsource/storage", "allsource/control"):
        init = out / pkg / "__init__.py"
        init.write_text('"""Generated from protos/ by tools/gen_protos.py; do not edit."""\n')


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "gen")
