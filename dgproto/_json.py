"""The JSON parser for incoming messages when ``Config.json_loads`` is not set.

Decoding Results is the hot inbound path. ``orjson`` (the ``dgproto[speedups]`` extra)
parses a Results message several times faster than ``json.loads`` and returns the same
Python values, so it is used whenever it is installed; nothing to configure.
``Config.json_loads`` still wins when set.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["default_loads"]

Loads = Callable[[str], Any]


def default_loads(configured: Loads | None = None) -> Loads:
    """``configured`` if set, else ``orjson.loads`` when importable, else ``json.loads``."""
    if configured is not None:
        return configured
    try:
        import orjson
    except ImportError:
        return json.loads
    loads: Loads = orjson.loads
    return loads
