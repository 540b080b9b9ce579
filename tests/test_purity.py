"""The purity rule: the sans-I/O core imports no I/O and reads no clock (DESIGN.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dgproto"
FORBIDDEN = {"socket", "ssl", "select", "selectors", "asyncio", "trio", "threading", "time"}
ALLOWED_FILES = {"cli.py", "__main__.py"}
CORE_FILES = sorted(
    p for p in PACKAGE.rglob("*.py") if p.name not in ALLOWED_FILES or p.parent != PACKAGE
)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_core_files_found() -> None:
    assert any(p.name == "_connection.py" for p in CORE_FILES)


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_core_module_is_pure(path: Path) -> None:
    imported = _imports(path)
    bad = {name for name in imported if name.split(".")[0] in FORBIDDEN}
    assert not bad, f"{path.name} imports {sorted(bad)}"
    transports = {n for n in imported if n.startswith(("dgproto.transports", "transports"))}
    assert not transports, f"{path.name} imports the adapters: {sorted(transports)}"
    relative_up = "from ..transports" in path.read_text() or "from .transports" in path.read_text()
    assert not relative_up


def test_detector_catches_a_clock(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("import time as _t\nfrom asyncio import sleep\n")
    assert _imports(sample) == {"time", "asyncio"}
