"""Imports point one way: receiver -> sync -> projections -> events, and sql/ holds only SQL."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ["events", "projections", "sync", "receiver"]  # each may import only those before it


def project_imports(path: Path) -> set[str]:
    """The top-level project packages a module imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(LAYERS)


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layer_imports_only_the_layers_below_it(layer: str) -> None:
    """No module of a layer imports a layer above it (events imports nothing of the project)."""
    allowed = set(LAYERS[: LAYERS.index(layer) + 1])
    offenders = {
        str(path.relative_to(ROOT)): sorted(project_imports(path) - allowed)
        for path in (ROOT / layer).rglob("*.py")
        if project_imports(path) - allowed
    }
    assert offenders == {}


def test_sql_holds_only_sql_files() -> None:
    """Migrations are plain .sql files; nothing else lives in sql/."""
    assert {p.suffix for p in (ROOT / "sql").iterdir() if p.is_file()} == {".sql"}
