"""The purity rule: nothing under dgproto/ but __main__.py does I/O (DESIGN.md).

The sans-I/O core and the emulator core import no I/O and read no clock; the command
line, which does, lives in dgproto.transports.cli, and ``python -m dgproto`` reaches it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dgproto"
FORBIDDEN = {"socket", "ssl", "select", "selectors", "asyncio", "trio", "threading", "time"}
ONLY_IO_FILE = PACKAGE / "__main__.py"
CORE_FILES = sorted(p for p in PACKAGE.rglob("*.py") if p != ONLY_IO_FILE)


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
    assert any(p.parent.name == "emulator" for p in CORE_FILES)


def test_only_main_is_exempt() -> None:
    """Nothing under dgproto/ but __main__.py does I/O: no other file is exempt."""
    exempt = set(PACKAGE.rglob("*.py")) - set(CORE_FILES)
    assert exempt == {ONLY_IO_FILE}, "nothing under dgproto/ but __main__.py does I/O"


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_core_module_is_pure(path: Path) -> None:
    imported = _imports(path)
    bad = {name for name in imported if name.split(".")[0] in FORBIDDEN}
    assert not bad, (
        f"{path.name} imports {sorted(bad)}: nothing under dgproto/ but __main__.py does I/O"
    )
    transports = {n for n in imported if n.startswith(("dgproto.transports", "transports"))}
    assert not transports, f"{path.name} imports the adapters: {sorted(transports)}"
    relative_up = "from ..transports" in path.read_text() or "from .transports" in path.read_text()
    assert not relative_up


def test_detector_catches_a_clock(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("import time as _t\nfrom asyncio import sleep\n")
    assert _imports(sample) == {"time", "asyncio"}
