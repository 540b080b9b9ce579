"""The default JSON parser: orjson when the speedups are installed, else json.loads."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from dgproto._json import default_loads
from dgproto._messages import decode_message

from .helpers import FIXTURES


def test_a_configured_parser_always_wins() -> None:
    def mine(text: str) -> object:
        return json.loads(text)

    assert default_loads(mine) is mine


def test_without_orjson_it_is_json_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "orjson", None)  # import orjson now fails
    assert default_loads() is json.loads
    assert default_loads(None) is json.loads


def test_with_orjson_it_is_orjson_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("orjson")
    fake.loads = json.loads  # type: ignore[attr-defined]  # stands in for the C parser
    monkeypatch.setitem(sys.modules, "orjson", fake)
    assert default_loads() is fake.loads  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("listen_v1_*.json")), ids=lambda p: p.stem)
def test_the_real_orjson_decodes_every_real_message_as_json_loads_does(path: Path) -> None:
    orjson = pytest.importorskip("orjson")
    text = path.read_text()
    assert default_loads() is orjson.loads
    assert decode_message(text, orjson.loads) == decode_message(text, json.loads)
