"""The configuration reference, rendered from the settings class: for a terminal and docs/configuration.md."""

from __future__ import annotations

import shutil
import textwrap
import types
from pathlib import Path
from typing import Literal, Union, get_args, get_origin

from pydantic.fields import FieldInfo

from receiver.settings import SECRET_SETTINGS, Settings, env_name

REGENERATE = "credledger config --format markdown > docs/configuration.md"

_TYPE_NAMES: dict[object, str] = {str: "string", int: "integer", bool: "boolean", Path: "path"}

_INTRODUCTION = f"""\
# Configuration reference

<!-- Generated from receiver/settings.py: do not edit. Change the settings class, then run
     {REGENERATE}
     (tests/unit/test_configuration_doc.py fails when the two differ). -->

Every setting is an environment variable named `CREDLEDGER_` + its name (matched without regard to
case). Every setting can come from a file instead: `CREDLEDGER_<NAME>_FILE` holds the path of a file
whose content, without one trailing newline, is the value. That is how container secrets, Kubernetes
secret volumes and systemd's `LoadCredential=` hand secrets over, and it keeps them out of the
process environment. Setting both `CREDLEDGER_<NAME>` and `CREDLEDGER_<NAME>_FILE` is an error, and
so is a `_FILE` that cannot be read.

`credledger config` prints this table. `credledger config --check` checks the current environment
the way the service would read it, and exits 1 listing every problem, each naming its setting: a
value of the wrong type or out of range, a malformed `whsec_` secret, a master key that is not
base64 of 32 bytes, a bad signing key, a Nextcloud URL that is not http(s), a database URL that does
not answer within a few seconds (or whose schema was migrated by a newer release), a proxy address
that is not an IP address, a setting given twice, an unreadable file. It exits 0 with
`configuration OK` otherwise. Secrets (marked below) are never printed: only whether they are set,
and the key ids of master keys and webhook secrets.

"""


def type_name(info: FieldInfo) -> str:
    """The setting's type in words, with its range: `integer, 1 to 1024`, `json or console`."""
    annotation = info.annotation
    if get_origin(annotation) in (Union, types.UnionType):
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    if get_origin(annotation) is Literal:
        name = " or ".join(str(choice) for choice in get_args(annotation))
    else:
        name = _TYPE_NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))
    low = next((m.ge for m in info.metadata if hasattr(m, "ge")), None)
    high = next((m.le for m in info.metadata if hasattr(m, "le")), None)
    if low is not None and high is not None:
        name += f", {low} to {high}"
    elif low is not None:
        name += f", at least {low}"
    return name


def default_text(default: object) -> str:
    """A default as an operator would write it: `unset`, `true`, `./var`, `empty`."""
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, Path) and not default.is_absolute():
        return f"./{default}"
    if default == "":
        return "empty"
    return str(default)


def reference_rows() -> list[tuple[str, str, str, str]]:
    """(environment name, type, default, description) of every setting, in the class's order."""
    rows = []
    for name, info in Settings.model_fields.items():
        kind = type_name(info) + (", secret" if name in SECRET_SETTINGS else "")
        rows.append((env_name(name), kind, default_text(info.default), info.description or ""))
    return rows


def render_markdown() -> str:
    """docs/configuration.md, exactly."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| setting | type | default | description |", "|---|---|---|---|"]
    for setting, kind, default, description in reference_rows():
        shown = default if default in ("unset", "empty") else f"`{cell(default)}`"
        lines.append(f"| `{setting}` | {cell(kind)} | {shown} | {cell(description)} |")
    return _INTRODUCTION + "\n".join(lines) + "\n"


def render_table(width: int | None = None) -> str:
    """The reference for a terminal: descriptions wrapped to `width` (default: the terminal's)."""
    width = width or shutil.get_terminal_size((100, 24)).columns
    header = ("SETTING", "TYPE", "DEFAULT", "DESCRIPTION")
    rows = reference_rows()
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
    indent = sum(widths) + 2 * len(widths)
    lines = []
    for row in [header, *rows]:
        left = "  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)) + "  "
        wrapped = textwrap.wrap(row[3], width=max(30, width - indent)) or [""]
        lines.append(left + wrapped[0])
        lines.extend(" " * indent + more for more in wrapped[1:])
    return "\n".join(line.rstrip() for line in lines) + "\n"
