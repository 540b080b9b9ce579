"""Every public name has a docstring: the API reference is built from them."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator

import pytest

#: The modules whose ``__all__`` is the public API (docs/api/*.md render the same lists).
PUBLIC_MODULES = [
    "dgproto",
    "dgproto.emulator",
    "dgproto.transports.asyncio",
    "dgproto.transports.trio",
    "dgproto.transports.sync",
    "dgproto.transports.server",
    "dgproto.transports.pytest_plugin",
]


def _undocumented(obj: object) -> bool:
    return not (inspect.getdoc(obj) or "").strip()


def _members(cls: type) -> Iterator[tuple[str, object]]:
    """The public methods and properties a class defines itself (not ``object``'s)."""
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, staticmethod | classmethod):
            value = value.__func__
        if isinstance(value, property) or inspect.isfunction(value):
            yield name, getattr(cls, name) if not isinstance(value, property) else value


def missing_docstrings(module_name: str) -> list[str]:
    module = importlib.import_module(module_name)
    missing = []
    for name in module.__all__:
        obj = getattr(module, name)
        if not (inspect.isclass(obj) or callable(obj)):
            continue  # constants are described by the module and the reference page
        if _undocumented(obj):
            missing.append(f"{module_name}.{name}")
        if inspect.isclass(obj):
            missing.extend(
                f"{module_name}.{name}.{member}"
                for member, value in _members(obj)
                if _undocumented(value)
            )
    return missing


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_name_has_a_docstring(module_name: str) -> None:
    assert missing_docstrings(module_name) == []


def test_the_check_sees_a_missing_docstring() -> None:
    class Documented:
        """Has one."""

        def method(self) -> None:
            pass

        @property
        def value(self) -> int:
            return 1

    assert _undocumented(Documented.method)
    assert [name for name, value in _members(Documented) if _undocumented(value)] == [
        "method",
        "value",
    ]
