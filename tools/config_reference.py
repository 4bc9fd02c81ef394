"""Print (or write into docs/CONFIGURATION.md) the table of every setting: default, reloadable, secret.

python tools/config_reference.py          # print the table
python tools/config_reference.py --write  # replace the table in docs/CONFIGURATION.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel, SecretStr

from shared.config.loader import SECRET_KEYS, is_reloadable
from shared.config.settings import Settings

DOC = Path(__file__).resolve().parent.parent / "docs" / "CONFIGURATION.md"
BEGIN, END = "<!-- settings-table:begin -->", "<!-- settings-table:end -->"


def rows(model: BaseModel, prefix: str = "") -> list[tuple[str, str]]:
    out = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        key = f"{prefix}{name}"
        if isinstance(value, BaseModel):
            out += rows(value, key + ".")
        else:
            shown = "(secret)" if isinstance(value, SecretStr) else json.dumps(value)
            out.append((key, shown))
    return out


def table() -> str:
    lines = ["| Key | Default | Reloadable | Secret |", "| --- | --- | --- | --- |"]
    for key, default in rows(Settings()):
        env = "ALLSOURCE_" + key.upper().replace(".", "__")
        lines.append(
            f"| `{key}` (`{env}`) | `{default}` | {'yes' if is_reloadable(key) else 'restart'} | "
            f"{'yes' if key in SECRET_KEYS else ''} |"
        )
    return "\n".join(lines) + "\n"


def render(doc: str) -> str:
    head, _, rest = doc.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{table()}{END}{tail}"


if __name__ == "__main__":
    if "--write" in sys.argv:
        DOC.write_text(render(DOC.read_text()))
    else:
        sys.stdout.write(table())
