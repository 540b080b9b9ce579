"""The core's modules import each other in one order: no cycle, not even for type hints.

The ground floor is ``_lifecycle`` (State) -> ``_exceptions`` -> ``_events`` -> ``_errors``
and ``_state``; a cycle there once made ``HandshakeError``, ``Closed.error`` and the
transition table depend on each other (issue 14, item 14).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dgproto"


def _graph(folder: Path, package: str) -> dict[str, set[str]]:
    """``module -> modules of the same package it imports`` (every import, any block)."""
    modules = {p.stem for p in folder.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in folder.glob("*.py"):
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1:
                    names = [node.module] if node.module else [a.name for a in node.names]
                elif node.level == 0 and node.module and node.module.startswith(package + "."):
                    names = [node.module.removeprefix(package + ".").split(".")[0]]
                else:
                    continue
                found.update(n.split(".")[0] for n in names if n and n.split(".")[0] in modules)
        graph[path.stem] = found - {path.stem}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


@pytest.mark.parametrize(
    ("folder", "package"),
    [(PACKAGE, "dgproto"), (PACKAGE / "emulator", "dgproto.emulator")],
    ids=["core", "emulator"],
)
def test_no_import_cycles(folder: Path, package: str) -> None:
    graph = _graph(folder, package)
    graph.pop("__init__", None)
    for deps in graph.values():
        deps.discard("__init__")
    assert _cycle(graph) is None


def test_the_ground_floor_has_one_order() -> None:
    graph = _graph(PACKAGE, "dgproto")
    assert graph["_lifecycle"] == set()
    assert graph["_exceptions"] == {"_lifecycle"}
    assert graph["_events"] == {"_exceptions"}
    assert graph["_errors"] == {"_events", "_exceptions"}
    assert graph["_state"] == {"_exceptions", "_lifecycle"}


def test_the_detector_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
